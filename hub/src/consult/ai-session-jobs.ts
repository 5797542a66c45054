import { Queue } from 'bullmq';
import { AiSessionJob, JOB_QUEUE_PREFIX, JOB_QUEUES, aiSessionJobId } from '@clinic-hub/protocol';
import type { Logger } from '@clinic-hub/platform/logging';
import { closeOverRedis, connectRedisClient, type RedisTarget } from '@clinic-hub/platform/redis';
import { tracedJob } from '@clinic-hub/platform/tracing';

/** Finished sessions are kept this long, so that adding the same consultation again stays a no-op. */
const COMPLETED_KEPT_SECONDS = 86_400;
const FAILED_KEPT_SECONDS = 7 * 86_400;

/**
 * The AI workers' live sessions (JOB_QUEUES.aiSessions): one job per
 * consultation of a clinic with AI enabled, added at admission. The job id
 * is the consultation's, so an admission retried, or replayed after a lost
 * ack, never starts a second session.
 */
export class AiSessionJobs {
  private readonly queue: Queue<AiSessionJob>;
  private readonly connection;

  constructor(redisTarget: RedisTarget | string, name: string, logger: Logger) {
    this.connection = connectRedisClient(redisTarget, name);
    // ioredis reconnects by itself; the hub's own connection logs Redis outages.
    this.connection.on('error', () => undefined);
    this.queue = new Queue<AiSessionJob>(JOB_QUEUES.aiSessions, {
      connection: this.connection,
      prefix: JOB_QUEUE_PREFIX,
      defaultJobOptions: { removeOnComplete: { age: COMPLETED_KEPT_SECONDS }, removeOnFail: { age: FAILED_KEPT_SECONDS } },
    });
    // An EventEmitter's unheard 'error' would end the process.
    this.queue.on('error', (error: Error) => logger.warn({ err: error.message }, 'AI session queue: Redis error'));
  }

  static jobId(job: Pick<AiSessionJob, 'clinic' | 'consult'>): string {
    return aiSessionJobId(job);
  }

  /** Adds the session with the trace of the action being handled (the admission): the worker's log lines for it continue that trace. */
  async add(job: Omit<AiSessionJob, 'traceparent'>): Promise<void> {
    const data = AiSessionJob.parse({ ...job, ...tracedJob() });
    await this.queue.add('session', data, { jobId: AiSessionJobs.jobId(data) });
  }

  async close(): Promise<void> {
    await closeOverRedis([this.connection], () => this.queue.close());
  }
}
