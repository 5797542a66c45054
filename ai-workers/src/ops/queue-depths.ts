import { JOB_QUEUES, JOB_QUEUE_PREFIX } from '@clinic-hub/protocol';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { NOTIFY_QUEUE_NAME, NOTIFY_QUEUE_PREFIX } from '../../../hub/src/notify/notify-keys.js';

/** BullMQ states whose counts `clinic workers` shows. */
export const QUEUE_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'failed', 'completed', 'paused'] as const;
export type QueueState = (typeof QUEUE_STATES)[number];

export interface QueueDepth {
  queue: string;
  counts: Record<QueueState, number>;
  /** Worker connections BullMQ sees on the queue (any service's workers). */
  workers: number;
}

/** The queues of the consultation services and notifications, as BullMQ names them. */
export const WATCHED_QUEUES: readonly { name: string; prefix: string }[] = [
  { name: JOB_QUEUES.aiSessions, prefix: JOB_QUEUE_PREFIX },
  { name: JOB_QUEUES.aiRecordings, prefix: JOB_QUEUE_PREFIX },
  { name: JOB_QUEUES.recordings, prefix: JOB_QUEUE_PREFIX },
  { name: NOTIFY_QUEUE_NAME, prefix: NOTIFY_QUEUE_PREFIX },
];

export async function readQueueDepths(redis: Redis): Promise<QueueDepth[]> {
  return Promise.all(
    WATCHED_QUEUES.map(async ({ name, prefix }) => {
      const queue = new Queue(name, { connection: redis, prefix });
      try {
        const [counts, workers] = await Promise.all([queue.getJobCounts(...QUEUE_STATES), queue.getWorkersCount().catch(() => 0)]);
        return { queue: name, counts: Object.fromEntries(QUEUE_STATES.map((s) => [s, counts[s] ?? 0])) as Record<QueueState, number>, workers };
      } finally {
        await queue.close();
      }
    }),
  );
}
