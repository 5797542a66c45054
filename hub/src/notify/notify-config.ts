import { hostname } from 'node:os';
import { z } from 'zod';
import { QuietHours, type NotifyChannel } from '@clinic-hub/protocol';
import { ConfigError, describeEnvIssues, secretFileVariable, withSecretFiles } from '@clinic-hub/platform/config';
import { REDIS_ENVIRONMENT_VARIABLES, REDIS_SECRET_VARIABLES, redisTargetForService, type RedisTarget, type ReplicaAckPolicy } from '@clinic-hub/platform/redis';

const optionalText = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));
const ms = (fallback: number, min = 1) => z.coerce.number().int().min(min).default(fallback);

/**
 * Notifications' configuration, read from environment variables once at
 * start-up by the hub (which enqueues) and the worker (which delivers). Each
 * provider channel is on when all of its variables are set, off when none
 * are; some but not all is a mistake and stops the start.
 */
const Env = z.object({
  CLINICS_DIR: z.string().min(1).default('config/clinics'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  NOTIFY_NODE_ID: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/).optional(),
  NOTIFY_CONCURRENCY: z.coerce.number().int().min(1).max(200).default(8),
  /** Delivery attempts before a notification becomes a dead letter. */
  NOTIFY_ATTEMPTS: z.coerce.number().int().min(1).max(50).default(6),
  /** First retry delay; each further retry waits twice as long (30 s, 1 min, 2 min, 4 min, 8 min). */
  NOTIFY_BACKOFF_MS: ms(30_000),
  /** How long one provider call may take before the attempt counts as failed. */
  NOTIFY_SEND_TIMEOUT_MS: ms(15_000, 100),
  /** A job whose worker died is handed to another worker after this long. */
  NOTIFY_LOCK_MS: ms(30_000, 200),
  NOTIFY_STALLED_CHECK_MS: ms(15_000, 100),
  /** "HH:MM-HH:MM" in each clinic's timezone, or "off". */
  NOTIFY_QUIET_HOURS: z.string().default('21:00-08:00'),
  /** Dead letters are kept this long for staff to inspect and retry. */
  NOTIFY_DEAD_LETTER_DAYS: z.coerce.number().min(1).max(365).default(14),
  /** Send records (what a provider has accepted) are kept this long; no second send within it. */
  NOTIFY_SEND_RECORD_DAYS: z.coerce.number().min(1).max(90).default(7),
  /**
   * Replicas that must hold a notification (its job, its contact, its send record) before it counts as enqueued
   * or sent (Redis WAIT; on a Redis Cluster, on the shards that hold them). Default: 1 with REDIS_SENTINELS or
   * REDIS_CLUSTER_NODES (a failover loses none), 0 with REDIS_URL.
   */
  NOTIFY_REDIS_ACK_REPLICAS: z.coerce.number().int().min(0).max(16).optional(),
  /** How long to wait for them; none in time: STORE_UNAVAILABLE to whoever enqueued (the same key again is the same notification). */
  NOTIFY_REDIS_ACK_TIMEOUT_MS: z.coerce.number().int().min(10).max(60_000).default(1000),
  NOTIFY_IN_APP: z.enum(['on', 'off']).default('on'),
  NOTIFY_SMTP_URL: optionalText.pipe(z.string().regex(/^smtps?:\/\//, 'must start with smtp:// or smtps://').optional()),
  NOTIFY_SMTP_FROM: optionalText,
  NOTIFY_LINE_CHANNEL_ACCESS_TOKEN: optionalText,
  NOTIFY_LINE_API_BASE_URL: z.url().default('https://api.line.me'),
  /** The channel secret: the LINE webhook's x-line-signature is checked with it (LINE linking). */
  NOTIFY_LINE_CHANNEL_SECRET: optionalText,
  /** The official account's basic id ("@123abcde"): the link a patient opens to send their link code. */
  NOTIFY_LINE_BASIC_ID: optionalText.pipe(z.string().regex(/^@[a-z0-9_.-]{1,40}$/i, 'the account\'s basic id, e.g. @123abcde').optional()),
  /** Web Push (RFC 8030/8291) with VAPID (RFC 8292) keys: `npx web-push generate-vapid-keys`. */
  NOTIFY_WEB_PUSH_VAPID_PUBLIC_KEY: optionalText.pipe(z.string().regex(/^[A-Za-z0-9_-]{87}$/, 'a base64url P-256 public key (87 characters)').optional()),
  NOTIFY_WEB_PUSH_VAPID_PRIVATE_KEY: optionalText.pipe(z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'a base64url P-256 private key (43 characters)').optional()),
  /** Who push services contact about this sender: mailto: or https: (VAPID `sub`). */
  NOTIFY_WEB_PUSH_SUBJECT: optionalText.pipe(z.string().regex(/^(mailto:|https:\/\/)\S+$/, 'mailto:… or https://…').optional()),
  /** Push services the hub sends to (host or *.domain, comma-separated): a page cannot make the hub post anywhere else. */
  NOTIFY_WEB_PUSH_ENDPOINT_HOSTS: z
    .string()
    .default('fcm.googleapis.com,updates.push.services.mozilla.com,*.push.apple.com,*.notify.windows.com')
    .transform((value) => value.split(',').map((host) => host.trim().toLowerCase()).filter(Boolean)),
  NOTIFY_SMS_API_BASE_URL: z.url().default('https://api.twilio.com'),
  NOTIFY_SMS_ACCOUNT_SID: optionalText.pipe(z.string().regex(/^[A-Za-z0-9]{1,64}$/, 'letters and digits').optional()),
  NOTIFY_SMS_AUTH_TOKEN: optionalText,
  NOTIFY_SMS_FROM: optionalText.pipe(z.string().regex(/^\+[1-9]\d{6,14}$|^[A-Za-z0-9 ]{1,11}$/, '+E.164 number or sender id').optional()),
  /** The worker process's own HTTP port for /metrics, /healthz and /readyz; unset: none (the worker in `npm start` shares the hub's). */
  NOTIFY_METRICS_PORT: optionalText.pipe(z.coerce.number<string | undefined>().int().min(0).max(65535).optional()),
  NOTIFY_METRICS_HOST: z.string().min(1).default('0.0.0.0'),
  /** The hub's address as patients reach it: appointment reminders carry the arrival link under it (without it, the code only). */
  HUB_PUBLIC_URL: z.url().optional(),
});

/** Read from NAME or from the file NAME_FILE names (Docker secrets). */
const NOTIFY_SECRET_VARIABLES = [
  ...REDIS_SECRET_VARIABLES,
  'NOTIFY_SMTP_URL',
  'NOTIFY_LINE_CHANNEL_ACCESS_TOKEN',
  'NOTIFY_LINE_CHANNEL_SECRET',
  'NOTIFY_SMS_AUTH_TOKEN',
  'NOTIFY_WEB_PUSH_VAPID_PRIVATE_KEY',
] as const;

/** Every variable the notification config reads, *_FILE variants included: deployment files are checked against it. */
export const NOTIFY_ENVIRONMENT_VARIABLES: readonly string[] = [
  ...new Set([...Object.keys(Env.shape), ...REDIS_ENVIRONMENT_VARIABLES, ...NOTIFY_SECRET_VARIABLES.map(secretFileVariable)]),
];

export interface NotifyConfig {
  redis: RedisTarget;
  /** NOTIFY_REDIS_ACK_*: what an enqueued or sent notification waits for before it counts (README, "Scaling"). */
  redisAck: ReplicaAckPolicy;
  clinicsDir: string;
  logLevel: z.infer<typeof Env>['LOG_LEVEL'];
  nodeId: string;
  concurrency: number;
  attempts: number;
  backoffMs: number;
  sendTimeoutMs: number;
  lockMs: number;
  stalledCheckMs: number;
  /** Server default; a patient's own setting overrides it. */
  quietHours: QuietHours | null;
  deadLetterSeconds: number;
  sendRecordSeconds: number;
  channels: {
    /** In-app notices (the page, Web Push): on unless NOTIFY_IN_APP=off. */
    in_app: true | null;
    email: { url: string; from: string } | null;
    line: { channelAccessToken: string; baseUrl: string } | null;
    sms: { baseUrl: string; accountSid: string; authToken: string; from: string } | null;
  };
  /** Web Push for in-app notices whose page is not in view; null: off (NOTIFY_WEB_PUSH_*). */
  webPush: { publicKey: string; privateKey: string; subject: string; endpointHosts: string[] } | null;
  /** LINE linking: the webhook's channel secret and the account patients message; null: off. Needs the LINE channel. */
  lineLink: { channelSecret: string; basicId: string } | null;
  /** Channels that are off, with the variables that would turn them on (for the start-up log). */
  disabled: { channel: NotifyChannel; missing: string[] }[];
  /** The worker process's metrics and health endpoint; null: none. */
  metrics: { host: string; port: number } | null;
  /** HUB_PUBLIC_URL: base of the links in notices (an appointment's arrival link); null: reminders give the arrival code only. */
  publicUrl: string | null;
}

const CHANNEL_VARIABLES = {
  email: ['NOTIFY_SMTP_URL', 'NOTIFY_SMTP_FROM'],
  line: ['NOTIFY_LINE_CHANNEL_ACCESS_TOKEN'],
  sms: ['NOTIFY_SMS_ACCOUNT_SID', 'NOTIFY_SMS_AUTH_TOKEN', 'NOTIFY_SMS_FROM'],
  web_push: ['NOTIFY_WEB_PUSH_VAPID_PUBLIC_KEY', 'NOTIFY_WEB_PUSH_VAPID_PRIVATE_KEY', 'NOTIFY_WEB_PUSH_SUBJECT'],
  line_link: ['NOTIFY_LINE_CHANNEL_SECRET', 'NOTIFY_LINE_BASIC_ID'],
} as const;

const SECRET_VARIABLES = new Set<string>(NOTIFY_SECRET_VARIABLES);

export function parseQuietHours(value: string): QuietHours | null | undefined {
  if (value.trim().toLowerCase() === 'off') return null;
  const match = /^\s*(\d\d:\d\d)\s*-\s*(\d\d:\d\d)\s*$/.exec(value);
  const parsed = match && QuietHours.safeParse({ start: match[1], end: match[2] });
  return parsed && parsed.success ? parsed.data : undefined;
}

/**
 * Read by the hub (which enqueues) and by the notification worker (which
 * delivers); both run on one Redis, Sentinel or a Redis Cluster (README,
 * "Scaling").
 */
export function loadNotifyConfig(processEnv: NodeJS.ProcessEnv = process.env): NotifyConfig {
  const env = withSecretFiles(processEnv, NOTIFY_SECRET_VARIABLES, 'notification configuration');
  const parsed = Env.safeParse(env);
  const problems: string[] = [];
  const redis = redisTargetForService(env, { acceptsCluster: true });
  if (!parsed.success || !redis.target) {
    if (!parsed.success) problems.push(...describeEnvIssues(parsed.error.issues, env, SECRET_VARIABLES));
    problems.push(...redis.lines);
    throw new ConfigError(`Invalid notification configuration:\n${problems.join('\n')}`);
  }
  const e = parsed.data;
  const quietHours = parseQuietHours(e.NOTIFY_QUIET_HOURS);
  if (quietHours === undefined) problems.push(`  NOTIFY_QUIET_HOURS: must be "HH:MM-HH:MM" or "off" (got "${e.NOTIFY_QUIET_HOURS}")`);

  const disabled: NotifyConfig['disabled'] = [];
  const present = (channel: keyof typeof CHANNEL_VARIABLES): boolean => {
    const names = CHANNEL_VARIABLES[channel];
    const missing = names.filter((name) => e[name] === undefined);
    if (missing.length === names.length) {
      if (channel !== 'web_push' && channel !== 'line_link') disabled.push({ channel, missing: [...names] });
      return false;
    }
    for (const name of missing) problems.push(`  ${name}: required for the ${channel} channel once any of ${names.join(', ')} is set`);
    return missing.length === 0;
  };
  const email = present('email');
  const line = present('line');
  const sms = present('sms');
  const webPush = present('web_push');
  const lineLink = present('line_link');
  if (lineLink && !line) problems.push('  NOTIFY_LINE_CHANNEL_SECRET: LINE linking needs the LINE channel too (NOTIFY_LINE_CHANNEL_ACCESS_TOKEN)');
  if (e.NOTIFY_IN_APP === 'off') disabled.push({ channel: 'in_app', missing: ['NOTIFY_IN_APP=on'] });
  if (problems.length > 0) throw new ConfigError(`Invalid notification configuration:\n${problems.join('\n')}`);

  return {
    redis: redis.target,
    redisAck: { replicas: e.NOTIFY_REDIS_ACK_REPLICAS ?? (redis.target.mode === 'single' ? 0 : 1), timeoutMs: e.NOTIFY_REDIS_ACK_TIMEOUT_MS },
    clinicsDir: e.CLINICS_DIR,
    logLevel: e.LOG_LEVEL,
    nodeId: e.NOTIFY_NODE_ID ?? `notify-${hostname()}-${process.pid}`,
    concurrency: e.NOTIFY_CONCURRENCY,
    attempts: e.NOTIFY_ATTEMPTS,
    backoffMs: e.NOTIFY_BACKOFF_MS,
    sendTimeoutMs: e.NOTIFY_SEND_TIMEOUT_MS,
    lockMs: e.NOTIFY_LOCK_MS,
    stalledCheckMs: e.NOTIFY_STALLED_CHECK_MS,
    quietHours: quietHours ?? null,
    deadLetterSeconds: Math.round(e.NOTIFY_DEAD_LETTER_DAYS * 86400),
    sendRecordSeconds: Math.round(e.NOTIFY_SEND_RECORD_DAYS * 86400),
    channels: {
      in_app: e.NOTIFY_IN_APP === 'on' ? true : null,
      email: email ? { url: e.NOTIFY_SMTP_URL!, from: e.NOTIFY_SMTP_FROM! } : null,
      line: line ? { channelAccessToken: e.NOTIFY_LINE_CHANNEL_ACCESS_TOKEN!, baseUrl: e.NOTIFY_LINE_API_BASE_URL } : null,
      sms: sms
        ? {
            baseUrl: e.NOTIFY_SMS_API_BASE_URL,
            accountSid: e.NOTIFY_SMS_ACCOUNT_SID!,
            authToken: e.NOTIFY_SMS_AUTH_TOKEN!,
            from: e.NOTIFY_SMS_FROM!,
          }
        : null,
    },
    webPush: webPush
      ? {
          publicKey: e.NOTIFY_WEB_PUSH_VAPID_PUBLIC_KEY!,
          privateKey: e.NOTIFY_WEB_PUSH_VAPID_PRIVATE_KEY!,
          subject: e.NOTIFY_WEB_PUSH_SUBJECT!,
          endpointHosts: e.NOTIFY_WEB_PUSH_ENDPOINT_HOSTS,
        }
      : null,
    lineLink: lineLink ? { channelSecret: e.NOTIFY_LINE_CHANNEL_SECRET!, basicId: e.NOTIFY_LINE_BASIC_ID! } : null,
    disabled,
    metrics: e.NOTIFY_METRICS_PORT === undefined ? null : { host: e.NOTIFY_METRICS_HOST, port: e.NOTIFY_METRICS_PORT },
    publicUrl: e.HUB_PUBLIC_URL?.replace(/\/$/, '') ?? null,
  };
}
