import { randomInt } from 'node:crypto';
import type { RedisClient } from '@clinic-hub/platform/redis';
import { messagingApi, validateSignature, type webhook } from '@line/bot-sdk';
import type { LineLink, NotifyLocale, PublicTicket } from '@clinic-hub/protocol';
import type { Logger } from '@clinic-hub/platform/logging';
import { appendAudit } from '../audit/audit-log.js';
import type { ClinicRegistry } from '../clinics/clinic-registry.js';
import type { NotificationService } from './notification-service.js';
import { lineLinkKeys } from './notify-keys.js';

/** Letters and digits that cannot be misread for one another (no 0/O, 1/I/L). */
const CODE_ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';
const CODE_LENGTH = 10;
const CODE_IN_TEXT = new RegExp(`(?:^|[^A-Z0-9])([${CODE_ALPHABET}]{${CODE_LENGTH}})(?:$|[^A-Z0-9])`);
const UNLINK_TEXT = /^\s*(unlink|stop|解除|連携解除|停止)\s*$/i;

export interface LineLinkOptions {
  channelSecret: string;
  /** The official account's basic id, "@123abcde". */
  basicId: string;
  channelAccessToken: string;
  apiBaseUrl: string;
}

interface LinkTarget {
  clinic: string;
  ticket: string;
  locale: NotifyLocale;
}

const TEXT = {
  linked: {
    ja: (number: string) => `受付番号 ${number} の通知をこのLINEにお送りします。やめるときは「解除」と送ってください。`,
    en: (number: string) => `Notices for ticket ${number} will come here. Send "unlink" to stop them.`,
  },
  unknownCode: {
    ja: 'このコードは使えません（期限切れ、または使用済み）。受付番号のページで新しいコードを表示してください。 / This code cannot be used (expired or used).',
    en: 'This code cannot be used (it has expired or was used). Show a new one on your ticket page.',
  },
  unlinked: '通知の連携を解除しました。 / LINE notices are off for your tickets.',
  welcome:
    '友だち追加ありがとうございます。受付票のLINE用QRコードから開いたメッセージを送ると、順番のお知らせが届きます。 / Thank you for adding us. Send the message opened from the LINE QR code of your ticket to get notices here.',
};

/**
 * Linking a patient's LINE account to their ticket. The ticket page (or the
 * kiosk's slip) shows a one-time link code as a link to the clinic's
 * official account with the code as a prefilled message; the patient sends
 * it, LINE posts the message to the hub's webhook (`POST /api/line/webhook`,
 * signed with the channel secret), and the hub stores the sender's LINE user
 * id as the ticket's contact: from then on its notices go by LINE. "解除" /
 * "unlink", or blocking the account (unfollow), puts the ticket's notices
 * back on its page. The LINE user id is patient data: kept, like a phone
 * number, for the clinic's retention period.
 */
export class LineLinkService {
  private readonly client: messagingApi.MessagingApiClient;

  constructor(
    private readonly deps: {
      redis: RedisClient;
      clinics: ClinicRegistry;
      notifications: NotificationService;
      /** The queue's ticket (queue domain): a code of a ticket that has ended links nothing. */
      findTicket: (clinic: string, ticket: string) => Promise<PublicTicket | null>;
      logger: Logger;
      now?: () => number;
    },
    private readonly options: LineLinkOptions,
  ) {
    this.client = new messagingApi.MessagingApiClient({ channelAccessToken: options.channelAccessToken, baseURL: options.apiBaseUrl });
  }

  /** A one-time link code for a ticket, valid for `ttlSeconds` (the patient's access to the ticket). */
  async create(clinic: string, ticket: string, locale: NotifyLocale, ttlSeconds: number): Promise<LineLink> {
    const code = Array.from({ length: CODE_LENGTH }, () => CODE_ALPHABET[randomInt(CODE_ALPHABET.length)]).join('');
    const target: LinkTarget = { clinic, ticket, locale };
    await this.deps.redis.set(lineLinkKeys.code(code), JSON.stringify(target), 'EX', Math.max(60, ttlSeconds));
    const text = `${locale === 'ja' ? '通知を受け取る' : 'Get notices'} ${code}`;
    return {
      url: `https://line.me/R/oaMessage/${encodeURIComponent(this.options.basicId)}/?${encodeURIComponent(text)}`,
      code,
      expiresAt: (this.deps.now ?? Date.now)() + Math.max(60, ttlSeconds) * 1000,
    };
  }

  /** Whether a webhook request's body carries LINE's signature for this channel (x-line-signature). */
  verify(body: Buffer, signature: string | undefined): boolean {
    return typeof signature === 'string' && signature.length > 0 && validateSignature(body, this.options.channelSecret, signature);
  }

  /** Handles a verified webhook body's events; each failure is logged and the others still handled. */
  async handle(callback: webhook.CallbackRequest, from: string): Promise<void> {
    for (const event of callback.events ?? []) {
      await this.handleEvent(event, from).catch((error: unknown) =>
        this.deps.logger.warn({ err: error instanceof Error ? error.message : String(error), type: event.type }, 'LINE webhook event not handled'),
      );
    }
  }

  /** Puts a ticket's notices back on its page, when they went to LINE. */
  async unlinkTicket(clinic: string, ticket: string): Promise<boolean> {
    const contact = await this.deps.notifications.contacts.ticketContact(clinic, ticket);
    if (contact?.channel !== 'line') return false;
    await this.deps.redis.srem(lineLinkKeys.user(contact.address), `${clinic}/${ticket}`);
    const result = await this.deps.notifications.setTicketContact(clinic, ticket, { channel: 'in_app', address: `patient:${ticket}`, locale: contact.locale });
    return result.ok;
  }

  private async handleEvent(event: webhook.Event, from: string): Promise<void> {
    const userId = event.source?.type === 'user' ? event.source.userId : undefined;
    if (!userId) return;
    if (event.type === 'unfollow') {
      await this.unlinkUser(userId, from);
      return;
    }
    const replyToken = 'replyToken' in event ? event.replyToken : undefined;
    if (event.type === 'follow') {
      if (replyToken) await this.reply(replyToken, TEXT.welcome);
      return;
    }
    if (event.type !== 'message' || event.message.type !== 'text') return;
    const text = (event.message as webhook.TextMessageContent).text;
    if (UNLINK_TEXT.test(text)) {
      await this.unlinkUser(userId, from);
      if (replyToken) await this.reply(replyToken, TEXT.unlinked);
      return;
    }
    const code = CODE_IN_TEXT.exec(text.toUpperCase())?.[1];
    if (!code) return;
    const raw = await this.deps.redis.getdel(lineLinkKeys.code(code));
    const target = raw ? (JSON.parse(raw) as LinkTarget) : null;
    const ticket = target ? await this.ticketNumber(target) : null;
    if (!target || !ticket) {
      if (replyToken) await this.reply(replyToken, TEXT.unknownCode.ja);
      return;
    }
    const stored = await this.deps.notifications.setTicketContact(target.clinic, target.ticket, { channel: 'line', address: userId, locale: target.locale });
    if (!stored.ok) throw new Error(`contact not stored: ${stored.error.code}`);
    const retentionSeconds = Math.round((this.deps.clinics.get(target.clinic)?.patientDataRetentionHours ?? 24) * 3600);
    await this.deps.redis.multi().sadd(lineLinkKeys.user(userId), `${target.clinic}/${target.ticket}`).expire(lineLinkKeys.user(userId), retentionSeconds).exec();
    await appendAudit(this.deps.redis, target.clinic, { actor: 'line', role: 'patient', action: 'notify.line.link', subject: target.ticket, from });
    if (replyToken) await this.reply(replyToken, TEXT.linked[target.locale](ticket));
  }

  private async ticketNumber(target: LinkTarget): Promise<string | null> {
    const ticket = await this.deps.findTicket(target.clinic, target.ticket);
    return ticket && (ticket.status === 'waiting' || ticket.status === 'called' || ticket.status === 'in_consultation') ? ticket.number : null;
  }

  private async unlinkUser(userId: string, from: string): Promise<void> {
    const linked = await this.deps.redis.smembers(lineLinkKeys.user(userId));
    for (const entry of linked) {
      const [clinic, ticket] = entry.split('/') as [string, string];
      if (await this.unlinkTicket(clinic, ticket)) {
        await appendAudit(this.deps.redis, clinic, { actor: 'line', role: 'patient', action: 'notify.line.unlink', subject: ticket, from });
      }
    }
    await this.deps.redis.del(lineLinkKeys.user(userId));
  }

  private async reply(replyToken: string, text: string): Promise<void> {
    await this.client.replyMessage({ replyToken, messages: [{ type: 'text', text }] });
  }
}
