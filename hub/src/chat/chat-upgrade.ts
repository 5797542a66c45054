import type { Redis } from 'ioredis';
import type { Logger } from '@clinic-hub/platform/logging';
import { isCluster, isRedisUnavailable, type RedisClient } from '@clinic-hub/platform/redis';
import { defineScripts, type ScriptRunner } from '@clinic-hub/platform/redis-scripts';
import { chatKeys } from './chat-keys.js';

/**
 * The chat's data layout this version writes. Layout 1 counted quotas in a
 * key per window (`quota:<what>:<scope>:<id>:<window>`, the window from Redis
 * TIME in the script, so the key could not be declared); layout 2 keeps one
 * counter per scope (`quota:<what>:<scope>:<id>` = `<window>:<count>`).
 */
export const CHAT_LAYOUT = '2';

/** The clinic's mark: its chat data is in CHAT_LAYOUT. */
export const chatLayoutKey = (clinic: string) => `${chatKeys(clinic).prefix}layout`;

const OLD_QUOTA = /^quota:(msg|bytes):(user|thread|clinic):(.*):(\d+)$/;

/**
 * Converts each clinic's layout-1 quota counters before the node serves it
 * (the same scheme as the queue's, queue/queue-upgrade.ts: SCAN on every
 * master, one keyed script per old key in the clinic's slot, the clinic then
 * marked); idempotent, safe with several nodes at once. Returns how many
 * counters this node converted per clinic (null: already marked).
 */
export async function upgradeChatLayout(redis: RedisClient, clinicIds: readonly string[], logger: Logger, retryForMs = 60_000): Promise<Record<string, number | null>> {
  const scripts = defineScripts(redis, new URL('./upgrade/', import.meta.url), 'clinicChatUpgrade', ['upgrade-quota'] as const);
  const converted: Record<string, number | null> = {};
  for (const clinic of clinicIds) {
    const giveUpAt = Date.now() + retryForMs;
    for (let attempt = 1; ; attempt++) {
      try {
        converted[clinic] = await upgradeClinic(redis, scripts['upgrade-quota'], clinic, logger);
        break;
      } catch (error) {
        if (!isRedisUnavailable(error) || Date.now() > giveUpAt) throw error;
        logger.warn({ clinic, attempt, err: (error as Error).message }, 'chat data upgrade: Redis did not answer; trying again');
        await new Promise((resolve) => setTimeout(resolve, Math.min(200 * attempt, 2000)));
      }
    }
  }
  return converted;
}

async function upgradeClinic(redis: RedisClient, upgradeQuota: ScriptRunner, clinic: string, logger: Logger): Promise<number | null> {
  const { prefix } = chatKeys(clinic);
  if ((await redis.get(chatLayoutKey(clinic))) === CHAT_LAYOUT) return null;
  let quotas = 0;
  const nodes: Redis[] = isCluster(redis) ? redis.nodes('master') : [redis];
  const pattern = `${prefix.replace(/[*?[\]\\]/g, (c) => `\\${c}`)}quota:*:*:*:*`;
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, found] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      for (const key of found) {
        const match = key.startsWith(prefix) ? OLD_QUOTA.exec(key.slice(prefix.length)) : null;
        if (!match) continue;
        const [, what, scope, id, window] = match as unknown as [string, 'msg' | 'bytes', 'user' | 'thread' | 'clinic', string, string];
        quotas += await upgradeQuota<number>([key, chatKeys(clinic).quota(what, scope, id)], [window]);
      }
    } while (cursor !== '0');
  }
  await redis.set(chatLayoutKey(clinic), CHAT_LAYOUT);
  if (quotas > 0) logger.info({ clinic, layout: CHAT_LAYOUT, quotaCounters: quotas }, 'chat data upgraded from layout 1');
  return quotas;
}
