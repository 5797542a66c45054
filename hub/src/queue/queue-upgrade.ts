import type { Redis } from 'ioredis';
import type { Logger } from '@clinic-hub/platform/logging';
import { isCluster, isRedisUnavailable, type RedisClient } from '@clinic-hub/platform/redis';
import { defineScripts, type ScriptRunner } from '@clinic-hub/platform/redis-scripts';
import { clinicKeys } from './queue-keys.js';

/**
 * The queue's data layout this version writes (scripts/lib.lua). Layout 1
 * (before 9b31bd5) kept a room's occupant in `room:<room>` strings, each
 * department's measured consultations in a `durations:<dept>` list and when a
 * ticket ended in `ended:<id>` strings (25 h); layout 2 keeps them in the
 * `rooms` hash, the `durations` hash and the `ended` sorted set, so that no
 * script touches a key named after data it reads.
 */
export const QUEUE_LAYOUT = '2';

/** What one clinic's upgrade converted (this node's share: several nodes may convert side by side). */
export interface QueueUpgrade {
  clinic: string;
  /** False when the clinic was already marked as on this layout (nothing scanned). */
  scanned: boolean;
  rooms: number;
  durations: number;
  ended: number;
}

const SCRIPTS = ['upgrade-room', 'upgrade-durations', 'upgrade-ended'] as const;

/** Glob-escapes a clinic id for SCAN MATCH. */
const globEscape = (text: string) => text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);

/**
 * Brings each clinic's queue data to this version's layout before the node
 * serves it: finds the clinic's layout-1 keys with SCAN (on every master of a
 * cluster: SCAN names no key) and converts each with a script that declares
 * both its keys (one clinic, one slot), then marks the clinic
 * (`ch:{clinic}:queue:layout`) so that later starts skip the scan.
 *
 * Idempotent and safe with several nodes starting at once: each old key is
 * converted and deleted in one script, so a key another node converted first
 * is simply gone; a value this version already wrote (a room called since,
 * a newer measured duration, an ended mark) is kept.
 */
export async function upgradeQueueLayout(
  redis: RedisClient,
  clinicIds: readonly string[],
  logger: Logger,
  /** How long a clinic's upgrade is tried again while Redis does not answer (a loaded or restarting Redis at start). */
  retryForMs = 60_000,
): Promise<QueueUpgrade[]> {
  const scripts = defineScripts(redis, new URL('./upgrade/', import.meta.url), 'clinicQueueUpgrade', SCRIPTS);
  const results: QueueUpgrade[] = [];
  for (const clinic of clinicIds) {
    const giveUpAt = Date.now() + retryForMs;
    for (let attempt = 1; ; attempt++) {
      try {
        // Every step is idempotent: a try cut short is simply run again.
        results.push(await upgradeClinic(redis, scripts, clinic, logger));
        break;
      } catch (error) {
        if (!isRedisUnavailable(error) || Date.now() > giveUpAt) throw error;
        logger.warn({ clinic, attempt, err: (error as Error).message }, 'queue data upgrade: Redis did not answer; trying again');
        await new Promise((resolve) => setTimeout(resolve, Math.min(200 * attempt, 2000)));
      }
    }
  }
  return results;
}

async function upgradeClinic(
  redis: RedisClient,
  scripts: Record<(typeof SCRIPTS)[number], ScriptRunner>,
  clinic: string,
  logger: Logger,
): Promise<QueueUpgrade> {
  const keys = clinicKeys(clinic);
  const result: QueueUpgrade = { clinic, scanned: false, rooms: 0, durations: 0, ended: 0 };
  if ((await redis.get(keys.layout)) === QUEUE_LAYOUT) return result;
  result.scanned = true;
  const old = new RegExp(`^${escapeRegExp(keys.prefix)}(room|durations|ended):(.+)$`);
  const nodes: Redis[] = isCluster(redis) ? redis.nodes('master') : [redis];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, found] = await node.scan(cursor, 'MATCH', `${globEscape(keys.prefix)}*`, 'COUNT', 1000);
      cursor = next;
      for (const key of found) {
        const match = old.exec(key);
        if (!match) continue;
        const [, kind, name] = match as unknown as [string, 'room' | 'durations' | 'ended', string];
        if (kind === 'room') result.rooms += await scripts['upgrade-room']<number>([key, keys.rooms], [name]);
        else if (kind === 'durations') result.durations += (await scripts['upgrade-durations']<number>([key, keys.durations], [name])) > 0 ? 1 : 0;
        else result.ended += await scripts['upgrade-ended']<number>([key, keys.ended], [name]);
      }
    } while (cursor !== '0');
  }
  await redis.set(keys.layout, QUEUE_LAYOUT);
  const converted = { rooms: result.rooms, departmentsDurations: result.durations, endedTickets: result.ended };
  if (result.rooms + result.durations + result.ended > 0) logger.info({ clinic, layout: QUEUE_LAYOUT, ...converted }, 'queue data upgraded from layout 1');
  else logger.debug({ clinic, layout: QUEUE_LAYOUT }, 'queue data: no layout-1 keys found');
  return result;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
