import { Queue } from 'bullmq';
import { JOB_QUEUE_ACK_FENCE_KEY, JOB_QUEUE_PREFIX, JOB_QUEUES, recordingPurgeJobId, type RecordingJob, type RecordingMeta } from '@clinic-hub/protocol';
import { ReplicaAck, closeOverRedis, connectRedisClient, type RedisClient, type RedisTarget, type ReplicaAckObserver, type ReplicaAckPolicy } from '@clinic-hub/platform/redis';

/**
 * Purges on request: the recording's own purge job (the one its retention
 * delays, made by the media-server's recordings worker when it finalised the
 * recording) brought forward, with who asked and why. The recordings worker
 * runs it as it runs a purge by retention: files, metadata, transcript, job
 * records, then `recording.purged` to the clinic's webhooks.
 *
 * With a replica wait (HUB_REDIS_ACK_REPLICAS) a request counts as made once
 * that many replicas of the queue's shard hold its job: the admin is told it
 * is queued only then, so a failover does not lose it.
 */
export class RecordingPurges {
  private readonly connection: RedisClient;
  private readonly queue: Queue<RecordingJob>;
  private readonly ack: ReplicaAck;

  constructor(target: RedisTarget | string, name: string, ack: { policy: ReplicaAckPolicy; observe?: ReplicaAckObserver } = { policy: { replicas: 0, timeoutMs: 0 } }) {
    this.connection = connectRedisClient(target, `${name}:recording-purges`);
    this.connection.on('error', () => undefined);
    // Its own connection: the replica wait covers the job's writes and holds up nothing else.
    this.ack = new ReplicaAck(this.connection, ack.policy, ack.observe);
    this.queue = new Queue<RecordingJob>(JOB_QUEUES.recordings, { connection: this.connection, prefix: JOB_QUEUE_PREFIX });
    this.queue.on('error', () => undefined);
  }

  /**
   * Queues the purge now; the same request twice queues one purge. Resolves
   * false when the replica wait asked for is not met in time (the request is
   * made all the same; making it again waits again, fenced).
   */
  async request(meta: RecordingMeta, purgeRequest: NonNullable<RecordingJob['purgeRequest']>): Promise<boolean> {
    // The job may be another request's, not yet replicated: the fence covers it. A wait that fails confirms nothing.
    return this.ack.written(JOB_QUEUE_ACK_FENCE_KEY, () => this.queuePurge(meta, purgeRequest));
  }

  private async queuePurge(meta: RecordingMeta, purgeRequest: NonNullable<RecordingJob['purgeRequest']>): Promise<void> {
    const data: RecordingJob = { clinic: meta.clinic, consult: meta.consult, recording: meta.id, purgeRequest };
    const jobId = recordingPurgeJobId(data);
    const existing = await this.queue.getJob(jobId);
    const state = existing ? await existing.getState() : 'unknown';
    if (existing && state === 'active') return; // being purged now
    if (existing && (state === 'delayed' || state === 'waiting' || state === 'prioritized')) {
      await existing.updateData({ ...existing.data, purgeRequest });
      if (state === 'delayed') await existing.promote();
      return;
    }
    // None yet (not finalised), or one that failed for good: a new one.
    if (existing) await existing.remove();
    await this.queue.add('purge', data, { jobId, attempts: 10, backoff: { type: 'exponential', delay: 60_000 }, removeOnComplete: true });
  }

  /** Closes without waiting for a Redis that is gone. */
  async close(): Promise<void> {
    await closeOverRedis([this.connection], () => this.queue.close());
  }
}
