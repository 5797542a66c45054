import { z } from 'zod';
import type { ErrorCode } from './errors.js';
import { NAMESPACES, NOTIFY_CLIENT_EVENTS, NOTIFY_SERVER_EVENTS } from './event-names.js';
import type { SessionEnded } from './events.js';

/**
 * Socket.IO namespace of in-app notifications. A socket there is joined to
 * `notifyUserRoom(clinic, sub)` and receives `notify:notice` for that user only.
 */
export const NOTIFY_NAMESPACE = NAMESPACES.notify;

/** Where a notice goes: the hub's own socket, e-mail (SMTP), LINE push, SMS. */
export const NOTIFY_CHANNELS = ['in_app', 'email', 'line', 'sms'] as const;
export const NotifyChannel = z.enum(NOTIFY_CHANNELS);
export type NotifyChannel = z.infer<typeof NotifyChannel>;

/** Every kind of notice there is a template for (Japanese and English). */
/** `test`: a test send from the manager's console (`POST /api/clinics/:id/notify/test`) to an address they give. */
export const NOTIFY_KINDS = ['reminder_24h', 'reminder_1h', 'queue_3_ahead', 'queue_1_ahead', 'queue_called', 'consult_ready', 'chat_reply', 'test'] as const;
export const NotifyKind = z.enum(NOTIFY_KINDS);
export type NotifyKind = z.infer<typeof NotifyKind>;

export const NotifyLocale = z.enum(['ja', 'en']);
export type NotifyLocale = z.infer<typeof NotifyLocale>;

const ClockTime = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'HH:MM, 24-hour clock');

/** Local time window (clinic timezone) without non-urgent notices; may wrap midnight ("21:00"–"08:00"). */
export const QuietHours = z
  .object({ start: ClockTime, end: ClockTime })
  .refine((q) => q.start !== q.end, 'start and end must differ');
export type QuietHours = z.infer<typeof QuietHours>;

/** A hub user id as in a token's `sub`, e.g. `patient:<ticketId>`. */
const HubUserId = z.string().regex(/^[A-Za-z0-9_:.@-]{1,128}$/, 'a hub user id (token sub)');
/** International format, as SMS providers expect it. */
export const PhoneE164 = z.string().regex(/^\+[1-9]\d{6,14}$/, 'a phone number in +E.164 form, e.g. +819012345678');
/** The user id a LINE Official Account sees (webhook `source.userId`). */
const LineUserId = z.string().regex(/^U[0-9a-f]{32}$/, 'a LINE user id (U + 32 hex digits)');

const contactFields = {
  locale: NotifyLocale.default('ja'),
  /** Omitted: the server's default (NOTIFY_QUIET_HOURS). null: no quiet hours for this patient. */
  quietHours: QuietHours.nullable().optional(),
};

/**
 * How one patient wants to be told: one preferred channel and its address.
 * Patient data: the hub keeps it only for the clinic's retention period and
 * never logs or broadcasts it.
 */
export const NotifyContact = z.discriminatedUnion('channel', [
  z.object({ channel: z.literal('in_app'), address: HubUserId, ...contactFields }),
  z.object({ channel: z.literal('email'), address: z.email().max(254), ...contactFields }),
  z.object({ channel: z.literal('line'), address: LineUserId, ...contactFields }),
  z.object({ channel: z.literal('sms'), address: PhoneE164, ...contactFields }),
]);
export type NotifyContact = z.output<typeof NotifyContact>;
export type NotifyContactInput = z.input<typeof NotifyContact>;

/** What a client in the notify namespace receives. Ticket numbers and room names only: no patient data. */
export interface InAppNotice {
  /** The notification's id: the same notice never arrives under two ids. */
  id: string;
  kind: NotifyKind;
  locale: NotifyLocale;
  title: string;
  body: string;
  /** Server time of sending, ms since the epoch. */
  at: number;
  ticketNumber?: string;
}

const Base64Url = (bytes: number) => z.string().regex(new RegExp(`^[A-Za-z0-9_-]{${Math.ceil((bytes * 4) / 3)}}={0,2}$`), `${bytes} bytes, base64url`);

/**
 * A browser's push subscription (`PushSubscription.toJSON()`): the push
 * service's endpoint and the keys the hub encrypts to (RFC 8291). Patient
 * data: kept like a phone number, never logged.
 */
export const WebPushSubscription = z.object({
  endpoint: z.url({ protocol: /^https$/ }).max(2048),
  expirationTime: z.number().nullable().optional(),
  keys: z.object({
    /** The browser's P-256 public key, uncompressed (65 bytes). */
    p256dh: Base64Url(65),
    /** The authentication secret (16 bytes). */
    auth: Base64Url(16),
  }),
});
export type WebPushSubscription = z.output<typeof WebPushSubscription>;

/** `notify:page`: the page is in view (visible) or not; notices go by Web Push while no page of the user is in view. */
export const NotifyPagePayload = z.object({ visible: z.boolean() });
export type NotifyPagePayload = z.infer<typeof NotifyPagePayload>;

/** `notify:seen`: the page has shown these notices; they are not offered again. */
export const NotifySeenPayload = z.object({ ids: z.array(z.string().min(1).max(200)).min(1).max(100) });
export type NotifySeenPayload = z.infer<typeof NotifySeenPayload>;

/** What a push message carries (the service worker shows it): the in-app notice and the page to open. */
export interface WebPushMessage extends InAppNotice {
  clinic: string;
  /** The ticket page's path (its token is kept by the page, never in a push message). */
  url: string;
}

/** `GET /api/patient/notices`: how this ticket's notices reach the patient. */
export interface PatientNoticeSettings {
  /** The contact's channel: `in_app` (this page, and Web Push when subscribed), `line`, `sms`, `email`; null: none. */
  channel: NotifyChannel | null;
  /** The VAPID public key for `pushManager.subscribe` (base64url); null: Web Push is off on this hub. */
  webPush: { publicKey: string } | null;
  /** Whether this ticket has a push subscription. */
  pushSubscribed: boolean;
  /** Whether LINE linking is offered (`POST /api/patient/line-link`). */
  line: boolean;
}

export interface NotifyClientToServer {
  [NOTIFY_CLIENT_EVENTS.page]: (payload: NotifyPagePayload, ack: (reply: { ok: true } | { ok: false; error: { code: ErrorCode; message: string } }) => void) => void;
  [NOTIFY_CLIENT_EVENTS.seen]: (payload: NotifySeenPayload, ack: (reply: { ok: true; removed: number } | { ok: false; error: { code: ErrorCode; message: string } }) => void) => void;
}

export interface NotifyServerToClient {
  [NOTIFY_SERVER_EVENTS.notice]: (notice: InAppNotice) => void;
  /** Anything a client sends here is refused (UNKNOWN_EVENT); without an ack, this way. */
  [NOTIFY_SERVER_EVENTS.hubError]: (error: { code: string; message: string; event?: string; detail?: string }) => void;
  [NOTIFY_SERVER_EVENTS.sessionEnded]: (ended: SessionEnded) => void;
}

/**
 * The room of one user's in-app notices. Scoped by clinic because token
 * subjects (`staff:alice`) are only unique within a clinic.
 */
export function notifyUserRoom(clinic: string, userId: string): string {
  return `user:${clinic}:${userId}`;
}

/** Who a notification is for, as staff see it: ids only. */
/** `test`: a test send (its address is never listed). */
export type NotifyRecipientRef = { type: 'ticket'; ticketId: string } | { type: 'appointment'; appointmentId: string } | { type: 'test' };

/**
 * `POST /api/clinics/:id/notify/test` (admin): one test notice to the address
 * given, on its channel, at once (quiet hours do not apply). Its outcome shows
 * in the notification counts, and as a dead letter if it fails.
 */
export const NotifyTestRequest = z.object({ channel: NotifyChannel, address: z.string().min(1).max(254), locale: NotifyLocale.default('ja') }).strict();
export type NotifyTestRequest = z.input<typeof NotifyTestRequest>;

/** `POST /api/clinics/:id/notify/test` answers 202 with the notification's id. */
export interface NotifyTestResult {
  id: string;
  channel: NotifyChannel;
}

/** Which notification, for whom, as staff see any of them: ids and the ticket's number, no addresses, no text. */
export interface NoticeSummary {
  id: string;
  clinic: string;
  kind: NotifyKind;
  recipient: NotifyRecipientRef;
  ticketNumber: string | null;
}

/** A notification that ran out of attempts or was refused for good, as staff see it: no addresses, no text. */
export interface DeadLetter extends NoticeSummary {
  /** The channel the last attempt used; null when it failed before the contact was read. */
  channel: NotifyChannel | null;
  code: ErrorCode;
  /** The last error, without patient data. */
  reason: string;
  attempts: number;
  enqueuedAt: number;
  failedAt: number | null;
}

/** A notification waiting for its time: a reminder, a notice held by quiet hours, or a failed one waiting to be retried. */
export interface PendingNotice extends NoticeSummary {
  channel: NotifyChannel | null;
  /** When it is due, ms since the epoch. */
  sendAt: number;
  /** Attempts made so far: more than 0 means it failed and waits to be retried. */
  attempts: number;
  /** The last failure of a notice waiting to be retried, else null. */
  lastError: { code: ErrorCode; reason: string } | null;
  enqueuedAt: number;
}

/** Notification jobs by state, for one clinic or all. */
export interface NotifyCounts {
  /** Due and waiting for a worker. */
  waiting: number;
  /** Reminders, notices held by quiet hours, and retries waiting for their backoff. */
  delayed: number;
  /** Being sent right now. */
  active: number;
  /** Sent or skipped within `completedWithinSeconds`. */
  completed: number;
  /** Dead letters. */
  failed: number;
}

/** `GET /api/notify`: what `clinic notify` shows. Ids and public facts only, never an address or a text. */
export interface NotifyOverview {
  /** The clinic, or "*" for every clinic. */
  clinic: string;
  checkedAt: number;
  counts: NotifyCounts;
  completedWithinSeconds: number;
  /** Newest first. */
  deadLetters: DeadLetter[];
  /** Soonest first. */
  pending: PendingNotice[];
}
