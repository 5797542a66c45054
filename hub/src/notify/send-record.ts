import type { RedisClient } from '@clinic-hub/platform/redis';
import { legacySendRecordKey, sendRecordKey } from './notify-keys.js';

/** `via`: the route an attempt committed to before calling a provider, when a notice has more than one (phone-route.ts). */
export type SendRecord = { state: 'sending'; attempt: number; at: number; via?: 'sms' } | { state: 'sent'; providerId: string; at: number };

export type SendStart =
  /** Nobody tried this notification before. */
  | { state: 'fresh' }
  /** An earlier attempt started sending and never finished: the provider may or may not have it. */
  | { state: 'interrupted'; attempt: number; via?: 'sms' }
  | { state: 'sent'; providerId: string };

/**
 * Redis-side record per notification of what a provider accepted, so that a
 * retried job (after a failure or a worker that died) does not send again
 * what was already sent. Holds ids and states only, no patient data.
 *
 * The window that a record alone cannot close: the provider accepts, and the
 * worker dies (or loses its connection) before `markSent`. The record then
 * still says `sending`, and the retry cannot know whether the provider has
 * the message. We resend rather than give up, because a missing "you are
 * called" is worse than a duplicate, and every attempt carries the same
 * provider idempotency key so that the provider drops the repeat:
 * - LINE: X-Line-Retry-Key; a repeat gets 409 (LINE keeps keys 24 h).
 * - SMS: Idempotency-Key; exactly once where the provider honours it.
 * - in-app: no window; the PUBLISH and the `sent` record are one MULTI.
 * - e-mail: SMTP has no such key; at-least-once, same Message-ID.
 * The same keys cover a worker that stalled but did not die and sends at the
 * same time as the worker that took over its job.
 *
 * The record lies in its clinic's hash slot (`ch:{clinic}:notify:sent:<id>`),
 * with the clinic's inbox and in-app channel: on a Redis Cluster too, the
 * in-app MULTI is one transaction on one shard. And it is on a replica before
 * its job completes (the worker's replica wait, per shard on a cluster), so a
 * failover that brings back a completed job finds the record: see
 * notification-worker.ts.
 */
export class SendRecords {
  constructor(
    private readonly redis: RedisClient,
    private readonly ttlSeconds: number,
  ) {}

  key(jobId: string): string {
    return sendRecordKey(jobId);
  }

  /** Marks the notification as being sent, or tells what an earlier attempt left. */
  async begin(jobId: string, attempt: number): Promise<SendStart> {
    const record: SendRecord = { state: 'sending', attempt, at: Date.now() };
    // SET NX GET: claims the record or returns the existing one, atomically.
    const previous = (await this.redis.call('SET', this.key(jobId), JSON.stringify(record), 'NX', 'GET', 'EX', String(this.ttlSeconds))) as
      | string
      | null;
    const existing = previous === null ? await this.legacy(jobId) : (JSON.parse(previous) as SendRecord);
    if (existing === null) return { state: 'fresh' };
    if (existing.state === 'sent') return { state: 'sent', providerId: existing.providerId };
    return { state: 'interrupted', attempt: existing.attempt, ...(existing.via ? { via: existing.via } : {}) };
  }

  /** A record an earlier version wrote under the `{notify}` tag (legacySendRecordKey), copied into the new place when it says `sent`. */
  private async legacy(jobId: string): Promise<SendRecord | null> {
    const raw = await this.redis.get(legacySendRecordKey(jobId));
    if (raw === null) return null;
    const record = JSON.parse(raw) as SendRecord;
    if (record.state === 'sent') await this.redis.set(this.key(jobId), raw, 'EX', this.ttlSeconds);
    return record;
  }

  /** Records, before the provider call, that this attempt sends by SMS: a retry after it must use SMS again (its idempotency key), not Web Push too. */
  async noteVia(jobId: string, attempt: number, via: 'sms'): Promise<void> {
    const record: SendRecord = { state: 'sending', attempt, at: Date.now(), via };
    await this.redis.set(this.key(jobId), JSON.stringify(record), 'EX', this.ttlSeconds);
  }

  sentValue(providerId: string): string {
    return JSON.stringify({ state: 'sent', providerId, at: Date.now() } satisfies SendRecord);
  }

  async markSent(jobId: string, providerId: string): Promise<void> {
    await this.redis.set(this.key(jobId), this.sentValue(providerId), 'EX', this.ttlSeconds);
  }

  /** The provider certainly did not accept the attempt: the next one starts clean. */
  async clear(jobId: string): Promise<void> {
    await this.redis.del(this.key(jobId));
  }

  async get(jobId: string): Promise<SendRecord | null> {
    const raw = await this.redis.get(this.key(jobId));
    return raw ? (JSON.parse(raw) as SendRecord) : null;
  }
}
