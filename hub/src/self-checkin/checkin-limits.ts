import type { Redis } from 'ioredis';

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

/**
 * Fixed-window counters in Redis, so every hub node counts the same kiosk and
 * the same phones together (a kiosk's socket and a phone's requests may reach
 * any node). A limit of 0 does not limit.
 */
export class CheckinLimiter {
  constructor(
    private readonly redis: Redis,
    private readonly limits: SelfCheckinLimits,
    private readonly now: () => number = Date.now,
  ) {}

  /** Counts one check-in against each scope given; refuses (counting nothing more) at the first one over its limit. */
  async take(clinic: string, scopes: { kiosk?: string; mobile?: boolean; address?: string }): Promise<LimitDecision> {
    const windows: [string, number, number][] = [];
    if (scopes.kiosk !== undefined) windows.push([`kiosk:${scopes.kiosk}`, this.limits.kioskPerMinute, 60_000]);
    if (scopes.mobile) windows.push(['mobile', this.limits.mobilePerMinute, 60_000]);
    if (scopes.address !== undefined) windows.push([`address:${scopes.address}`, this.limits.addressPerHour, 3_600_000]);
    for (const [scope, limit, windowMs] of windows) {
      const decision = await this.count(clinic, scope, limit, windowMs);
      if (!decision.ok) return decision;
    }
    return { ok: true };
  }

  /** Whether this kiosk or address may try another arrival code. */
  async mayTryCode(clinic: string, who: string): Promise<LimitDecision> {
    if (this.limits.wrongCodesPer10Minutes === 0) return { ok: true };
    const { key, windowEnds } = this.window(clinic, `wrong-code:${who}`, 600_000);
    const wrong = Number((await this.redis.get(key)) ?? 0);
    return wrong >= this.limits.wrongCodesPer10Minutes ? { ok: false, retryAfterMs: windowEnds - this.now(), scope: 'wrong arrival codes' } : { ok: true };
  }

  async wrongCode(clinic: string, who: string): Promise<void> {
    const { key, windowEnds } = this.window(clinic, `wrong-code:${who}`, 600_000);
    await this.redis.multi().incr(key).pexpireat(key, windowEnds).exec();
  }

  private async count(clinic: string, scope: string, limit: number, windowMs: number): Promise<LimitDecision> {
    if (limit === 0) return { ok: true };
    const { key, windowEnds } = this.window(clinic, scope, windowMs);
    const replies = await this.redis.multi().incr(key).pexpireat(key, windowEnds).exec();
    const count = Number(replies?.[0]?.[1] ?? 0);
    return count > limit ? { ok: false, retryAfterMs: windowEnds - this.now(), scope: scope.replace(/:.*/, '') } : { ok: true };
  }

  private window(clinic: string, scope: string, windowMs: number): { key: string; windowEnds: number } {
    const start = Math.floor(this.now() / windowMs) * windowMs;
    return { key: `ch:{${clinic}}:self-checkin:rate:${scope}:${start}`, windowEnds: start + windowMs };
  }
}
