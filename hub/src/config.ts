import { hostname } from 'node:os';
import { z } from 'zod';
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
});

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
}

export { ConfigError };

export function loadConfig(env: NodeJS.ProcessEnv = process.env): HubConfig {
  const parsed = Env.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const variable = issue.path.join('.');
      const shown = variable === 'HUB_TOKEN_SECRET' || env[variable] === undefined ? '' : ` (got "${env[variable]}")`;
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
  };
}
