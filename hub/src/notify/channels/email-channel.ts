import { createTransport } from 'nodemailer';
import { noticeFooter } from '../templates.js';
import { DeliveryError, type ChannelSender, type Delivery, type OutgoingNotice } from './channel-types.js';

interface SmtpError extends Error {
  code?: string;
  responseCode?: number;
  permanent?: boolean;
}

/**
 * E-mail over SMTP (nodemailer, one pooled connection set per worker).
 *
 * SMTP has no idempotency key. Every attempt of a notification carries the
 * same Message-ID, but a server that accepted the message before the worker
 * died (or before its "250" reached us) will accept the retry as a second
 * e-mail. Our choice for that window is at-least-once: a reminder twice is
 * better than none. Mail clients that thread by Message-ID show one.
 */
export class EmailChannel implements ChannelSender {
  readonly channel = 'email' as const;
  private readonly transport;
  private readonly messageIdDomain: string;

  constructor(
    private readonly options: { url: string; from: string; timeoutMs: number },
  ) {
    this.transport = createTransport({
      url: options.url,
      pool: true,
      maxConnections: 4,
      connectionTimeout: options.timeoutMs,
      greetingTimeout: options.timeoutMs,
      socketTimeout: options.timeoutMs,
    });
    this.messageIdDomain = /@([A-Za-z0-9.-]+)>?\s*$/.exec(options.from)?.[1] ?? 'clinic-hub.invalid';
  }

  async send(notice: OutgoingNotice): Promise<Delivery> {
    try {
      const info = await this.transport.sendMail({
        from: this.options.from,
        to: notice.to,
        subject: notice.rendered.title,
        text: `${notice.rendered.body}\n\n${noticeFooter(notice.locale)}\n`,
        messageId: `<${notice.providerKey}@${this.messageIdDomain}>`,
        headers: { 'Auto-Submitted': 'auto-generated' },
      });
      return { providerId: String(info.messageId) };
    } catch (error) {
      const e = error as SmtpError;
      if (e.responseCode) {
        // The server answered: it did not take the message.
        const permanent = e.permanent ?? e.responseCode >= 500;
        const code = permanent ? 'NOTIFY_PROVIDER_REJECTED' : 'NOTIFY_PROVIDER_FAILED';
        throw new DeliveryError(code, `smtp ${e.responseCode}`, { permanent, notAccepted: true });
      }
      throw new DeliveryError('NOTIFY_PROVIDER_FAILED', `smtp ${e.code ?? 'error'}`, { permanent: false, notAccepted: false });
    }
  }

  async close(): Promise<void> {
    this.transport.close();
  }
}
