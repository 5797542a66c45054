import { Queue } from 'bullmq';
import { AiSessionJob, JOB_QUEUE_ACK_FENCE_KEY, JOB_QUEUE_PREFIX, JOB_QUEUES, aiSessionJobId } from '@clinic-hub/protocol';
import type { Logger } from '@clinic-hub/platform/logging';
import { ReplicaAck, closeOverRedis, connectRedisClient, type ReplicaAckObserver, type ReplicaAckPolicy, type RedisTarget } from '@clinic-hub/platform/redis';
import { tracedJob } from '@clinic-hub/platform/tracing';

/** Finished sessions are kept this long, so that adding the same consultation again stays a no-op. */
const COMPLETED_KEPT_SECONDS = 86_400;
const FAILED_KEPT_SECONDS = 7 * 86_400;

/**
 * The AI workers' live sessions (JOB_QUEUES.aiSessions): one job per
 * consultation of a clinic with AI enabled, added at admission. The job id
 * is the consultation's, so an admission retried, or replayed after a lost
 * ack, never starts a second session.
 *
 * With a replica wait (HUB_REDIS_ACK_REPLICAS, as for queue changes) a job
 * counts as added once that many replicas of the queue's shard hold it, so
 * an admission acknowledged with live transcripts on does not lose its
 * session in a failover: `add` says whether they did in time.
 */
export class AiSessionJobs {
  private readonly queue: Queue<AiSessionJob>;
  private readonly connection;
  private readonly ack: ReplicaAck;

  constructor(redisTarget: RedisTarget | string, name: string, logger: Logger, ack: { policy: ReplicaAckPolicy; observe?: ReplicaAckObserver } = { policy: { replicas: 0, timeoutMs: 0 } }) {
    this.connection = connectRedisClient(redisTarget, name);
    // Its own connection: the replica wait covers the job's writes and holds up nothing else.
    this.ack = new ReplicaAck(this.connection, ack.policy, ack.observe);
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

  /**
   * Adds the session with the trace of the action being handled (the
   * admission): the worker's log lines for it continue that trace. Resolves
   * false when the replica wait asked for is not met in time (the job is
   * added all the same; adding it again, with the same id, waits again).
   */
  async add(job: Omit<AiSessionJob, 'traceparent'>): Promise<boolean> {
    const data = AiSessionJob.parse({ ...job, ...tracedJob() });
    // A wait that fails (the shard's master gone meanwhile) confirms nothing: the admission's retry waits again.
    return this.ack.written(JOB_QUEUE_ACK_FENCE_KEY, () => this.queue.add('session', data, { jobId: AiSessionJobs.jobId(data) }));
  }

  async close(): Promise<void> {
    await closeOverRedis([this.connection], () => this.queue.close());
  }
}
