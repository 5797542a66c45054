/**
 * Every BullMQ queue of Clinic Hub, by name and prefix: for the services
 * that add jobs, the workers that run them and the readers that count them
 * (`clinic workers`, `GET /api/ops/workers`). Each queue's data schema
 * stands beside its domain (consult.ts, notify.ts).
 */

import { WEBHOOK_QUEUE_NAME, WEBHOOK_QUEUE_PREFIX } from './webhooks.js';

/**
 * BullMQ `prefix` of the consultation queues (JOB_QUEUES), for the services
 * that add and the workers that run the jobs alike. Its `{…}` hash tag keeps
 * each queue's keys in one Redis Cluster slot, as BullMQ's scripts need.
 */
export const JOB_QUEUE_PREFIX = 'ch:{consult-jobs}';

/**
 * Written before the replica wait of a job that may already exist (adding it
 * again adds nothing; ReplicaAck): a replica that has the fence has the job.
 * In the consultation queues' slot, so one serves them all.
 */
export const JOB_QUEUE_ACK_FENCE_KEY = `${JOB_QUEUE_PREFIX}:ack-fence`;

/** BullMQ queue names shared by the services that add and the workers that run the jobs. */
export const JOB_QUEUES = {
  /** One job per consultation whose audio the AI workers follow live: AiSessionJob. */
  aiSessions: 'ai-sessions',
  /** After a consultation: transcribe the whole recording: AiRecordingJob. */
  aiRecordings: 'ai-recordings',
  /** Finalise a recording (checksums, metadata) and later purge it by retention policy. */
  recordings: 'recordings',
} as const;

/**
 * The notifications queue (the hub adds, the notification worker sends) and
 * its prefix: its own `{notify}` hash tag, shared with the send records.
 */
export const NOTIFY_QUEUE_NAME = 'notifications';
export const NOTIFY_QUEUE_PREFIX = 'ch:{notify}';

/** Every queue as BullMQ names it: what the readers of queue depths watch. */
export const WATCHED_JOB_QUEUES: readonly { name: string; prefix: string }[] = [
  { name: JOB_QUEUES.aiSessions, prefix: JOB_QUEUE_PREFIX },
  { name: JOB_QUEUES.aiRecordings, prefix: JOB_QUEUE_PREFIX },
  { name: JOB_QUEUES.recordings, prefix: JOB_QUEUE_PREFIX },
  { name: NOTIFY_QUEUE_NAME, prefix: NOTIFY_QUEUE_PREFIX },
  { name: WEBHOOK_QUEUE_NAME, prefix: WEBHOOK_QUEUE_PREFIX },
];
