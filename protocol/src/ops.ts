/**
 * What the hub's ops API (`/api/ops/...`) answers about the services behind
 * it, for `clinic` and dashboards. Ids and counts only: no patient data.
 */

/** What an AI worker says about itself every AI_WORKER_HEARTBEAT_MS (no consultation ids, no patient data). */
export interface AiWorkerInfo {
  id: string;
  host: string;
  pid: number;
  startedAt: number;
  beatAt: number;
  concurrency: number;
  sessions: number;
  recordings: number;
  stt: string;
  emotion: string;
  /** Seconds behind the audio (largest over its sessions). */
  lagSeconds: number;
  stopping: boolean;
}

/** BullMQ states whose counts are reported per job queue. */
export const JOB_QUEUE_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'failed', 'completed', 'paused'] as const;
export type JobQueueState = (typeof JOB_QUEUE_STATES)[number];

export interface JobQueueDepth {
  queue: string;
  counts: Record<JobQueueState, number>;
  /** Worker connections BullMQ sees on the queue (any service's workers). */
  workers: number;
}

/** `GET /api/ops/workers`: the AI workers alive now and the depth of every job queue. */
export interface OpsWorkers {
  checkedAt: number;
  workers: AiWorkerInfo[];
  queues: JobQueueDepth[];
}
