import { rm } from 'node:fs/promises';
import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import { ReplicaAck, closeOverRedis, connectRedisClient, connectRedisClientForJobs, type RedisClient, type RedisTarget, type ReplicaAckPolicy } from '@clinic-hub/platform/redis';
import type { Logger } from 'pino';
import { AiRecordingJob, ConsultLanguage, JOB_QUEUE_ACK_FENCE_KEY, JOB_QUEUE_PREFIX, JOB_QUEUES, aiSessionJobId, consultKeys, recordingPurgeJobId, type RecordingJob, type RecordingMeta, type TracedJob } from '@clinic-hub/protocol';
import { WebhookEvents } from '@clinic-hub/platform/webhook-events';
import { continueTrace, jobTraceId, traceLogFields, tracedJob } from '@clinic-hub/platform/tracing';
import { verifyFile, type RecordingKey } from '@clinic-hub/recordings';
import { RecordingError } from '@clinic-hub/recordings';
import { recordingDir, sealedPath } from '@clinic-hub/recordings';
import { forgetPurgedRecording, getRecording, markRecordingFinal, purgeRecordingMeta, purgedRecording, recordingsAckFenceKey, setRecordingFields } from '@clinic-hub/recordings';

/**
 * The recordings queue (JOB_QUEUES.recordings), two kinds of job:
 *
 * - `finalise`, added when a recording stops: every file is read back and
 *   authenticated, its checksums compared with the metadata; then the
 *   recording is marked final, `recording-finalised` goes into the session
 *   record, an AiRecordingJob asks the AI workers to transcribe the whole
 *   recording, and the purge is scheduled. A file that fails marks the
 *   recording `corrupt` (logged as an error, not retried); its purge is
 *   scheduled all the same.
 * - `purge`, delayed until the clinic's retention for recordings has
 *   passed (the consultation's meta hash: retainRecordingMs): deletes the
 *   files, then in one step the metadata (kept as a tombstone until
 *   recording.purged is handed over) and the recording's transcript, noting
 *   `recording-purged` in the record if the record is still kept, and
 *   removes the job records that name the recording (its finalise and AI
 *   jobs; the consultation's AI session job once the consultation's own
 *   data is gone), and itself when done. An admin's purge request brings
 *   the same job forward (`purgeRequest` says who and why).
 *
 * A recording that is final is told to the clinic's webhooks as
 * `recording.ready`, one that is purged as `recording.purged` (ids, roles,
 * times and sizes: never a name), handed to the hub's dispatcher
 * (platform/webhook-events).
 *
 * Job ids are derived from the recording, so adding a job twice is a no-op,
 * and a job run again (a crash, or a failover that lost its completion)
 * repeats its steps to the same effect (recording-failover.test.ts). On a
 * Redis Cluster a recording's keys (its clinic's shard), its jobs and its
 * webhook events are on shards that fail over apart: what a job writes to the
 * recording is on a replica of the clinic's shard before the job goes on to
 * what counts on it (the worker's `confirmed`).
 * Workers need RECORDINGS_DIR on storage they share with the recording node.
 * Every job carries the trace of what caused it (protocol TracedJob): the
 * finalise job that of the action that stopped the recording, the purge and
 * the AI job the finalise job's.
 */

const KEPT = { removeOnComplete: { age: 7 * 86_400 }, removeOnFail: { age: 30 * 86_400 } };

export const finaliseJobId = (data: RecordingJob) => `finalise.${data.clinic}.${data.recording}`;

const RECORDING_UNCONFIRMED = 'no replica of the clinic\'s shard confirmed the recording\'s changes in time (MEDIA_REDIS_ACK_REPLICAS); the job is tried again';
export const purgeJobId = (data: RecordingJob) => recordingPurgeJobId(data);
export const aiRecordingJobId = (data: RecordingJob) => `${data.clinic}.${data.consult}.${data.recording}`;

/**
 * Adds recording jobs (the recorder) — a small wrapper so that callers never
 * build job ids themselves. With a replica wait (MEDIA_REDIS_ACK_REPLICAS) a
 * finalise job counts as added once that many replicas of the queue's shard
 * hold it: only then does the node forget the recording (its open marker),
 * so a failover cannot lose the job of a recording nobody would recover.
 */
export class RecordingJobs {
  readonly queue: Queue<RecordingJob>;
  private readonly connection: RedisClient;
  private readonly ack: ReplicaAck;

  constructor(redisTarget: RedisTarget | string, logger: Logger, ack: ReplicaAckPolicy = { replicas: 0, timeoutMs: 0 }) {
    this.connection = connectRedisClient(redisTarget, 'media:recording-jobs');
    this.ack = new ReplicaAck(this.connection, ack);
    this.connection.on('error', () => undefined);
    this.queue = new Queue<RecordingJob>(JOB_QUEUES.recordings, { connection: this.connection, prefix: JOB_QUEUE_PREFIX, defaultJobOptions: KEPT });
    this.queue.on('error', (error: Error) => logger.warn({ err: error.message }, 'recordings queue: Redis error'));
  }

  /**
   * Runs `stop` (the recorder's writes that stop the recording: its status,
   * purgeAt, record entry; none when they were made before), then adds the
   * finalise job; false when the replica wait asked for is not met in time
   * for the job, or for the stop's writes on the clinic's shard (the job is
   * added all the same).
   */
  async finalise(data: RecordingJob, stop?: () => Promise<unknown>): Promise<boolean> {
    const stopped = await this.ack.written(recordingsAckFenceKey(data.clinic), stop);
    const queued = await this.ack.written(JOB_QUEUE_ACK_FENCE_KEY, () =>
      this.queue.add('finalise', data, { jobId: finaliseJobId(data), attempts: 5, backoff: { type: 'exponential', delay: 2000 } }),
    );
    return stopped && queued;
  }

  async close(): Promise<void> {
    await closeOverRedis([this.connection], () => this.queue.close());
  }
}

export interface RecordingWorkerOptions {
  redisTarget: RedisTarget | string;
  dir: string;
  key: RecordingKey;
  logger: Logger;
  /** Jobs run one at a time by default: verification reads whole files. */
  concurrency?: number;
  /** The replica wait (MEDIA_REDIS_ACK_REPLICAS) for the recording.ready and recording.purged it hands to the hub's webhooks. */
  ack?: ReplicaAckPolicy;
}

export interface RecordingWorker {
  worker: Worker<RecordingJob>;
  close(): Promise<void>;
}

export function startRecordingWorker(options: RecordingWorkerOptions): RecordingWorker {
  const { logger } = options;
  const commands = connectRedisClient(options.redisTarget, 'media:recording-worker:cmd');
  commands.on('error', () => undefined);
  const ack = new ReplicaAck(commands, options.ack ?? { replicas: 0, timeoutMs: 0 });
  /**
   * `write` (changes to the recording), on a replica of the clinic's shard before the job goes on to what counts on
   * it; else the attempt fails and is retried. A recording's keys, its jobs and its webhook events live on shards that
   * fail over apart on a Cluster; on Sentinel too a job's steps can straddle a failover (CI, 2026-12-07: a mark written
   * on the old master in its last moments was lost, the later steps and the job's completion went to the new one: a
   * recording told ready, never marked final nor purged). `since` (ack.readiness at the attempt's start): nor if the
   * connection reconnected since then, the attempt's earlier writes (its job adds too) maybe lost with the old master.
   */
  const confirmed = async (clinic: string, write?: () => Promise<unknown>, since?: number) => {
    if (!(await ack.written(recordingsAckFenceKey(clinic), write, since))) throw new Error(RECORDING_UNCONFIRMED);
  };
  const blocking = connectRedisClientForJobs(options.redisTarget, 'media:recording-worker');
  blocking.on('error', () => undefined);
  const queue = new Queue<RecordingJob>(JOB_QUEUES.recordings, { connection: commands, prefix: JOB_QUEUE_PREFIX, defaultJobOptions: KEPT });
  const aiQueue = new Queue<AiRecordingJob>(JOB_QUEUES.aiRecordings, { connection: commands, prefix: JOB_QUEUE_PREFIX, defaultJobOptions: KEPT });
  // Only to remove a purged consultation's job record; the hub adds these jobs.
  const aiSessionQueue = new Queue(JOB_QUEUES.aiSessions, { connection: commands, prefix: JOB_QUEUE_PREFIX });
  for (const q of [queue, aiQueue, aiSessionQueue]) q.on('error', (error: Error) => logger.warn({ err: error.message, queue: q.name }, 'queue: Redis error'));
  // With the replica wait, an event is on a replica of the webhooks queue's shard before the job that hands it over goes on.
  const webhookEvents = new WebhookEvents(options.redisTarget, 'media:recording-worker', { ...(options.ack && { ack: options.ack }) });
  /** What a webhook says of a recording: ids, roles, times, sizes. */
  const recordingFacts = (meta: RecordingMeta) => ({
    recording: meta.id,
    consult: meta.consult,
    startedAt: meta.startedAt,
    stoppedAt: meta.stoppedAt,
    participants: meta.participants.map((p) => ({ id: p.id, part: p.part })),
    files: meta.files.length,
    bytes: meta.files.reduce((sum, f) => sum + f.plainBytes, 0),
  });

  /** `next`: the trace the jobs it adds carry (this attempt's span). */
  async function finalise(data: RecordingJob, log: Logger, next: TracedJob): Promise<string> {
    const since = ack.readiness;
    const meta = await getRecording(commands, data.clinic, data.recording);
    if (!meta) return 'gone';
    if (meta.status === 'recording') throw new Error('recording has not stopped yet');
    const purgeAt = meta.purgeAt ?? Date.now();
    const schedulePurge = () =>
      queue.add('purge', { ...data, ...next }, {
        jobId: purgeJobId(data),
        delay: Math.max(0, purgeAt - Date.now()),
        attempts: 10,
        backoff: { type: 'exponential', delay: 60_000 },
        // Nothing of the recording outlives its purge, this job's record included.
        removeOnComplete: true,
      });
    const ready = (finalisedAt: number) =>
      webhookEvents.emitRetrying({ id: `${data.clinic}-r-${data.recording}-ready`, type: 'recording.ready', clinic: data.clinic, occurredAt: finalisedAt, data: { ...recordingFacts(meta), finalisedAt, purgeAt } });
    const transcribe = async () => {
      const language = ConsultLanguage.safeParse(await commands.hget(consultKeys(data.clinic, data.consult).meta, 'language'));
      const aiJob = AiRecordingJob.parse({ clinic: data.clinic, consult: data.consult, recording: data.recording, language: language.success ? language.data : 'ja', ...next });
      await aiQueue.add('recording', aiJob, { jobId: aiRecordingJobId(data) });
    };
    if (meta.status === 'final' || meta.status === 'corrupt') {
      // A retry of a finalise that stopped after marking the recording (a crash, or a failover that lost the job's
      // completion): every step after the mark again, each keyed by the recording (the same job ids, the same event
      // id and finalisedAt), so none is missed and none is done twice. The mark may not be on a replica yet.
      await confirmed(data.clinic);
      if (meta.status === 'final') await transcribe();
      await schedulePurge();
      if (meta.status === 'final') await ready(meta.finalisedAt ?? Date.now());
      await confirmed(data.clinic, undefined, since);
      return meta.status;
    }
    const dir = recordingDir(options.dir, data.clinic, data.recording);
    const failures: string[] = [];
    for (const file of meta.files) {
      try {
        const facts = await verifyFile(sealedPath(dir, file.name), options.key, { clinic: data.clinic, recording: data.recording, name: file.name });
        if (facts.sha256 !== file.sha256 || facts.plainSha256 !== file.plainSha256 || facts.bytes !== file.bytes) {
          failures.push(`${file.name}: checksum differs from the metadata`);
        }
      } catch (error) {
        if (!(error instanceof RecordingError)) throw error;
        failures.push(`${file.name}: ${error.code} ${error.detail ?? ''}`.trim());
      }
    }
    if (failures.length > 0) {
      await setRecordingFields(commands, data.clinic, data.recording, { status: 'corrupt' });
      await schedulePurge();
      log.error({ clinic: data.clinic, recording: data.recording, failures }, 'recording failed verification: marked corrupt');
      throw new UnrecoverableError(`RECORDING_CORRUPT: ${failures.join('; ')}`);
    }
    const finalisedAt = Date.now();
    // The mark and its record entry at once: a retry finds both or neither.
    await confirmed(data.clinic, () => markRecordingFinal(commands, data.clinic, data.consult, data.recording, finalisedAt, meta.files.length));
    await transcribe();
    await schedulePurge();
    // The event id is the recording's: handed over again, it is not delivered again (unless a failover lost the first
    // delivery's record: webhooks are at least once).
    await ready(finalisedAt);
    // Everything this attempt wrote (the jobs it added too) before the job completes: a failover during the attempt
    // may have lost its first steps while the later ones went to the new master (CI, 2026-12-07: a purge job lost).
    await confirmed(data.clinic, undefined, since);
    log.info({ clinic: data.clinic, recording: data.recording, files: meta.files.length, purgeAt }, 'recording finalised');
    return 'final';
  }

  async function purge(data: RecordingJob, log: Logger): Promise<string> {
    const since = ack.readiness;
    const why = data.purgeRequest ? 'request' : 'retention';
    // Files first: a purge that stops half-way runs again and finds the metadata still there.
    await rm(recordingDir(options.dir, data.clinic, data.recording), { recursive: true, force: true });
    const meta = await getRecording(commands, data.clinic, data.recording);
    // Metadata, transcript, index entry and record entry in one step; the metadata stays as a tombstone until the
    // event is handed over, so a retry (a crash, a failover that lost the job's completion) tells the same event.
    // On a replica before anything else counts on it (else retried; a retry finds the tombstone, maybe not replicated yet).
    await confirmed(data.clinic, async () => {
      if (meta) await purgeRecordingMeta(commands, data.clinic, data.consult, data.recording, { recording: data.recording, files: String(meta.files.length), why });
    });
    // Job records name the consultation and the recording (ids only): they go too. A job still locked stays (0).
    await queue.remove(finaliseJobId(data));
    await aiQueue.remove(aiRecordingJobId(data));
    if ((await commands.exists(consultKeys(data.clinic, data.consult).meta)) === 0) await aiSessionQueue.remove(aiSessionJobId(data));
    const purged = await purgedRecording(commands, data.clinic, data.recording);
    if (!purged) return 'gone';
    const request = data.purgeRequest;
    await webhookEvents.emitRetrying({
      id: `${data.clinic}-r-${data.recording}-purged`,
      type: 'recording.purged',
      clinic: data.clinic,
      occurredAt: purged.purgedAt,
      data: { ...recordingFacts(purged.meta), why, ...(request ? { requestedBy: request.by, requestedAt: request.at, reason: request.reason } : {}) },
    });
    // Before the job completes: a tombstone a failover brought back would outlive its purge.
    await confirmed(data.clinic, () => forgetPurgedRecording(commands, data.clinic, data.recording), since);
    log.info({ clinic: data.clinic, recording: data.recording, files: purged.meta.files.length, why }, request ? 'recording purged on request' : 'recording purged by retention policy');
    return 'purged';
  }

  const worker = new Worker<RecordingJob>(
    JOB_QUEUES.recordings,
    async (job: Job<RecordingJob>) => {
      // Each attempt is a span of the trace of what caused the job; its log lines carry it.
      const trace = continueTrace(job.data.traceparent);
      const log = logger.child({ job: job.id, ...traceLogFields(trace) });
      if (job.name === 'finalise') return finalise(job.data, log, tracedJob(trace));
      if (job.name === 'purge') return purge(job.data, log);
      throw new UnrecoverableError(`unknown recordings job "${job.name}"`);
    },
    { connection: blocking, prefix: JOB_QUEUE_PREFIX, concurrency: options.concurrency ?? 1 },
  );
  worker.on('error', (error: Error) => logger.warn({ err: error.message }, 'recordings worker: Redis error'));
  worker.on('failed', (job, error) => {
    if (job && !(error instanceof UnrecoverableError)) logger.warn({ job: job.id, attempt: job.attemptsMade, err: error.message, ...jobTraceId(job.data) }, 'recordings job failed; retrying');
  });

  return {
    worker,
    async close() {
      await closeOverRedis([commands, blocking], async (force) => {
        await worker.close(force).catch(() => undefined);
        await Promise.all([queue.close(), aiQueue.close(), aiSessionQueue.close()]);
      });
      await webhookEvents.close();
    },
  };
}
