import { Queue } from 'bullmq';
import { JOB_QUEUE_PREFIX, JOB_QUEUES, recordingPurgeJobId, type RecordingJob, type RecordingMeta } from '@clinic-hub/protocol';
import { closeOverRedis, connectRedisClient, type RedisClient, type RedisTarget } from '@clinic-hub/platform/redis';

/**
 * Purges on request: the recording's own purge job (the one its retention
 * delays, made by the media-server's recordings worker when it finalised the
 * recording) brought forward, with who asked and why. The recordings worker
 * runs it as it runs a purge by retention: files, metadata, transcript, job
 * records, then `recording.purged` to the clinic's webhooks.
 */
export class RecordingPurges {
  private readonly connection: RedisClient;
  private readonly queue: Queue<RecordingJob>;

  constructor(target: RedisTarget | string, name: string) {
    this.connection = connectRedisClient(target, `${name}:recording-purges`);
    this.connection.on('error', () => undefined);
    this.queue = new Queue<RecordingJob>(JOB_QUEUES.recordings, { connection: this.connection, prefix: JOB_QUEUE_PREFIX });
    this.queue.on('error', () => undefined);
  }

  /** Queues the purge now; the same request twice queues one purge. */
  async request(meta: RecordingMeta, purgeRequest: NonNullable<RecordingJob['purgeRequest']>): Promise<void> {
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
