import type { RedisClient } from '@clinic-hub/platform/redis';
import type { NotificationQueue } from './notification-service.js';

/** A job id and its score in a BullMQ sorted set (finishedOn for completed and failed, the due time for delayed). */
export interface ScoredJobId {
  id: string;
  score: number;
}

/** The queue's job ids by state, restricted to one clinic (or every clinic). */
export interface ClinicJobIds {
  waiting: number;
  active: number;
  delayed: ScoredJobId[];
  completed: ScoredJobId[];
  failed: ScoredJobId[];
}

const SCAN_BATCH = 1000;

/** BullMQ scores a delayed job `due × 0x1000 + counter`, so jobs due the same millisecond stay ordered. */
export const delayedDueAt = (score: number) => Math.floor(score / 0x1000);

/**
 * Reads which jobs of the single notifications queue belong to a clinic. A
 * notification id is `<clinic>.<key>` and clinic ids have no dot, so the id
 * prefix says the clinic without loading the job. Sorted sets are walked with
 * ZSCAN MATCH (incremental: no long-running command while Redis serves the
 * waiting rooms); the wait and active lists are short, read whole.
 */
export async function clinicJobIds(redis: RedisClient, queue: NotificationQueue, clinic: string | null): Promise<ClinicJobIds> {
  const prefix = clinic === null ? '' : `${clinic}.`;
  const mine = (id: string) => id.startsWith(prefix);
  const listed = async (...keys: string[]) => {
    const lists = await Promise.all(keys.map((key) => redis.lrange(key, 0, -1)));
    return lists.flat().filter(mine).length;
  };
  const pattern = clinic === null ? '*' : `${escapeGlob(prefix)}*`;
  const [waiting, prioritized, active, delayed, completed, failed] = await Promise.all([
    listed(queue.keys.wait!, queue.keys.paused!),
    scanSortedSet(redis, queue.keys.prioritized!, pattern),
    listed(queue.keys.active!),
    scanSortedSet(redis, queue.keys.delayed!, pattern),
    scanSortedSet(redis, queue.keys.completed!, pattern),
    scanSortedSet(redis, queue.keys.failed!, pattern),
  ]);
  return { waiting: waiting + prioritized.length, active, delayed, completed, failed };
}

async function scanSortedSet(redis: RedisClient, key: string, pattern: string): Promise<ScoredJobId[]> {
  const found = new Map<string, number>();
  let cursor = '0';
  do {
    const [next, flat] = await redis.zscan(key, cursor, 'MATCH', pattern, 'COUNT', SCAN_BATCH);
    // ZSCAN may return a member twice while the set changes: the map keeps one.
    for (let i = 0; i + 1 < flat.length; i += 2) found.set(flat[i]!, Number(flat[i + 1]));
    cursor = next;
  } while (cursor !== '0');
  return [...found].map(([id, score]) => ({ id, score }));
}

const escapeGlob = (text: string) => text.replace(/[*?[\]\\]/g, '\\$&');
