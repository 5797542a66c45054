import { availableParallelism, hostname } from 'node:os';
import { isIPv4 } from 'node:net';
import { z } from 'zod';
import { ConfigError, describeEnvIssues, secretFileVariable, withSecretFiles } from '@clinic-hub/platform/config';
import { REDIS_ENVIRONMENT_VARIABLES, REDIS_SECRET_VARIABLES, redisTargetForService, type RedisTarget, type ReplicaAckPolicy } from '@clinic-hub/platform/redis';
import { resolveWorkerBinary, type WorkerBinary } from './mediasoup-worker-bin.js';

/**
 * The media-server's configuration, read from environment variables once at
 * start-up. A bad value stops the start with a message naming the variable.
 */

const IceServer = z.object({
  urls: z.union([z.string().regex(/^(stun|turns?):/, 'a stun:, turn: or turns: URL'), z.array(z.string().regex(/^(stun|turns?):/, 'a stun:, turn: or turns: URL')).min(1)]),
  username: z.string().min(1).optional(),
  credential: z.string().min(1).optional(),
});
export type IceServer = z.infer<typeof IceServer>;

const port = z.coerce.number().int().min(1).max(65535);
const kbps = z.coerce
  .number({ error: 'must be a whole number of kbit/s' })
  .int('must be a whole number of kbit/s')
  .min(150, 'must be at least 150 (kbit/s): less is no usable picture')
  .max(20_000, 'must be at most 20000 (kbit/s)');

const Env = z
  .object({
    MEDIA_PORT: z.coerce.number().int().min(0).max(65535).default(8090),
    MEDIA_HOST: z.string().min(1).default('0.0.0.0'),
    /** The address browsers open (`https://media-1.example.jp`); stored in the node registry for the hub to hand out. */
    MEDIA_PUBLIC_URL: z.url().optional(),
    MEDIA_NODE_ID: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, '1–64 letters, digits, _ . or -').optional(),
    MEDIA_TOKEN_SECRET: z.string().min(32, 'must be at least 32 characters'),
    /**
     * The SFU: `mediasoup` (the default) or `werift` (a pure-JavaScript
     * fallback, used by itself when no mediasoup-worker has been built).
     */
    MEDIA_ENGINE: z.enum(['mediasoup', 'werift']).default('mediasoup'),
    /** mediasoup workers (processes) to run: one per core by default. */
    MEDIA_WORKERS: z.coerce.number().int().min(1).max(64).optional(),
    /** `1`: GET /debug/media answers with every room's transports, consumer layers and ICE protocol (no names). Off by default. */
    MEDIA_DEBUG_ENDPOINT: z.enum(['0', '1']).default('0'),
    /**
     * The ports media uses. mediasoup: worker i listens on UDP and TCP port
     * MEDIA_UDP_PORT_MIN + i (one of each per core, for every participant).
     * werift: one UDP port per participant from this range.
     */
    MEDIA_UDP_PORT_MIN: port.default(40000),
    MEDIA_UDP_PORT_MAX: port.default(49999),
    /** The public IPv4 address clients reach this node at, when it sits behind NAT or in a container with published ports. */
    MEDIA_ANNOUNCED_IP: z
      .string()
      .optional()
      .transform((value, ctx) => {
        if (value === undefined || value.trim() === '') return null;
        if (!isIPv4(value.trim())) {
          ctx.addIssue({ code: 'custom', message: 'must be an IPv4 address' });
          return z.NEVER;
        }
        return value.trim();
      }),
    /**
     * Extra host addresses to gather ICE candidates on, comma-separated.
     * 127.0.0.1 by default: werift skips loopback otherwise, and a browser on
     * the same machine (development, tests) needs it. Empty: none.
     */
    MEDIA_ICE_EXTRA_HOSTS: z
      .string()
      .default('127.0.0.1')
      .transform((value, ctx) => {
        const items = value.split(',').map((item) => item.trim()).filter((item) => item !== '');
        const bad = items.filter((item) => !isIPv4(item));
        if (bad.length > 0) {
          ctx.addIssue({ code: 'custom', message: `each entry must be an IPv4 address (not ${bad.map((b) => `"${b}"`).join(', ')})` });
          return z.NEVER;
        }
        return items;
      }),
    /** TURN (and STUN) servers handed to clients in `joined.iceServers`: a JSON array of RTCIceServer. */
    MEDIA_TURN_SERVERS: z
      .string()
      .default('[]')
      .transform((value, ctx) => {
        let parsed: unknown;
        try {
          parsed = JSON.parse(value.trim() === '' ? '[]' : value);
        } catch {
          ctx.addIssue({ code: 'custom', message: 'must be a JSON array such as [{"urls":"turn:turn.example.jp:3478","username":"u","credential":"p"}]' });
          return z.NEVER;
        }
        const servers = z.array(IceServer).max(8).safeParse(parsed);
        if (!servers.success) {
          ctx.addIssue({ code: 'custom', message: `must be a JSON array of {urls, username?, credential?}: ${servers.error.issues[0]?.message ?? 'invalid'}` });
          return z.NEVER;
        }
        return servers.data;
      }),
    /**
     * coturn's `static-auth-secret`: TURN servers listed without a username get
     * short-lived credentials made from it for each join (the TURN REST API
     * scheme), so no long-lived TURN password reaches a browser.
     */
    MEDIA_TURN_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
    MEDIA_TURN_CREDENTIAL_TTL_SECONDS: z.coerce.number().int().min(60).max(7 * 86400).default(12 * 3600),
    /** On SIGTERM: how long rooms may go on before their participants are told `closed: draining`. */
    MEDIA_DRAIN_GRACE_MS: z.coerce.number().int().min(0).max(24 * 3600_000).default(15 * 60_000),
    /** A connection that has not sent a valid `join` within this time is closed. */
    MEDIA_JOIN_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(10_000),
    /** WebSocket pings; a connection that misses two pongs is closed (its participant is dropped, or on mediasoup waits MEDIA_RESUME_GRACE_MS for a resume). */
    MEDIA_PING_INTERVAL_MS: z.coerce.number().int().min(100).max(600_000).default(10_000),
    /**
     * How long a participant whose signalling socket dropped (no close frame)
     * stays in the room, media flowing and nobody told, for its client to
     * resume on a new socket (mediasoup; `join.resume`); 0 drops them at once.
     */
    MEDIA_RESUME_GRACE_MS: z.coerce.number().int().min(0).max(600_000).default(15_000),
    /** Signalling messages one connection may send per second on average, with bursts of MEDIA_SIGNAL_BURST. */
    MEDIA_SIGNAL_RATE_PER_SECOND: z.coerce.number().min(0.1).max(10_000).default(20),
    MEDIA_SIGNAL_BURST: z.coerce.number().int().min(1).max(100_000).default(60),
    /**
     * How long a join waits for Redis to say whether its consultation is still
     * open; past it (Redis stalled or away) the join is refused with
     * STORE_UNAVAILABLE rather than admitted unchecked.
     */
    MEDIA_STORE_TIMEOUT_MS: z.coerce.number().int().min(50).max(60_000).default(2000),
    /**
     * How many replicas must hold a recording's finalise job before the node
     * forgets the recording (Redis WAIT; 1 with Sentinel or Cluster, 0 with
     * REDIS_URL), and how long to wait for them: unconfirmed, the recording
     * stays marked open and the node's next start queues the job again.
     */
    MEDIA_REDIS_ACK_REPLICAS: z.coerce.number().int().min(0).max(16).optional(),
    MEDIA_REDIS_ACK_TIMEOUT_MS: z.coerce.number().int().min(10).max(60_000).default(1000),
    /** How long the server waits for an answer to its offer before dropping the participant. */
    MEDIA_ANSWER_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(20_000),
    /**
     * The most a publisher's camera, and a shared screen, are asked to send
     * (kbit/s, told to the browser by REMB; lowered while subscribers report
     * loss, never below 150: engine/video-bitrate.ts).
     */
    MEDIA_VIDEO_MAX_KBPS: kbps.default(1500),
    MEDIA_SCREEN_MAX_KBPS: kbps.default(2500),
    /**
     * mediasoup's worker binary. Unset: the one `npm ci` (or `npm run
     * build:mediasoup`) built for the installed mediasoup (worker-build/README.md).
     */
    MEDIASOUP_WORKER_BIN: z.string().optional(),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  })
  .refine((env) => env.MEDIA_UDP_PORT_MAX - env.MEDIA_UDP_PORT_MIN + 1 >= (env.MEDIA_WORKERS ?? 1), {
    path: ['MEDIA_WORKERS'],
    message: 'needs one port per worker between MEDIA_UDP_PORT_MIN and MEDIA_UDP_PORT_MAX',
  })
  .refine((env) => env.MEDIA_UDP_PORT_MAX > env.MEDIA_UDP_PORT_MIN, {
    path: ['MEDIA_UDP_PORT_MAX'],
    message: 'must be greater than MEDIA_UDP_PORT_MIN',
    // Reported with the other variables' problems, as long as both ports themselves parsed.
    when: (payload) => {
      const value = payload.value as { MEDIA_UDP_PORT_MIN?: unknown; MEDIA_UDP_PORT_MAX?: unknown };
      return typeof value.MEDIA_UDP_PORT_MIN === 'number' && typeof value.MEDIA_UDP_PORT_MAX === 'number';
    },
  });

const MEDIA_SECRET_VARIABLES = ['MEDIA_TOKEN_SECRET', 'MEDIA_TURN_SERVERS', 'MEDIA_TURN_SECRET', ...REDIS_SECRET_VARIABLES] as const;
/** Never echoed in a configuration error. */
const SECRET_VARIABLES = new Set<string>(['MEDIA_TOKEN_SECRET', 'MEDIA_TURN_SERVERS', 'MEDIA_TURN_SECRET']);

export interface MediaConfig {
  port: number;
  host: string;
  /** What clients and the hub use to reach this node (http(s)://…; the page opens `<url>/signal` as ws(s)). */
  publicUrl: string | null;
  nodeId: string;
  redis: RedisTarget;
  tokenSecret: string;
  udpPortRange: [number, number];
  engine: 'mediasoup' | 'werift';
  /** mediasoup worker processes. */
  workers: number;
  debugEndpoint: boolean;
  announcedIp: string | null;
  iceExtraHosts: string[];
  turn: { servers: IceServer[]; secret: string | null; credentialTtlSeconds: number };
  drainGraceMs: number;
  joinTimeoutMs: number;
  pingIntervalMs: number;
  resumeGraceMs: number;
  signalRate: { perSecond: number; burst: number };
  answerTimeoutMs: number;
  /** How long a join waits for Redis's answer about its consultation. */
  storeTimeoutMs: number;
  /** The replica wait for recording finalise jobs (MEDIA_REDIS_ACK_REPLICAS, MEDIA_REDIS_ACK_TIMEOUT_MS). */
  redisAck: ReplicaAckPolicy;
  /** The most a publisher's camera and screen are asked to send, in bits per second. */
  videoMaxBitrate: { camera: number; screen: number };
  /**
   * The mediasoup-worker to run (pass `workerBin` to mediasoup's createWorker),
   * or why there is none and the command that makes one: consultations are
   * refused with that message rather than the node not starting.
   */
  mediasoupWorker: WorkerBinary;
  logLevel: z.infer<typeof Env>['LOG_LEVEL'];
}

/** Every variable the media-server reads (and the *_FILE variants). */
export const MEDIA_ENVIRONMENT_VARIABLES: readonly string[] = [
  ...new Set([...Object.keys(Env.shape), ...REDIS_ENVIRONMENT_VARIABLES, ...MEDIA_SECRET_VARIABLES.map(secretFileVariable)]),
];

export function loadMediaConfig(processEnv: NodeJS.ProcessEnv = process.env): MediaConfig {
  const env = withSecretFiles(processEnv, MEDIA_SECRET_VARIABLES, 'media-server configuration');
  const parsed = Env.safeParse(env);
  const redis = redisTargetForService(env, { acceptsCluster: true });
  if (!parsed.success || !redis.target) {
    const lines = [...(parsed.success ? [] : describeEnvIssues(parsed.error.issues, env, SECRET_VARIABLES)), ...redis.lines];
    throw new ConfigError(`Invalid media-server configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  return {
    port: e.MEDIA_PORT,
    host: e.MEDIA_HOST,
    publicUrl: e.MEDIA_PUBLIC_URL?.replace(/\/$/, '') ?? null,
    nodeId: e.MEDIA_NODE_ID ?? `${hostname()}-${process.pid}`,
    redis: redis.target,
    tokenSecret: e.MEDIA_TOKEN_SECRET,
    udpPortRange: [e.MEDIA_UDP_PORT_MIN, e.MEDIA_UDP_PORT_MAX],
    engine: e.MEDIA_ENGINE,
    workers: Math.min(e.MEDIA_WORKERS ?? availableParallelism(), e.MEDIA_UDP_PORT_MAX - e.MEDIA_UDP_PORT_MIN + 1),
    debugEndpoint: e.MEDIA_DEBUG_ENDPOINT === '1',
    announcedIp: e.MEDIA_ANNOUNCED_IP,
    iceExtraHosts: e.MEDIA_ICE_EXTRA_HOSTS,
    turn: { servers: e.MEDIA_TURN_SERVERS, secret: e.MEDIA_TURN_SECRET ?? null, credentialTtlSeconds: e.MEDIA_TURN_CREDENTIAL_TTL_SECONDS },
    drainGraceMs: e.MEDIA_DRAIN_GRACE_MS,
    joinTimeoutMs: e.MEDIA_JOIN_TIMEOUT_MS,
    pingIntervalMs: e.MEDIA_PING_INTERVAL_MS,
    resumeGraceMs: e.MEDIA_RESUME_GRACE_MS,
    signalRate: { perSecond: e.MEDIA_SIGNAL_RATE_PER_SECOND, burst: e.MEDIA_SIGNAL_BURST },
    answerTimeoutMs: e.MEDIA_ANSWER_TIMEOUT_MS,
    storeTimeoutMs: e.MEDIA_STORE_TIMEOUT_MS,
    redisAck: { replicas: e.MEDIA_REDIS_ACK_REPLICAS ?? (redis.target.mode === 'single' ? 0 : 1), timeoutMs: e.MEDIA_REDIS_ACK_TIMEOUT_MS },
    videoMaxBitrate: { camera: e.MEDIA_VIDEO_MAX_KBPS * 1000, screen: e.MEDIA_SCREEN_MAX_KBPS * 1000 },
    mediasoupWorker: resolveWorkerBinary(env),
    logLevel: e.LOG_LEVEL,
  };
}

export { ConfigError };
