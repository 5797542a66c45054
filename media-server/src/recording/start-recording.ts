import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { connectRedisClient, endConnection, type RedisTarget, type ReplicaAckPolicy } from '@clinic-hub/platform/redis';
import type { RecordingConfig } from '@clinic-hub/recordings';
import { RecordingJobs, startRecordingWorker, type RecordingWorker } from './recording-jobs.js';
import { WeriftRecorder } from './room-recorder.js';

export interface RecordingServices {
  recorder: WeriftRecorder;
  registerMetrics(registry: Registry): void;
  /** Stops every recording (files closed, encrypted, finalise queued), then the worker and connections. */
  close(): Promise<void>;
}

/**
 * Recording for one media-server node: the recorder (handed to the rooms),
 * recovery of what a previous run of this node left open, and the worker
 * that finalises and purges (every node runs one; they share the queue).
 * Null when RECORDING_KEY is unset: recording is off.
 */
export async function startRecording(options: {
  config: RecordingConfig;
  redisTarget: RedisTarget | string;
  nodeId: string;
  logger: Logger;
  /** The replica wait for finalise jobs and the webhook events the worker hands over (MEDIA_REDIS_ACK_REPLICAS). */
  redisAck?: ReplicaAckPolicy;
}): Promise<RecordingServices | null> {
  const { config, redisTarget, nodeId, logger } = options;
  const key = config.key;
  if (!key) {
    logger.warn('RECORDING_KEY is not set: recording is off (clinicians asking to record get RECORDING_KEY_MISSING)');
    return null;
  }
  const redis = connectRedisClient(redisTarget, `media:${nodeId}:recording`);
  redis.on('error', () => undefined);
  const jobs = new RecordingJobs(redisTarget, logger, options.redisAck);
  const recorder = new WeriftRecorder({ redis, config: { ...config, key }, jobs, nodeId, logger });
  const recovered = await recorder.recoverInterrupted().catch((error: Error) => {
    logger.error({ err: error.message }, 'could not look for recordings left open by a previous run');
    return 0;
  });
  if (recovered > 0) logger.warn({ recovered }, 'closed recordings a previous run of this node left open');
  const worker: RecordingWorker = startRecordingWorker({ redisTarget, dir: config.dir, key, logger, ...(options.redisAck && { ack: options.redisAck }) });
  logger.info({ dir: config.dir, keyId: key.id, retentionDays: config.retentionMs / 86_400_000, segmentSeconds: config.segmentMs / 1000 }, 'recording on');
  let closing: Promise<void> | null = null;
  return {
    recorder,
    registerMetrics: (registry) => recorder.registerMetrics(registry),
    close: () =>
      (closing ??= (async () => {
        await recorder.stopAll('draining');
        await worker.close();
        await jobs.close();
        await endConnection(redis);
      })()),
  };
}
