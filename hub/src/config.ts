import { hostname } from 'node:os';
import { z } from 'zod';
import { CHAT_DEFAULT_ATTACHMENT_MAX_BYTES } from '@clinic-hub/protocol';
import { ConfigError } from './config-error.js';
import { loadNotifyConfig, type NotifyConfig } from './notify/notify-config.js';

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
  REDIS_URL: z.string().regex(/^rediss?:\/\//, 'must start with redis:// or rediss://'),
  HUB_TOKEN_SECRET: z.string().min(32, 'must be at least 32 characters'),
  CLINICS_DIR: z.string().min(1).default('config/clinics'),
  /** Largest event payload accepted; larger ones get PAYLOAD_TOO_LARGE. */
  HUB_MAX_PAYLOAD_BYTES: z.coerce.number().int().min(1024).max(1_048_576).default(16_384),
  HUB_DISPLAY_TOKEN_TTL_SECONDS: z.coerce.number().int().min(60).default(12 * 3600),
  HUB_PATIENT_TOKEN_TTL_SECONDS: z.coerce.number().int().min(60).default(12 * 3600),
  HUB_STAFF_TOKEN_TTL_SECONDS: z.coerce.number().int().min(60).default(10 * 3600),
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
});

/** 32 bytes from standard or URL-safe base64 (padding optional), or null. */
export function parseAttachmentKey(value: string): Buffer | null {
  if (!/^[A-Za-z0-9+/_-]{43}=?$/.test(value)) return null;
  const key = Buffer.from(value.replaceAll('-', '+').replaceAll('_', '/'), 'base64');
  return key.length === 32 ? key : null;
}

/** Never echoed in a configuration error. */
const SECRET_VARIABLES = new Set(['HUB_TOKEN_SECRET', 'HUB_ATTACHMENT_KEY']);

export interface HubConfig {
  port: number;
  host: string;
  publicUrl: string | null;
  nodeId: string;
  server: 'uws' | 'node';
  redisUrl: string;
  tokenSecret: string;
  clinicsDir: string;
  maxPayloadBytes: number;
  tokenTtlSeconds: { display: number; patient: number; default: number };
  logLevel: z.infer<typeof Env>['LOG_LEVEL'];
  /** Notifications (hub/src/notify): the hub enqueues, the worker delivers. */
  notify: NotifyConfig;
  /** Chat (hub/src/chat). */
  chat: {
    /** null: attachments are off (HUB_ATTACHMENT_KEY unset). */
    attachmentKey: Buffer | null;
    attachmentMaxBytes: number;
    /** 0: unlimited. */
    messagesPerSecond: number;
  };
}

export { ConfigError };

export function loadConfig(env: NodeJS.ProcessEnv = process.env): HubConfig {
  const parsed = Env.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const variable = issue.path.join('.');
      const shown = SECRET_VARIABLES.has(variable) || env[variable] === undefined ? '' : ` (got "${env[variable]}")`;
      return `  ${variable}: ${issue.message}${shown}`;
    });
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  return {
    port: e.HUB_PORT,
    host: e.HUB_HOST,
    publicUrl: e.HUB_PUBLIC_URL ?? null,
    nodeId: e.HUB_NODE_ID ?? `${hostname()}-${process.pid}`,
    server: e.HUB_SERVER,
    redisUrl: e.REDIS_URL,
    tokenSecret: e.HUB_TOKEN_SECRET,
    clinicsDir: e.CLINICS_DIR,
    maxPayloadBytes: e.HUB_MAX_PAYLOAD_BYTES,
    tokenTtlSeconds: {
      display: e.HUB_DISPLAY_TOKEN_TTL_SECONDS,
      patient: e.HUB_PATIENT_TOKEN_TTL_SECONDS,
      default: e.HUB_STAFF_TOKEN_TTL_SECONDS,
    },
    logLevel: e.LOG_LEVEL,
    notify: loadNotifyConfig(env),
    chat: {
      attachmentKey: e.HUB_ATTACHMENT_KEY,
      attachmentMaxBytes: e.HUB_ATTACHMENT_MAX_BYTES,
      messagesPerSecond: e.HUB_CHAT_MESSAGES_PER_SECOND,
    },
  };
}
