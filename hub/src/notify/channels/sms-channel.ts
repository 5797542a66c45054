import { DeliveryError, isRetryableStatus, type ChannelSender, type Delivery, type OutgoingNotice } from './channel-types.js';

/**
 * SMS through a provider with a Twilio-style REST API:
 * POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json, form fields
 * To, From, Body, HTTP basic auth AccountSid:AuthToken.
 *
 * Every attempt sends the same `Idempotency-Key` header, which providers that
 * support request idempotency use to return the first message instead of
 * sending a second. A provider that ignores the header may send twice when a
 * worker dies after the provider accepted and before our send record was
 * written; that window is the only one.
 */
export class SmsChannel implements ChannelSender {
  readonly channel = 'sms' as const;
  private readonly url: string;
  private readonly authorization: string;

  constructor(private readonly options: { baseUrl: string; accountSid: string; authToken: string; from: string }) {
    this.url = new URL(`/2010-04-01/Accounts/${encodeURIComponent(options.accountSid)}/Messages.json`, options.baseUrl).toString();
    this.authorization = `Basic ${Buffer.from(`${options.accountSid}:${options.authToken}`).toString('base64')}`;
  }

  async send(notice: OutgoingNotice, signal: AbortSignal): Promise<Delivery> {
    let response: Response;
    try {
      response = await fetch(this.url, {
        method: 'POST',
        headers: {
          authorization: this.authorization,
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
          'idempotency-key': notice.providerKey,
        },
        body: new URLSearchParams({ To: notice.to, From: this.options.from, Body: notice.rendered.short }).toString(),
        signal,
      });
    } catch (error) {
      throw new DeliveryError('NOTIFY_PROVIDER_FAILED', `sms ${(error as Error).name}`, { permanent: false, notAccepted: false });
    }
    const text = await response.text().catch(() => '');
    if (!response.ok) {
      const permanent = !isRetryableStatus(response.status);
      const providerCode = errorCode(text);
      throw new DeliveryError(
        permanent ? 'NOTIFY_PROVIDER_REJECTED' : 'NOTIFY_PROVIDER_FAILED',
        `sms ${response.status}${providerCode ? ` (provider code ${providerCode})` : ''}`,
        { permanent, notAccepted: true },
      );
    }
    let sid: unknown;
    try {
      sid = (JSON.parse(text) as { sid?: unknown }).sid;
    } catch {
      sid = undefined;
    }
    return { providerId: typeof sid === 'string' ? sid : `sms:${notice.providerKey}` };
  }
}

function errorCode(body: string): string | null {
  try {
    const code = (JSON.parse(body) as { code?: unknown }).code;
    return typeof code === 'number' || typeof code === 'string' ? String(code) : null;
  } catch {
    return null;
  }
}
