import { Queue } from 'bullmq';
import type { RedisClient } from '../redis/cluster.js';
import {
  AI_WORKERS_KEY,
  JOB_QUEUE_STATES,
  WATCHED_JOB_QUEUES,
  aiWorkerKey,
  type AiWorkerInfo,
  type JobQueueDepth,
  type JobQueueState,
  type OpsWorkers,
} from '@clinic-hub/protocol';

/**
 * The AI workers alive now (those whose heartbeat, written by ai-workers'
 * WorkerHeartbeat, has not expired), newest first; ids whose hash expired are
 * taken out of the set.
 */
export async function readAiWorkers(redis: RedisClient): Promise<AiWorkerInfo[]> {
  const ids = await redis.smembers(AI_WORKERS_KEY);
  const hashes = await Promise.all(ids.map((id) => redis.hgetall(aiWorkerKey(id))));
  const workers: AiWorkerInfo[] = [];
  const gone: string[] = [];
  for (const [i, h] of hashes.entries()) {
    const id = ids[i]!;
    if (!h.beatAt) {
      gone.push(id);
      continue;
    }
    workers.push({
      id,
      host: h.host ?? '?',
      pid: Number(h.pid),
      startedAt: Number(h.startedAt),
      beatAt: Number(h.beatAt),
      concurrency: Number(h.concurrency),
      sessions: Number(h.sessions),
      recordings: Number(h.recordings),
      stt: h.stt ?? '?',
      emotion: h.emotion ?? '?',
      lagSeconds: Number(h.lagSeconds ?? 0),
      stopping: h.stopping === '1',
    });
  }
  if (gone.length > 0) await redis.srem(AI_WORKERS_KEY, ...gone);
  return workers.sort((a, b) => b.startedAt - a.startedAt);
}

/** Job counts by state and worker connections of each watched BullMQ queue. */
export async function readQueueDepths(redis: RedisClient, queues = WATCHED_JOB_QUEUES): Promise<JobQueueDepth[]> {
  return Promise.all(
    queues.map(async ({ name, prefix }) => {
      const queue = new Queue(name, { connection: redis, prefix });
      try {
        const [counts, workers] = await Promise.all([queue.getJobCounts(...JOB_QUEUE_STATES), queue.getWorkersCount().catch(() => 0)]);
        return {
          queue: name,
          counts: Object.fromEntries(JOB_QUEUE_STATES.map((s) => [s, counts[s] ?? 0])) as Record<JobQueueState, number>,
          workers,
        };
      } finally {
        await queue.close();
      }
    }),
  );
}

/** What `GET /api/ops/workers` answers. */
export async function opsWorkers(redis: RedisClient): Promise<OpsWorkers> {
  const [workers, queues] = await Promise.all([readAiWorkers(redis), readQueueDepths(redis)]);
  return { checkedAt: Date.now(), workers, queues };
}
