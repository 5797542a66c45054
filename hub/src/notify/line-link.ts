import type { RedisClient } from '@clinic-hub/platform/redis';
import { SignatureValidationFailed, messagingApi, middleware, type webhook } from '@line/bot-sdk';
import type { LineLink, NotifyLocale, PublicTicket } from '@clinic-hub/protocol';
import type { Logger } from '@clinic-hub/platform/logging';
import { appendAudit } from '../audit/audit-log.js';
import type { ClinicRegistry } from '../clinics/clinic-registry.js';
import { CODE_IN_TEXT, LineLinkCodes, type LinkTarget } from './line-link-codes.js';
import type { NotificationService } from './notification-service.js';
import { lineLinkKeys } from './notify-keys.js';
import { appointmentWhen } from './templates.js';

type Middleware = ReturnType<typeof middleware>;
const UNLINK_TEXT = /^\s*(unlink|stop|解除|連携解除|停止)\s*$/i;

export interface LineLinkOptions {
  channelSecret: string;
  /** The official account's basic id, "@123abcde". */
  basicId: string;
  channelAccessToken: string;
  apiBaseUrl: string;
}

/** A LINE user's linked appointment, in their set of links (`clinic/appt:<id>`; a ticket's is `clinic/<ticket>`). */
const APPOINTMENT_ENTRY = /^appt:(.+)$/;

const TEXT = {
  linked: {
    ja: (number: string) => `受付番号 ${number} の通知をこのLINEにお送りします。やめるときは「解除」と送ってください。`,
    en: (number: string) => `Notices for ticket ${number} will come here. Send "unlink" to stop them.`,
  },
  linkedAppointment: {
    ja: (when: string) => `${when} のご予約のお知らせをこのLINEにお送りします。やめるときは「解除」と送ってください。`,
    en: (when: string) => `Reminders of your appointment on ${when} will come here. Send "unlink" to stop them.`,
  },
  unknownCode: {
    ja: 'このコードは使えません（期限切れ、または使用済み）。受付番号のページで新しいコードを表示してください。 / This code cannot be used (expired or used).',
    en: 'This code cannot be used (it has expired or was used). Show a new one on your ticket page.',
  },
  unlinked: '通知の連携を解除しました。 / LINE notices are off for your tickets and appointments.',
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
 * back on its page. An appointment's reminders carry such a link too (made by
 * the worker, line-link-codes.ts): linked, they go by LINE; unlinked, back to
 * the contact the booking system gave. The LINE user id is patient data:
 * kept, like a phone number, for the clinic's retention period (after the
 * appointment, for an appointment's).
 */
export class LineLinkService {
  private readonly client: messagingApi.MessagingApiClient;
  private readonly checkSignature: Middleware;
  private readonly codes: LineLinkCodes;
  private readonly now: () => number;

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
    this.checkSignature = middleware({ channelSecret: options.channelSecret });
    this.now = deps.now ?? Date.now;
    this.codes = new LineLinkCodes(deps.redis, options.basicId, this.now);
  }

  /** A one-time link code for a ticket, valid for `ttlSeconds` (the patient's access to the ticket). */
  create(clinic: string, ticket: string, locale: NotifyLocale, ttlSeconds: number): Promise<LineLink> {
    return this.codes.create({ clinic, ticket, locale }, ttlSeconds);
  }

  /**
   * A webhook request checked and parsed by @line/bot-sdk's middleware: its
   * body must carry LINE's signature for this channel (x-line-signature, the
   * HMAC-SHA256 of the raw body with the channel secret) and be JSON.
   */
  async parseWebhook(body: Buffer, signature: string | undefined): Promise<{ ok: true; callback: webhook.CallbackRequest } | { ok: false; code: 'NOTIFY_LINE_SIGNATURE_INVALID' | 'INVALID_PAYLOAD' }> {
    // The hub's HTTP layer is not Node's: the middleware is given the raw body as `rawBody`, as serverless hosts do.
    const request = { headers: signature ? { 'x-line-signature': signature } : {}, rawBody: body, body: undefined as unknown };
    const error = await new Promise<Error | undefined>((resolve) => {
      void this.checkSignature(request as unknown as Parameters<Middleware>[0], {} as Parameters<Middleware>[1], resolve);
    });
    if (!error) return { ok: true, callback: request.body as webhook.CallbackRequest };
    return { ok: false, code: error instanceof SignatureValidationFailed ? 'NOTIFY_LINE_SIGNATURE_INVALID' : 'INVALID_PAYLOAD' };
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
    const target = await this.codes.take(code);
    const reply = target ? await ('ticket' in target ? this.linkTicket(target, userId, from) : this.linkAppointment(target, userId, from)) : null;
    if (replyToken) await this.reply(replyToken, reply ?? TEXT.unknownCode.ja);
  }

  /** Makes the LINE user the ticket's contact; the reply, or null when the ticket has ended. */
  private async linkTicket(target: Extract<LinkTarget, { ticket: string }>, userId: string, from: string): Promise<string | null> {
    const ticket = await this.ticketNumber(target);
    if (!ticket) return null;
    const stored = await this.deps.notifications.setTicketContact(target.clinic, target.ticket, { channel: 'line', address: userId, locale: target.locale });
    if (!stored.ok) throw new Error(`contact not stored: ${stored.error.code}`);
    const retentionSeconds = Math.round((this.deps.clinics.get(target.clinic)?.patientDataRetentionHours ?? 24) * 3600);
    await this.remember(userId, `${target.clinic}/${target.ticket}`, this.now() + retentionSeconds * 1000);
    await appendAudit(this.deps.redis, target.clinic, { actor: 'line', role: 'patient', action: 'notify.line.link', subject: target.ticket, from });
    return TEXT.linked[target.locale](ticket);
  }

  /**
   * Makes the LINE user the contact of an appointment's reminders, keeping the
   * booking system's contact for unlinking; the reply, or null when the
   * appointment was cancelled, moved or has passed.
   */
  private async linkAppointment(target: Extract<LinkTarget, { appointment: string }>, userId: string, from: string): Promise<string | null> {
    const clinic = this.deps.clinics.get(target.clinic);
    const { contacts } = this.deps.notifications;
    const record = await contacts.appointment(target.clinic, target.appointment);
    if (!clinic || !record || record.startsAt !== target.startsAt || record.startsAt <= this.now()) return null;
    const linkedFrom = record.contact.channel === 'line' ? (record.linkedFrom ?? null) : record.contact;
    const contact = { channel: 'line' as const, address: userId, locale: target.locale, ...(record.contact.quietHours !== undefined ? { quietHours: record.contact.quietHours } : {}) };
    if (!(await contacts.setAppointmentContact(target.clinic, target.appointment, contact, linkedFrom))) return null;
    await this.remember(userId, `${target.clinic}/appt:${target.appointment}`, record.startsAt + clinic.patientDataRetentionHours * 3600_000);
    await appendAudit(this.deps.redis, target.clinic, { actor: 'line', role: 'patient', action: 'notify.line.link', subject: `appointment:${target.appointment}`, from });
    return TEXT.linkedAppointment[target.locale](appointmentWhen(target.locale, clinic, record.startsAt));
  }

  /** Adds a link to the LINE user's set, kept until the latest of its links' retention ends. */
  private async remember(userId: string, entry: string, keepUntil: number): Promise<void> {
    const key = lineLinkKeys.user(userId);
    const expiresAt = Math.max(keepUntil, this.now() + Math.max(0, await this.deps.redis.pttl(key)));
    await this.deps.redis.multi().sadd(key, entry).pexpireat(key, Math.round(expiresAt)).exec();
  }

  private async ticketNumber(target: Extract<LinkTarget, { ticket: string }>): Promise<string | null> {
    const ticket = await this.deps.findTicket(target.clinic, target.ticket);
    return ticket && (ticket.status === 'waiting' || ticket.status === 'called' || ticket.status === 'in_consultation') ? ticket.number : null;
  }

  private async unlinkUser(userId: string, from: string): Promise<void> {
    const linked = await this.deps.redis.smembers(lineLinkKeys.user(userId));
    for (const entry of linked) {
      const slash = entry.indexOf('/');
      const clinic = entry.slice(0, slash);
      const appointment = APPOINTMENT_ENTRY.exec(entry.slice(slash + 1))?.[1];
      const subject = appointment ? `appointment:${appointment}` : entry.slice(slash + 1);
      const unlinked = appointment ? await this.unlinkAppointment(clinic, appointment, userId) : await this.unlinkTicket(clinic, subject);
      if (unlinked) await appendAudit(this.deps.redis, clinic, { actor: 'line', role: 'patient', action: 'notify.line.unlink', subject, from });
    }
    await this.deps.redis.del(lineLinkKeys.user(userId));
  }

  /** Gives an appointment's reminders back to the contact the booking system gave, when they went to this LINE user. */
  private async unlinkAppointment(clinic: string, appointment: string, userId: string): Promise<boolean> {
    const { contacts } = this.deps.notifications;
    const record = await contacts.appointment(clinic, appointment);
    if (!record || record.contact.channel !== 'line' || record.contact.address !== userId || !record.linkedFrom) return false;
    return contacts.setAppointmentContact(clinic, appointment, record.linkedFrom, null);
  }

  private async reply(replyToken: string, text: string): Promise<void> {
    await this.client.replyMessage({ replyToken, messages: [{ type: 'text', text }] });
  }
}
