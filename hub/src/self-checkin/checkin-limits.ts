import { randomBytes } from 'node:crypto';
import type { RedisClient } from '@clinic-hub/platform/redis';
import { defineScripts } from '@clinic-hub/platform/redis-scripts';

/** How many self check-ins, and wrong arrival codes, one kiosk, one clinic's phones and one address may make. */
export interface SelfCheckinLimits {
  /** Check-ins per kiosk token (its sub) per minute. */
  kioskPerMinute: number;
  /** Check-ins from phones (posters and arrival links) per clinic per minute. */
  mobilePerMinute: number;
  /** Check-ins from phones per client address per hour. */
  addressPerHour: number;
  /** Unknown arrival codes per kiosk or address per 10 minutes, before every code is refused for the rest of them. */
  wrongCodesPer10Minutes: number;
}

export type LimitDecision = { ok: true } | { ok: false; retryAfterMs: number; scope: string };

const MINUTE = 60_000;

type WindowCommand = (key: string, windowMs: number, limit: number, mode: 'take' | 'check' | 'add', id: string) => Promise<number>;

/**
 * Sliding windows in Redis (scripts/rate-window-1.lua), so every hub node
 * counts the same kiosk and the same phones together (a kiosk's socket and a
 * phone's requests may reach any node). A limit of 0 does not limit.
 */
export class CheckinLimiter {
  private readonly window: WindowCommand;

  constructor(
    redis: RedisClient,
    private readonly limits: SelfCheckinLimits,
  ) {
    const scripts = defineScripts(redis, new URL('./scripts/', import.meta.url), 'selfCheckin', ['rate-window']);
    this.window = (key, windowMs, limit, mode, id) => scripts['rate-window']<number>([key], [windowMs, limit, mode, id]);
  }

  /** Counts one check-in against each scope given; refuses at the first one over its limit. */
  async take(clinic: string, scopes: { kiosk?: string; mobile?: boolean; address?: string }): Promise<LimitDecision> {
    const windows: [string, number, number][] = [];
    if (scopes.kiosk !== undefined) windows.push([`kiosk:${scopes.kiosk}`, this.limits.kioskPerMinute, MINUTE]);
    if (scopes.mobile) windows.push(['mobile', this.limits.mobilePerMinute, MINUTE]);
    if (scopes.address !== undefined) windows.push([`address:${scopes.address}`, this.limits.addressPerHour, 60 * MINUTE]);
    const id = randomBytes(8).toString('base64url');
    for (const [scope, limit, windowMs] of windows) {
      if (limit === 0) continue;
      const retryAfterMs = await this.window(keyOf(clinic, scope), windowMs, limit, 'take', id);
      if (retryAfterMs > 0) return { ok: false, retryAfterMs, scope: scope.replace(/:.*/, '') };
    }
    return { ok: true };
  }

  /** Whether this kiosk or address may try another arrival code. */
  async mayTryCode(clinic: string, who: string): Promise<LimitDecision> {
    if (this.limits.wrongCodesPer10Minutes === 0) return { ok: true };
    const retryAfterMs = await this.window(keyOf(clinic, `wrong-code:${who}`), 10 * MINUTE, this.limits.wrongCodesPer10Minutes, 'check', '');
    return retryAfterMs > 0 ? { ok: false, retryAfterMs, scope: 'wrong arrival codes' } : { ok: true };
  }

  async wrongCode(clinic: string, who: string): Promise<void> {
    if (this.limits.wrongCodesPer10Minutes === 0) return;
    await this.window(keyOf(clinic, `wrong-code:${who}`), 10 * MINUTE, this.limits.wrongCodesPer10Minutes, 'add', randomBytes(8).toString('base64url'));
  }
}

const keyOf = (clinic: string, scope: string) => `ch:{${clinic}}:self-checkin:rate:${scope}`;
