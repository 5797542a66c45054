import { hostname } from 'node:os';
import { z } from 'zod';
import { CHAT_DEFAULT_ATTACHMENT_MAX_BYTES } from '@clinic-hub/protocol';
import { ConfigError, describeEnvIssues, secretFileVariable, withSecretFiles } from '@clinic-hub/platform/config';
import { REDIS_ENVIRONMENT_VARIABLES, REDIS_SECRET_VARIABLES, redisTargetForService, type RedisTarget } from '@clinic-hub/platform/redis';
import { TrustedProxies } from './http/client-address.js';
import type { SelfCheckinLimits } from './self-checkin/index.js';
import type { ChatQuotas } from './chat/chat-quotas.js';
import { NOTIFY_ENVIRONMENT_VARIABLES, loadNotifyConfig, type NotifyConfig } from './notify/notify-config.js';
import { RECORDING_ENVIRONMENT_VARIABLES, loadRecordingConfig, type RecordingConfig } from '@clinic-hub/recordings';

/**
 * The hub's whole configuration, read from environment variables once at
 * start-up. A bad value stops the start with a message naming the variable.
 */
const Env = z.object({
  HUB_PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  HUB_HOST: z.string().min(1).default('0.0.0.0'),
  /** The address people open, printed in links (patient pages, display URLs). */
  HUB_PUBLIC_URL: z.url().optional(),
  HUB_NODE_ID: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/).optional(),
  /** `uws`: uWebSockets.js (falls back to `node` if it cannot load). `node`: Node's HTTP server with ws. */
  HUB_SERVER: z.enum(['uws', 'node']).default('uws'),
  HUB_TOKEN_SECRET: z.string().min(32, 'must be at least 32 characters'),
  CLINICS_DIR: z.string().min(1).default('config/clinics'),
  /** Largest event payload accepted; larger ones get PAYLOAD_TOO_LARGE. */
  HUB_MAX_PAYLOAD_BYTES: z.coerce.number().int().min(1024).max(1_048_576).default(16_384),
  HUB_DISPLAY_TOKEN_TTL_SECONDS: z.coerce.number().int().min(60).default(12 * 3600),
  HUB_PATIENT_TOKEN_TTL_SECONDS: z.coerce.number().int().min(60).default(12 * 3600),
  HUB_STAFF_TOKEN_TTL_SECONDS: z.coerce.number().int().min(60).default(10 * 3600),
  /**
   * How long after its first token a session may be refreshed (auth:refresh): display screens for a month,
   * patients for a day (their ticket ends them sooner), everyone else (staff, doctors, admins, services) 16 h.
   */
  HUB_DISPLAY_SESSION_MAX_SECONDS: z.coerce.number().int().min(60).max(90 * 86400).default(30 * 86400),
  HUB_PATIENT_SESSION_MAX_SECONDS: z.coerce.number().int().min(60).max(90 * 86400).default(86400),
  HUB_STAFF_SESSION_MAX_SECONDS: z.coerce.number().int().min(60).max(90 * 86400).default(16 * 3600),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /**
   * AES-256-GCM key for chat attachments at rest: 32 random bytes, base64
   * (`openssl rand -base64 32`). Unset: the hub takes no attachments.
   */
  HUB_ATTACHMENT_KEY: z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined || value.trim() === '') return null;
      const key = parseAttachmentKey(value.trim());
      if (!key) {
        ctx.addIssue({ code: 'custom', message: 'must be 32 bytes in base64 (44 characters; make one with `openssl rand -base64 32`)' });
        return z.NEVER;
      }
      return key;
    }),
  /** Largest chat attachment accepted. */
  HUB_ATTACHMENT_MAX_BYTES: z.coerce.number().int().min(1024).max(50 * 1024 * 1024).default(CHAT_DEFAULT_ATTACHMENT_MAX_BYTES),
  /** Chat messages one connection may send per second, on average (bursts of 5 s worth); 0: no limit. */
  HUB_CHAT_MESSAGES_PER_SECOND: z.coerce.number().min(0).max(100_000).default(5),
  /**
   * Where chat attachments' encrypted bytes are stored (Redis keeps only their metadata): a directory every
   * hub node shares (a volume). Relative paths are from the working directory.
   */
  HUB_ATTACHMENTS_DIR: z.string().min(1).default('var/attachments'),
  /** Chat messages per minute, over every socket and node (CHAT_QUOTA_EXCEEDED past it); 0: no quota. */
  HUB_CHAT_QUOTA_MESSAGES_PER_MINUTE_USER: z.coerce.number().int().min(0).max(1_000_000).default(120),
  HUB_CHAT_QUOTA_MESSAGES_PER_MINUTE_THREAD: z.coerce.number().int().min(0).max(1_000_000).default(600),
  HUB_CHAT_QUOTA_MESSAGES_PER_MINUTE_CLINIC: z.coerce.number().int().min(0).max(10_000_000).default(12_000),
  /** Attachment megabytes (MiB) uploaded per day (UTC); 0: no quota. */
  HUB_CHAT_QUOTA_ATTACHMENT_MB_PER_DAY_USER: z.coerce.number().min(0).max(1_000_000).default(50),
  HUB_CHAT_QUOTA_ATTACHMENT_MB_PER_DAY_THREAD: z.coerce.number().min(0).max(1_000_000).default(200),
  HUB_CHAT_QUOTA_ATTACHMENT_MB_PER_DAY_CLINIC: z.coerce.number().min(0).max(100_000_000).default(10_240),
  /**
   * Web origins (`https://clinic.example.jp`), comma-separated, whose pages may
   * open sockets besides the hub's own; `*` allows any (development only).
   * Clients that send no Origin (the CLI, k6, servers) are always let through:
   * their token is what they are checked by.
   */
  HUB_ALLOWED_ORIGINS: z
    .string()
    .default('')
    .transform((value, ctx) => {
      const items = value.split(',').map((item) => item.trim()).filter((item) => item !== '');
      if (items.includes('*')) return '*' as const;
      const bad = items.filter((item) => !isOrigin(item));
      if (bad.length > 0) {
        ctx.addIssue({ code: 'custom', message: `each origin is scheme://host[:port] with no path, or * (not ${bad.map((b) => `"${b}"`).join(', ')})` });
        return z.NEVER;
      }
      return items.map((item) => new URL(item).origin);
    }),
  /**
   * Addresses or CIDR ranges of our own load balancers, comma-separated. Only
   * requests from these may name the client in X-Forwarded-For (the audit
   * stream's "from"); empty: every peer is the client itself.
   */
  HUB_TRUSTED_PROXIES: z
    .string()
    .default('')
    .transform((value, ctx) => {
      const items = value.split(',').map((item) => item.trim()).filter((item) => item !== '');
      try {
        return new TrustedProxies(items);
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: `${(error as Error).message}; give IP addresses or CIDR ranges such as 10.0.0.0/8` });
        return z.NEVER;
      }
    }),
  /** Events one socket may send per second on average, with bursts of HUB_RATE_LIMIT_SOCKET_BURST; 0: no limit. */
  HUB_RATE_LIMIT_SOCKET_PER_SECOND: z.coerce.number().min(0).max(1_000_000).default(50),
  HUB_RATE_LIMIT_SOCKET_BURST: z.coerce.number().int().min(1).max(10_000_000).default(200),
  /** Events one user (token sub) may send per second over all its sockets on this node; 0: no limit. Display tokens are exempt. */
  HUB_RATE_LIMIT_USER_PER_SECOND: z.coerce.number().min(0).max(1_000_000).default(100),
  HUB_RATE_LIMIT_USER_BURST: z.coerce.number().int().min(1).max(10_000_000).default(500),
  /**
   * API requests (`/api/…`) per second from one client address, for requests without a user's token (none,
   * invalid, display or kiosk tokens); with one they count against the user's limit above, with their sockets'
   * events. 0: no limit.
   */
  HUB_RATE_LIMIT_ADDRESS_PER_SECOND: z.coerce.number().min(0).max(1_000_000).default(20),
  HUB_RATE_LIMIT_ADDRESS_BURST: z.coerce.number().int().min(1).max(10_000_000).default(100),
  /**
   * Queue events of a clinic that arrive within this many ms go out together: one write per socket instead of
   * one per event (the kernel's per-socket send is most of a node's fan-out cost); 0: each at once.
   */
  HUB_FANOUT_COALESCE_MS: z.coerce.number().int().min(0).max(50).default(5),
  /**
   * How long a Redis command may go unanswered before it fails (a Redis that is up but stalled: SIGSTOP, a
   * long fork, a saturated network); the action then gets STORE_UNAVAILABLE. /readyz and /healthz ping with it.
   */
  HUB_REDIS_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(2000),
  /**
   * Replicas that must hold a queue change before it is acknowledged (Redis WAIT). Default: 1 with
   * REDIS_SENTINELS (an acknowledged change survives a failover), 0 with REDIS_URL (one Redis: AOF is the guarantee).
   */
  HUB_REDIS_ACK_REPLICAS: z.coerce.number().int().min(0).max(16).optional(),
  /** How long a change waits for those replicas before the action is answered STORE_UNAVAILABLE (done; retry replays it). */
  HUB_REDIS_ACK_TIMEOUT_MS: z.coerce.number().int().min(10).max(60_000).default(1000),
  /** The most a client action (or an API request) may take before it is answered STORE_UNAVAILABLE, whatever it waits for. */
  HUB_ACTION_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(5000),
  /** Webhooks (hub/src/webhooks): how long a receiver may take to answer, the first retry's delay (doubling) and the attempts in all. */
  HUB_WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(10_000),
  HUB_WEBHOOK_BACKOFF_MS: z.coerce.number().int().min(10).max(3_600_000).default(10_000),
  HUB_WEBHOOK_ATTEMPTS: z.coerce.number().int().min(1).max(20).default(8),
  /** On SIGTERM: how long /readyz answers 503 before connected clients are moved, so the load balancer stops sending new ones. */
  HUB_DRAIN_GRACE_MS: z.coerce.number().int().min(0).max(600_000).default(3000),
  /** On SIGTERM: how long actions already started may take to finish and be acknowledged. */
  HUB_DRAIN_TIMEOUT_MS: z.coerce.number().int().min(0).max(600_000).default(10_000),
  /**
   * Signs the room tokens the media-server verifies (its own MEDIA_TOKEN_SECRET,
   * the same value). Unset: video consultations are off (CONSULT_DISABLED).
   */
  MEDIA_TOKEN_SECRET: z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined || value.trim() === '') return null;
      if (value.length < 32) {
        ctx.addIssue({ code: 'custom', message: 'must be at least 32 characters (make one with `openssl rand -base64 48`)' });
        return z.NEVER;
      }
      return value;
    }),
  /** Self check-ins one kiosk (its token's sub) may make per minute; 0: no limit. */
  HUB_KIOSK_CHECKINS_PER_MINUTE: z.coerce.number().int().min(0).max(100_000).default(10),
  /** Self check-ins from phones (posters and arrival links) per clinic per minute; 0: no limit. */
  HUB_MOBILE_CHECKINS_PER_MINUTE: z.coerce.number().int().min(0).max(100_000).default(30),
  /** Self check-ins from phones per client address per hour (a clinic's Wi-Fi is one address); 0: no limit. */
  HUB_MOBILE_CHECKINS_PER_ADDRESS_PER_HOUR: z.coerce.number().int().min(0).max(100_000).default(20),
  /** Unknown appointment codes one kiosk or address may try per 10 minutes before its tries are refused; 0: no limit. */
  HUB_WRONG_ARRIVAL_CODES_PER_10_MINUTES: z.coerce.number().int().min(0).max(100_000).default(10),
  /** How long a room token lets its holder join (and rejoin after a drop); participants ask for fresh ones with consult:join. */
  CONSULT_ROOM_TOKEN_TTL_SECONDS: z.coerce.number().int().min(30).max(3600).default(300),
  /** How long an invitation link (interpreter, family) stays valid: they have no hub token to ask for a fresh one. */
  CONSULT_INVITE_TTL_SECONDS: z.coerce.number().int().min(60).max(86_400).default(1800),
});

const MIB = 1024 * 1024;

function isOrigin(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'https:' || url.protocol === 'http:') && url.origin === value.replace(/\/$/, '');
  } catch {
    return false;
  }
}

/** Read from NAME or from the file NAME_FILE names (Docker secrets). */
const HUB_SECRET_VARIABLES = ['HUB_TOKEN_SECRET', 'HUB_ATTACHMENT_KEY', ...REDIS_SECRET_VARIABLES, 'MEDIA_TOKEN_SECRET'] as const;

/** Every variable the hub reads (its own, the notify domain's, and the *_FILE variants): deployment files are checked against it. */
export const HUB_ENVIRONMENT_VARIABLES: readonly string[] = [
  ...new Set([...Object.keys(Env.shape), ...REDIS_ENVIRONMENT_VARIABLES, ...HUB_SECRET_VARIABLES.map(secretFileVariable), ...NOTIFY_ENVIRONMENT_VARIABLES, ...RECORDING_ENVIRONMENT_VARIABLES]),
];

/** 32 bytes from standard or URL-safe base64 (padding optional), or null. */
export function parseAttachmentKey(value: string): Buffer | null {
  if (!/^[A-Za-z0-9+/_-]{43}=?$/.test(value)) return null;
  const key = Buffer.from(value.replaceAll('-', '+').replaceAll('_', '/'), 'base64');
  return key.length === 32 ? key : null;
}

/** Never echoed in a configuration error. */
const SECRET_VARIABLES = new Set(['HUB_TOKEN_SECRET', 'HUB_ATTACHMENT_KEY', 'MEDIA_TOKEN_SECRET']);

export interface HubConfig {
  port: number;
  host: string;
  publicUrl: string | null;
  nodeId: string;
  server: 'uws' | 'node';
  /** REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES (@clinic-hub/platform/redis). */
  redis: RedisTarget;
  tokenSecret: string;
  clinicsDir: string;
  maxPayloadBytes: number;
  tokenTtlSeconds: { display: number; patient: number; default: number };
  /** The longest a session may be refreshed for, from its first token (auth:refresh refuses after: AUTH_SESSION_EXPIRED). */
  sessionMaxSeconds: { display: number; patient: number; default: number };
  logLevel: z.infer<typeof Env>['LOG_LEVEL'];
  /** Notifications (hub/src/notify): the hub enqueues, the worker delivers. */
  notify: NotifyConfig;
  /** Recording exports (hub/src/recordings): RECORDINGS_DIR and RECORDING_KEY, shared with the media-server; no key: RECORDING_KEY_MISSING. */
  recordings: RecordingConfig;
  /** Chat (hub/src/chat). */
  chat: {
    /** null: attachments are off (HUB_ATTACHMENT_KEY unset). */
    attachmentKey: Buffer | null;
    attachmentMaxBytes: number;
    /** 0: unlimited. */
    messagesPerSecond: number;
    /** Where the attachments' encrypted bytes live. */
    attachmentsDir: string;
    quotas: ChatQuotas;
  };
  /** Web origins allowed to open sockets besides the hub's own (`*`: any). */
  allowedOrigins: string[] | '*';
  /** Load balancers whose X-Forwarded-For names the client. */
  trustedProxies: TrustedProxies;
  /** Token buckets on client events; `perSecond` 0 turns one off. */
  rateLimits: {
    socket: { perSecond: number; burst: number };
    user: { perSecond: number; burst: number };
    /** API requests without a user's token, per client address. */
    address: { perSecond: number; burst: number };
  };
  /** Queue events arriving within this window are fanned out together (0: one by one). */
  fanoutCoalesceMs: number;
  /** What SIGTERM does: README.md, "Deploying" (draining a node). */
  drain: { graceMs: number; timeoutMs: number };
  /** A Redis command's budget (ioredis commandTimeout) and a whole action's, both in ms. */
  timeouts: { redisMs: number; actionMs: number };
  /** Queue changes are acknowledged once this many replicas have them (0: once the master has). */
  redisAck: { replicas: number; timeoutMs: number };
  /** Webhook deliveries (hub/src/webhooks; docs/webhooks.md). */
  webhooks: { timeoutMs: number; backoffMs: number; attempts: number };
  /** Check-ins by patients themselves (hub/src/self-checkin): limits per kiosk, per clinic's phones, per address. */
  selfCheckinLimits: SelfCheckinLimits;
  /** Video consultations (hub/src/consult; docs/consultations.md, "Admission"). */
  consult: {
    /** null: consultations are off. */
    mediaTokenSecret: string | null;
    roomTokenTtlSeconds: number;
    inviteTtlSeconds: number;
  };
}

export { ConfigError };

export function loadConfig(processEnv: NodeJS.ProcessEnv = process.env): HubConfig {
  const env = withSecretFiles(processEnv, HUB_SECRET_VARIABLES);
  const parsed = Env.safeParse(env);
  const redis = redisTargetForService(env, { acceptsCluster: true });
  if (!parsed.success || !redis.target) {
    const lines = [...(parsed.success ? [] : describeEnvIssues(parsed.error.issues, env, SECRET_VARIABLES)), ...redis.lines];
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  return {
    port: e.HUB_PORT,
    host: e.HUB_HOST,
    publicUrl: e.HUB_PUBLIC_URL ?? null,
    nodeId: e.HUB_NODE_ID ?? `${hostname()}-${process.pid}`,
    server: e.HUB_SERVER,
    redis: redis.target,
    tokenSecret: e.HUB_TOKEN_SECRET,
    clinicsDir: e.CLINICS_DIR,
    maxPayloadBytes: e.HUB_MAX_PAYLOAD_BYTES,
    tokenTtlSeconds: {
      display: e.HUB_DISPLAY_TOKEN_TTL_SECONDS,
      patient: e.HUB_PATIENT_TOKEN_TTL_SECONDS,
      default: e.HUB_STAFF_TOKEN_TTL_SECONDS,
    },
    sessionMaxSeconds: {
      display: e.HUB_DISPLAY_SESSION_MAX_SECONDS,
      patient: e.HUB_PATIENT_SESSION_MAX_SECONDS,
      default: e.HUB_STAFF_SESSION_MAX_SECONDS,
    },
    logLevel: e.LOG_LEVEL,
    notify: loadNotifyConfig(env),
    recordings: loadRecordingConfig(env),
    chat: {
      attachmentKey: e.HUB_ATTACHMENT_KEY,
      attachmentMaxBytes: e.HUB_ATTACHMENT_MAX_BYTES,
      messagesPerSecond: e.HUB_CHAT_MESSAGES_PER_SECOND,
      attachmentsDir: e.HUB_ATTACHMENTS_DIR,
      quotas: {
        messagesPerMinute: {
          user: e.HUB_CHAT_QUOTA_MESSAGES_PER_MINUTE_USER,
          thread: e.HUB_CHAT_QUOTA_MESSAGES_PER_MINUTE_THREAD,
          clinic: e.HUB_CHAT_QUOTA_MESSAGES_PER_MINUTE_CLINIC,
        },
        attachmentBytesPerDay: {
          user: Math.round(e.HUB_CHAT_QUOTA_ATTACHMENT_MB_PER_DAY_USER * MIB),
          thread: Math.round(e.HUB_CHAT_QUOTA_ATTACHMENT_MB_PER_DAY_THREAD * MIB),
          clinic: Math.round(e.HUB_CHAT_QUOTA_ATTACHMENT_MB_PER_DAY_CLINIC * MIB),
        },
      },
    },
    allowedOrigins: e.HUB_ALLOWED_ORIGINS,
    trustedProxies: e.HUB_TRUSTED_PROXIES,
    rateLimits: {
      socket: { perSecond: e.HUB_RATE_LIMIT_SOCKET_PER_SECOND, burst: e.HUB_RATE_LIMIT_SOCKET_BURST },
      user: { perSecond: e.HUB_RATE_LIMIT_USER_PER_SECOND, burst: e.HUB_RATE_LIMIT_USER_BURST },
      address: { perSecond: e.HUB_RATE_LIMIT_ADDRESS_PER_SECOND, burst: e.HUB_RATE_LIMIT_ADDRESS_BURST },
    },
    fanoutCoalesceMs: e.HUB_FANOUT_COALESCE_MS,
    drain: { graceMs: e.HUB_DRAIN_GRACE_MS, timeoutMs: e.HUB_DRAIN_TIMEOUT_MS },
    timeouts: { redisMs: e.HUB_REDIS_TIMEOUT_MS, actionMs: e.HUB_ACTION_TIMEOUT_MS },
    redisAck: { replicas: e.HUB_REDIS_ACK_REPLICAS ?? (redis.target.mode === 'single' ? 0 : 1), timeoutMs: e.HUB_REDIS_ACK_TIMEOUT_MS },
    webhooks: { timeoutMs: e.HUB_WEBHOOK_TIMEOUT_MS, backoffMs: e.HUB_WEBHOOK_BACKOFF_MS, attempts: e.HUB_WEBHOOK_ATTEMPTS },
    selfCheckinLimits: {
      kioskPerMinute: e.HUB_KIOSK_CHECKINS_PER_MINUTE,
      mobilePerMinute: e.HUB_MOBILE_CHECKINS_PER_MINUTE,
      addressPerHour: e.HUB_MOBILE_CHECKINS_PER_ADDRESS_PER_HOUR,
      wrongCodesPer10Minutes: e.HUB_WRONG_ARRIVAL_CODES_PER_10_MINUTES,
    },
    consult: {
      mediaTokenSecret: e.MEDIA_TOKEN_SECRET,
      roomTokenTtlSeconds: e.CONSULT_ROOM_TOKEN_TTL_SECONDS,
      inviteTtlSeconds: e.CONSULT_INVITE_TTL_SECONDS,
    },
  };
}
