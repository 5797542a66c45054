import { randomInt } from 'node:crypto';
import type { RedisClient } from '@clinic-hub/platform/redis';
import type { LineLink, NotifyLocale } from '@clinic-hub/protocol';
import { lineLinkKeys } from './notify-keys.js';

/** Letters and digits that cannot be misread for one another (no 0/O, 1/I/L). */
const CODE_ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';
const CODE_LENGTH = 10;
/** A link code in a message's text (the prefilled text, or the code typed alone). */
export const CODE_IN_TEXT = new RegExp(`(?:^|[^A-Z0-9])([${CODE_ALPHABET}]{${CODE_LENGTH}})(?:$|[^A-Z0-9])`);
const MIN_TTL_SECONDS = 60;

/** What a link code links: a ticket, or an appointment's reminders (for the appointment time it was made for). */
export type LinkTarget =
  | { clinic: string; locale: NotifyLocale; ticket: string }
  | { clinic: string; locale: NotifyLocale; appointment: string; startsAt: number };

/**
 * One-time LINE link codes (docs/notifications.md, "LINE linking"): made by
 * the hub for a ticket (its page, the kiosk's slip) and by the worker for an
 * appointment's reminders (the reminder carries the link), taken once by the
 * hub's LINE webhook. Kept under the `{line}` tag; no patient data but ids.
 */
export class LineLinkCodes {
  constructor(
    private readonly redis: RedisClient,
    /** The official account's basic id, "@123abcde". */
    private readonly basicId: string,
    private readonly now: () => number = Date.now,
  ) {}

  /** A new code for a target, valid for `ttlSeconds`. */
  async create(target: LinkTarget, ttlSeconds: number): Promise<LineLink> {
    const ttl = Math.max(MIN_TTL_SECONDS, Math.round(ttlSeconds));
    const code = newCode();
    await this.redis.set(lineLinkKeys.code(code), JSON.stringify(target), 'EX', ttl);
    return this.link(code, target, this.now() + ttl * 1000);
  }

  /**
   * The link an appointment's reminders carry: the same code for every
   * reminder until it is used (then a new one), valid until the appointment.
   * Null once the appointment time has passed.
   */
  async forAppointment(clinic: string, appointment: string, startsAt: number, locale: NotifyLocale): Promise<LineLink | null> {
    const ttlMs = startsAt - this.now();
    if (ttlMs < MIN_TTL_SECONDS * 1000) return null;
    const current = lineLinkKeys.appointmentCode(clinic, appointment);
    const existing = await this.redis.get(current);
    if (existing) {
      const raw = await this.redis.get(lineLinkKeys.code(existing));
      const target = raw ? (JSON.parse(raw) as LinkTarget) : null;
      if (target && 'appointment' in target && target.startsAt === startsAt) return this.link(existing, target, startsAt);
    }
    const created = await this.create({ clinic, locale, appointment, startsAt }, ttlMs / 1000);
    await this.redis.set(current, created.code, 'PXAT', Math.round(startsAt));
    return created;
  }

  /** The target of a code, which is spent by this call; null for an unknown, used or expired code. */
  async take(code: string): Promise<LinkTarget | null> {
    const raw = await this.redis.getdel(lineLinkKeys.code(code));
    return raw ? (JSON.parse(raw) as LinkTarget) : null;
  }

  /**
   * The message the link opens ready to send: a ticket's (a QR code on a
   * screen or slip) says what it does; an appointment's (in an SMS, where
   * every percent-encoded character counts) is the code alone.
   */
  private link(code: string, target: LinkTarget, expiresAt: number): LineLink {
    const text = 'appointment' in target ? code : `${target.locale === 'ja' ? '通知を受け取る' : 'Get notices'} ${code}`;
    return { url: `https://line.me/R/oaMessage/${encodeURIComponent(this.basicId)}/?${encodeURIComponent(text)}`, code, expiresAt };
  }
}

function newCode(): string {
  return Array.from({ length: CODE_LENGTH }, () => CODE_ALPHABET[randomInt(CODE_ALPHABET.length)]).join('');
}
