import { connectionOfKey, type RedisClient } from '@clinic-hub/platform/redis';
import { WebPushSubscription, type InAppNotice } from '@clinic-hub/protocol';
import { notifyClinicKeys } from './notify-keys.js';

/** A page in view says so again this often; an entry not renewed within IN_VIEW_MS has gone (a closed tab, a lost phone). */
export const IN_VIEW_RENEW_MS = 20_000;
export const IN_VIEW_MS = 60_000;

/**
 * What the notify domain knows of a patient's own page: whether one is in
 * view now (per socket, renewed while it is), the notices it has not shown
 * yet (its inbox), and its Web Push subscription. The worker reads these to
 * deliver each in-app notice once: in the page when one is in view, else by
 * Web Push, else kept in the inbox until the page comes back.
 */
export class PatientPageStore {
  constructor(private readonly redis: RedisClient) {}

  async setInView(clinic: string, userId: string, socketId: string, visible: boolean, now = Date.now()): Promise<void> {
    const key = notifyClinicKeys(clinic).inView(userId);
    if (!visible) {
      await this.redis.zrem(key, socketId);
      return;
    }
    await this.redis.multi().zadd(key, now + IN_VIEW_MS, socketId).zremrangebyscore(key, '-inf', now).pexpire(key, IN_VIEW_MS).exec();
  }

  async isInView(clinic: string, userId: string, now = Date.now()): Promise<boolean> {
    return (await this.redis.zcount(notifyClinicKeys(clinic).inView(userId), now, '+inf')) > 0;
  }

  async inbox(clinic: string, userId: string): Promise<InAppNotice[]> {
    const all = await this.redis.hvals(notifyClinicKeys(clinic).inbox(userId));
    return all.map((raw) => JSON.parse(raw) as InAppNotice).sort((a, b) => a.at - b.at);
  }

  /**
   * Notices waiting in a clinic's inboxes (every user's), for the worker's metrics: one SCAN of the clinic's inbox
   * keys, on the node that holds the clinic's slot (on a Redis Cluster, its shard's master: SCAN names no key).
   */
  async inboxDepth(clinic: string): Promise<number> {
    const pattern = notifyClinicKeys(clinic).inbox('*');
    const node = connectionOfKey(this.redis, pattern);
    if (!node) throw new Error(`no Redis node holds clinic ${clinic}'s slot now`);
    let cursor = '0';
    let total = 0;
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) {
        const lengths = await this.redis.pipeline(keys.map((key) => ['hlen', key])).exec();
        for (const [, length] of lengths ?? []) total += typeof length === 'number' ? length : 0;
      }
    } while (cursor !== '0');
    return total;
  }

  async removeFromInbox(clinic: string, userId: string, ids: string[]): Promise<number> {
    return ids.length === 0 ? 0 : this.redis.hdel(notifyClinicKeys(clinic).inbox(userId), ...ids);
  }

  async setPushSubscription(clinic: string, ticketId: string, subscription: WebPushSubscription, retentionSeconds: number): Promise<void> {
    await this.redis.set(notifyClinicKeys(clinic).pushSubscription(ticketId), JSON.stringify(subscription), 'EX', Math.max(1, retentionSeconds));
  }

  async pushSubscription(clinic: string, ticketId: string): Promise<WebPushSubscription | null> {
    const raw = await this.redis.get(notifyClinicKeys(clinic).pushSubscription(ticketId));
    if (!raw) return null;
    const parsed = WebPushSubscription.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : null;
  }

  async clearPushSubscription(clinic: string, ticketId: string): Promise<boolean> {
    return (await this.redis.del(notifyClinicKeys(clinic).pushSubscription(ticketId))) === 1;
  }
}

/** The ticket of a patient's hub user id (`patient:<ticketId>`), or null for staff and others. */
export function ticketOfUser(userId: string): string | null {
  return userId.startsWith('patient:') ? userId.slice('patient:'.length) : null;
}
