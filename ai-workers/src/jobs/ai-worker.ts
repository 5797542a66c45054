import { AiRecordingJob, AiSessionJob, JOB_QUEUES, JOB_QUEUE_PREFIX, consultKeys, type TracedJob } from '@clinic-hub/protocol';
import { DelayedError, UnrecoverableError, WaitingError, Worker, type Job } from 'bullmq';
import type { Logger } from 'pino';
import { readQueueDepths } from '@clinic-hub/platform/job-queues';
import { ReplicaAck, closeOverRedis, connectRedisClient, connectRedisClientForJobs, endConnection } from '@clinic-hub/platform/redis';
import { continueTrace, jobTraceId, traceLogFields } from '@clinic-hub/platform/tracing';
import type { AiWorkerConfig } from '../config.js';
import { loadEngines, type Engines } from '../engines/load-engines.js';
import { AiError } from '../errors.js';
import { AiMetrics } from '../metrics.js';
import { WorkerHeartbeat } from '../ops/worker-registry.js';
import type { AiWorkerStatus } from '../ops/status-server.js';
import { AiSession } from '../session/ai-session.js';
import { transcribeRecording, type RecordingAudioSource } from './recording-transcription.js';

/** Unexpected failures of one session before its job fails for good. */
const SESSION_RETRIES = 5;
/** A session whose end no replica confirmed is tried again after this long. */
const UNCONFIRMED_RETRY_MS = 1000;
/**
 * BullMQ's own stall limit for session jobs: never reached. BullMQ counts a
 * job's stalls (its lock lapsing) over the job's whole life and offers no way
 * to reset the count (`stalledCounter` is read-only in its API; the hash
 * field behind it is internal). A session's job lives as long as its
 * consultation, and a session that runs well between lapses (a failover
 * each, over an hour) would run out of them. So the worker applies
 * AI_MAX_STALLED itself, to the stalls since the session last ran well
 * (SessionStalls), and BullMQ's limit stays out of the way.
 */
const BULLMQ_MAX_STALLED = Number.MAX_SAFE_INTEGER;
/** The wait before a job lock check that Redis failed is made again; it doubles each time, up to LOCK_CHECK_RETRY_MAX_MS. */
const LOCK_CHECK_RETRY_MS = 50;
const LOCK_CHECK_RETRY_MAX_MS = 500;

/**
 * Whether `token` still holds the job's lock (renewing it if so), by BullMQ's
 * `extendLock`: 1 is `held`, 0 is `lost` (lapsed, or another worker's). A
 * Redis error (a connection lost, CLUSTERDOWN or READONLY mid-failover) or no
 * reply at all is no answer: the check is made again, backing off, until
 * `lockMs` has passed since it began. At most that much of the lock was left
 * then, so past it the lock has lapsed unless a renewal reached Redis (and
 * then a check would have too): `unknown`, and the job is left to BullMQ's
 * stall check.
 */
async function checkJobLock(job: Job, token: string, lockMs: number, log: Logger): Promise<'held' | 'lost' | 'unknown'> {
  const deadline = Date.now() + lockMs;
  let failures = 0;
  for (let wait = LOCK_CHECK_RETRY_MS; ; wait = Math.min(2 * wait, LOCK_CHECK_RETRY_MAX_MS)) {
    let timer: NodeJS.Timeout | undefined;
    const answer = await Promise.race([
      job.extendLock(token, lockMs).catch((error: unknown) => {
        if (failures++ === 0) log.warn({ err: error instanceof Error ? error.message : String(error) }, 'AI session job\'s lock check failed (Redis): checking again until AI_JOB_LOCK_MS has passed');
        return null;
      }),
      // A check Redis does not answer (stalled, or the connection lost: jobs connections hold commands until Redis is back) ends with the lock's time.
      new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), Math.max(0, deadline - Date.now())))),
    ]);
    clearTimeout(timer);
    if (answer === 1) return 'held';
    if (answer === 0) return 'lost';
    if (Date.now() + wait >= deadline) return 'unknown';
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
}

/**
 * What a session job's `progress` (BullMQ's public per-job field, written
 * with `job.updateProgress`) holds: BullMQ's stall count the last time a run
 * of it ran well (held its lock, renewed, for a whole AI_JOB_LOCK_MS, and
 * read audio it had not read before or caught up with the stream). The
 * stalls since then are the ones AI_MAX_STALLED limits.
 */
interface SessionStalls {
  runningWellAfter: number;
}

const stallsWhenLastRunningWell = (progress: unknown): number =>
  typeof progress === 'object' && progress !== null && typeof (progress as Partial<SessionStalls>).runningWellAfter === 'number' ? (progress as SessionStalls).runningWellAfter : 0;

export interface RunningAiWorker {
  id: string;
  metrics: AiMetrics;
  engines: Engines;
  status(): AiWorkerStatus;
  /** Stop taking jobs; sessions in hand save their position and go back to the queue for another worker. */
  close(): Promise<void>;
}

export interface AiWorkerOptions {
  logger: Logger;
  /** Already loaded engines (tests, the benchmark); else loaded from the configuration. */
  engines?: Engines;
  /** Where whole recordings are read from; without one the worker takes no ai-recordings jobs. */
  recordings?: RecordingAudioSource;
}

/**
 * The AI worker: BullMQ workers for `ai-sessions` (one long job per live
 * consultation, up to AI_MAX_SESSIONS at once) and `ai-recordings`, a
 * heartbeat for `clinic workers`, and metrics. A worker that dies holds its
 * sessions' locks until they expire (AI_JOB_LOCK_MS); BullMQ then hands the
 * jobs to another worker, which resumes each from its saved position.
 */
export async function startAiWorker(config: AiWorkerConfig, options: AiWorkerOptions): Promise<RunningAiWorker> {
  const log = options.logger.child({ worker: config.workerId });
  const engines = options.engines ?? (await loadEngines(config));
  const redis = connectRedisClient(config.redis, `ai-worker:${config.workerId}`);
  let redisUp = false;
  redis.on('ready', () => (redisUp = true));
  redis.on('end', () => (redisUp = false));
  redis.on('error', () => (redisUp = false));
  const bullConnection = connectRedisClientForJobs(config.redis, `ai-worker-bull:${config.workerId}`);
  /** The replica wait for sessions' ends (AI_REDIS_ACK_REPLICAS), on the connection their writes go through. */
  const sessionEndAck = new ReplicaAck(redis, config.redisAck);
  /** Session runs in hand. Two of one job can overlap here: a run that lost its lock (Redis failing over) still going when this worker takes the job again. */
  const active = new Set<{ jobId: string; session: AiSession | null; abort: AbortController; ended: Promise<void>; end: () => void }>();
  let recordingsActive = 0;
  let stopping = false;
  const metrics = new AiMetrics(config.workerId, {
    sessions: () => active.size,
    lagSeconds: () => Math.max(0, ...[...active.values()].map((a) => (a.session?.lag ?? 0) / 1000)),
  });
  metrics.addQueueDepth(async () => (await readQueueDepths(redis)).filter((d) => d.queue.startsWith('ai-')));
  /** A job attempt's log lines: its id, and a span continuing the trace of the action that added it (the admission, the recording's stop). */
  const jobLog = (job: Job, data: TracedJob) => log.child({ job: job.id, ...traceLogFields(continueTrace(data.traceparent)) });

  const processSession = async (job: Job, token?: string) => {
    const parsed = AiSessionJob.safeParse(job.data);
    if (!parsed.success) {
      metrics.errors.inc({ code: 'AI_JOB_INVALID' });
      throw new UnrecoverableError(`AI_JOB_INVALID: ${parsed.error.issues[0]?.path.join('.')} ${parsed.error.issues[0]?.message}`);
    }
    const data = parsed.data;
    const sessionLog = jobLog(job, data);
    // Stalled again and again without running well in between (a worker that dies on this session each time): failed.
    const stallsInARow = job.stalledCounter - stallsWhenLastRunningWell(job.progress);
    if (stallsInARow > config.jobs.maxStalled) {
      metrics.errors.inc({ code: 'AI_SESSION_STALLED' });
      throw new UnrecoverableError(new AiError('AI_SESSION_STALLED', `${stallsInARow} stalls since it last ran well, AI_MAX_STALLED ${config.jobs.maxStalled}; ${job.stalledCounter} in its life`).message);
    }
    if (!engines.stt.supports(data.language)) {
      metrics.errors.inc({ code: 'AI_MODEL_MISSING' });
      throw new UnrecoverableError(new AiError('AI_MODEL_MISSING', `no speech-to-text model for ${data.language} on this worker (AI_STT_MODEL_${data.language.toUpperCase()})`).message);
    }
    const abort = new AbortController();
    const reader = connectRedisClient(config.redis, `ai-session-reader:${config.workerId}`, { maxRetriesPerRequest: null });
    let end = () => undefined as void;
    const ended = new Promise<void>((resolve) => (end = resolve));
    const entry = { jobId: job.id!, session: null as AiSession | null, abort, ended, end };
    active.add(entry);
    if (stopping) abort.abort();
    // Once this run has run well, the stalls before it no longer count against AI_MAX_STALLED. Checked every lock
    // length: its lock still its own then (extendLock) has been renewed since it took the job.
    let stallsCleared = job.stalledCounter === stallsWhenLastRunningWell(job.progress);
    const clearStalls = async () => {
      if (stallsCleared || !token || !entry.session?.steady) return;
      if ((await job.extendLock(token, config.jobs.lockMs).catch(() => 0)) !== 1) return;
      stallsCleared = true;
      await job.updateProgress({ runningWellAfter: job.stalledCounter } satisfies SessionStalls).catch(() => (stallsCleared = false));
      if (stallsCleared) sessionLog.info({ stalls: job.stalledCounter }, 'AI session running well again after stalling: its stalls so far no longer count against AI_MAX_STALLED');
    };
    const stallsCheck = setInterval(() => void clearStalls(), config.jobs.lockMs);
    try {
      let outcome;
      let lockUnknown = false;
      try {
        for (;;) {
          const session = new AiSession(data, { redis, reader, engines, metrics, config, log: sessionLog, ack: sessionEndAck });
          entry.session = session;
          outcome = await session.run(abort.signal);
          // A write refused: the session's claim is another run's or gone (superseded), or the run's last writes are
          // (rewound). A failover of the clinic's shard can lose this run's claim, or the finals it last committed,
          // while the job and its lock, on the queue's shard of a Redis Cluster, stay this worker's: then nothing
          // else runs the session, or redoes those finals. The run that holds the job's lock is the session's, so it
          // claims the session again and resumes from what the shard kept (as a run taking it over after a failover does).
          // Only a clear "not ours" ends the run here: a check Redis failed is made again (checkJobLock), as a job
          // returned while its lock was in fact ours would be completed with nobody running the session.
          if ((outcome !== 'superseded' && outcome !== 'rewound') || !token) break;
          const lock = await checkJobLock(job, token, config.jobs.lockMs, sessionLog);
          if (lock !== 'held') {
            lockUnknown = lock === 'unknown';
            break;
          }
          // The worker is stopping: the job goes back to the queue as an interrupted run's does, and the run that
          // takes it claims the session from what the shard kept. Returned, it would be completed (the lock is ours).
          if (abort.signal.aborted) {
            sessionLog.info({ lost: outcome }, 'AI session claim lost while this worker is stopping: its job handed back for another worker to claim the session again');
            outcome = 'interrupted';
            break;
          }
          sessionLog.warn(
            outcome === 'rewound'
              ? 'AI session\'s last writes lost (a failover of the clinic\'s shard) while this worker kept the job\'s lock: claimed again, redoing them from the saved positions'
              : 'AI session claim lost (a failover of the clinic\'s shard) while this worker kept the job\'s lock: claimed again, resuming from the saved positions',
          );
        }
      } catch (error) {
        // An unexpected failure: the session is tried again from its saved position, a few times, whatever attempts the job was added with.
        const failures = await redis.hincrby(consultKeys(data.clinic, data.consult).aiState, 'failures', 1).catch(() => SESSION_RETRIES);
        metrics.errors.inc({ code: 'INTERNAL' });
        sessionLog.error({ failures, err: error instanceof Error ? error.message : String(error) }, 'AI session failed');
        if (failures >= SESSION_RETRIES) throw error;
        await job.moveToDelayed(Date.now() + 1000 * 2 ** failures, token);
        throw new DelayedError();
      }
      if (lockUnknown) {
        // Neither completed nor failed: BullMQ leaves alone a job whose processor throws WaitingError (the processor
        // has moved it, it assumes). Its lock, no longer renewed, lapses and the stall check gives the job back to the
        // queue; whichever run takes it claims the session from what Redis kept.
        sessionLog.warn('AI session claim lost, and the job\'s lock could not be checked within AI_JOB_LOCK_MS: left to BullMQ\'s stall check, which gives the job back');
        throw new WaitingError();
      }
      if (outcome === 'interrupted') {
        await job.moveToWait(token);
        throw new WaitingError();
      }
      if (outcome === 'unconfirmed') {
        // Its end may still be lost in a failover: the next run finds it done (and waits for a replica again) or ends it again.
        await job.moveToDelayed(Date.now() + UNCONFIRMED_RETRY_MS, token);
        throw new DelayedError();
      }
      return { outcome };
    } finally {
      clearInterval(stallsCheck);
      active.delete(entry);
      entry.end();
      reader.disconnect();
      // BullMQ renews job locks by job id: an older run returning while a newer run of the same job goes on here
      // would stop the newer run's lock being renewed (it lapses, the job stalls again, and each stall counts towards
      // AI_MAX_STALLED). So an older run returns only after the newer ones.
      await Promise.all([...active].filter((other) => other.jobId === entry.jobId).map((other) => other.ended));
    }
  };

  const sessionWorker = new Worker(JOB_QUEUES.aiSessions, processSession, {
    connection: bullConnection,
    prefix: JOB_QUEUE_PREFIX,
    concurrency: config.jobs.maxSessions,
    lockDuration: config.jobs.lockMs,
    stalledInterval: config.jobs.stalledIntervalMs,
    maxStalledCount: BULLMQ_MAX_STALLED,
    name: config.workerId,
  });
  const workers: Worker[] = [sessionWorker];

  if (options.recordings && config.jobs.maxRecordings > 0) {
    const source = options.recordings;
    const recordingWorker = new Worker(
      JOB_QUEUES.aiRecordings,
      async (job: Job) => {
        const parsed = AiRecordingJob.safeParse(job.data);
        if (!parsed.success) {
          metrics.errors.inc({ code: 'AI_JOB_INVALID' });
          throw new UnrecoverableError(`AI_JOB_INVALID: ${parsed.error.issues[0]?.path.join('.')} ${parsed.error.issues[0]?.message}`);
        }
        recordingsActive++;
        try {
          return await transcribeRecording(parsed.data, { redis, engines, source, config, metrics, log: jobLog(job, parsed.data) });
        } catch (error) {
          if (error instanceof AiError && (error.code === 'AI_RECORDING_UNAVAILABLE' || error.code === 'AI_MODEL_MISSING')) throw new UnrecoverableError(error.message);
          throw error;
        } finally {
          recordingsActive--;
        }
      },
      { connection: bullConnection, prefix: JOB_QUEUE_PREFIX, concurrency: config.jobs.maxRecordings, lockDuration: config.jobs.lockMs, stalledInterval: config.jobs.stalledIntervalMs, name: config.workerId },
    );
    workers.push(recordingWorker);
  }

  for (const worker of workers) {
    worker.on('error', (error) => log.warn({ err: error.message }, 'BullMQ worker error'));
    // Logged by the worker whose check found the lapsed lock, not necessarily the one that ran the job.
    worker.on('stalled', (jobId) => log.warn({ job: jobId, queue: worker.name }, 'AI job stalled (its lock lapsed): back in the queue, a worker resumes it'));
    worker.on('failed', (job, error) => {
      if (!job) return;
      const code = /^([A-Z_]+):/.exec(error.message)?.[1] ?? 'INTERNAL';
      metrics.errors.inc({ code });
      log.warn({ job: job.id, queue: worker.name, code, attempts: job.attemptsMade, err: error.message, ...jobTraceId(job.data) }, 'AI job failed');
    });
  }

  const heartbeat = new WorkerHeartbeat(redis, config.workerId, () => ({
    concurrency: config.jobs.maxSessions,
    sessions: active.size,
    recordings: recordingsActive,
    stt: engines.stt.kind,
    emotion: engines.emotion?.name ?? 'off',
    lagSeconds: Math.round(Math.max(0, ...[...active.values()].map((a) => a.session?.lag ?? 0)) / 100) / 10,
    stopping,
  }));
  await heartbeat.start();
  log.info({ concurrency: config.jobs.maxSessions, stt: engines.stt.kind, emotion: engines.emotion?.name ?? 'off' }, 'AI worker ready');

  return {
    id: config.workerId,
    metrics,
    engines,
    status: () => ({ worker: config.workerId, redis: redisUp ? 'up' : 'down', running: !stopping, sessions: active.size }),
    async close() {
      if (stopping) return;
      stopping = true;
      await heartbeat.beat().catch(() => undefined);
      for (const { abort } of active.values()) abort.abort();
      await closeOverRedis([bullConnection], (force) => Promise.all(workers.map((w) => w.close(force))));
      await heartbeat.stop().catch(() => undefined);
      if (!options.engines) await engines.close();
      await endConnection(redis);
    },
  };
}
