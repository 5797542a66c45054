import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { ClinicRegistry } from '@clinic-hub/hub';
import { startTestRedis } from './redis.js';
import { REPO_ROOT, TEST_CLINICS_DIR, entryPoint } from './hub-node.js';
import { loadNotifyConfig, type NotificationService, type NotifyConfig } from '@clinic-hub/hub';
import { isRedisUnavailable } from '@clinic-hub/platform/redis';
import { LocalLineApi } from './providers/local-line-api.js';
import { LocalSmsApi } from './providers/local-sms-api.js';
import { LocalSmtpServer } from './providers/local-smtp-server.js';

export const TEST_CLINIC = 'testclinic';
export const LINE_TOKEN = 'test-line-channel-access-token';
export const SMS_ACCOUNT_SID = 'AC00000000000000000000000000000001';
export const SMS_AUTH_TOKEN = 'test-sms-auth-token';
export const SMS_FROM = '+81300000000';
export const SMTP_USER = 'notify';
export const SMTP_PASSWORD = 'smtp-pass wörd';
export const MAIL_FROM = 'テストクリニック <noreply@clinic.example.jp>';

/** A LINE user id as LINE writes them. */
/** Overrides for `fixture.env()`: no SMS provider (a notice to a phone then fails with NOTIFY_CHANNEL_DISABLED). */
export const WITHOUT_SMS = { NOTIFY_SMS_ACCOUNT_SID: undefined, NOTIFY_SMS_AUTH_TOKEN: undefined, NOTIFY_SMS_FROM: undefined };

export const lineUserId = (n: number) => `U${n.toString(16).padStart(32, '0')}`;

export interface NotifyFixture {
  redisUrl: string;
  line: LocalLineApi;
  sms: LocalSmsApi;
  smtp: LocalSmtpServer;
  clinics: ClinicRegistry;
  /** Environment for a worker or hub: every channel on, short timings for tests. */
  env(overrides?: Record<string, string | undefined>): Record<string, string>;
  config(overrides?: Record<string, string | undefined>): NotifyConfig;
  stop(): Promise<void>;
}

/** A private Redis and local LINE, SMS and SMTP providers for one test file. */
export async function startNotifyFixture(): Promise<NotifyFixture> {
  const redis = await startTestRedis();
  const line = await new LocalLineApi(LINE_TOKEN).start();
  const sms = await new LocalSmsApi(SMS_ACCOUNT_SID, SMS_AUTH_TOKEN).start();
  const smtp = await new LocalSmtpServer(SMTP_USER, SMTP_PASSWORD).start();
  const env = (overrides: Record<string, string | undefined> = {}): Record<string, string> => {
    const all: Record<string, string | undefined> = {
      REDIS_URL: redis.url,
      CLINICS_DIR: TEST_CLINICS_DIR,
      LOG_LEVEL: 'silent',
      NOTIFY_ATTEMPTS: '3',
      NOTIFY_BACKOFF_MS: '100',
      NOTIFY_SEND_TIMEOUT_MS: '5000',
      NOTIFY_LOCK_MS: '1000',
      NOTIFY_STALLED_CHECK_MS: '300',
      NOTIFY_QUIET_HOURS: 'off',
      NOTIFY_SMTP_URL: smtp.url(),
      NOTIFY_SMTP_FROM: MAIL_FROM,
      NOTIFY_LINE_CHANNEL_ACCESS_TOKEN: LINE_TOKEN,
      NOTIFY_LINE_API_BASE_URL: line.url,
      NOTIFY_SMS_API_BASE_URL: sms.url,
      NOTIFY_SMS_ACCOUNT_SID: SMS_ACCOUNT_SID,
      NOTIFY_SMS_AUTH_TOKEN: SMS_AUTH_TOKEN,
      NOTIFY_SMS_FROM: SMS_FROM,
      ...overrides,
    };
    return Object.fromEntries(Object.entries(all).filter((entry): entry is [string, string] => entry[1] !== undefined));
  };
  return {
    redisUrl: redis.url,
    line,
    sms,
    smtp,
    clinics: ClinicRegistry.fromDirectory(TEST_CLINICS_DIR),
    env,
    config: (overrides) => loadNotifyConfig(env(overrides)),
    async stop() {
      await Promise.all([line.stop(), sms.stop(), smtp.stop()]);
      await redis.cleanup();
    },
  };
}

/** Polls until `probe` returns something truthy. */
export async function waitFor<T>(probe: () => T | Promise<T>, what: string, timeoutMs = 10_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface WorkerProcess {
  process: ChildProcess;
  logs(): string;
  /** SIGKILL: no cleanup, locks and half-done sends stay as they are. */
  kill9(): Promise<void>;
  stop(): Promise<void>;
}

/** Runs hub/src/notify/worker-main.ts as its own process; resolves once it logged that it is ready. */
export async function startWorkerProcess(env: Record<string, string>): Promise<WorkerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', entryPoint('@clinic-hub/hub/notify-worker')], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-50_000)));
  child.stderr?.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-50_000)));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  await waitFor(() => {
    if (child.exitCode !== null) throw new Error(`worker exited: ${output}`);
    return output.includes('notification worker ready');
  }, 'the worker process to be ready', 20_000);
  return {
    process: child,
    logs: () => output,
    async kill9() {
      child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** The phone of reminder `n` of a ReminderStream: one phone per reminder, so the SMS provider counts each reminder's sends. */
export const reminderPhone = (n: number) => `+8190${String(n).padStart(8, '0')}`;

export interface ReminderStream {
  /** Reminder number → notification id, for every reminder acknowledged. */
  readonly acknowledged: Map<number, string>;
  /** What scheduling met and retried: STORE_UNAVAILABLE answers, and failures thrown (Redis away). */
  readonly seen: { storeUnavailable: number; thrown: number };
  /** Schedules reminder `n` until acknowledged; the same appointment and time each try (one notification). Its id. */
  scheduleUntilAcknowledged(n: number, startsAt: number): Promise<string>;
  /**
   * Five reminders; then `rounds` times: reminders scheduled one after another while `kill(round)` SIGKILLs a Redis
   * master (it resolves once a replica took over, naming what happened), and five more after it.
   */
  throughFailovers(rounds: number, kill: (round: number) => Promise<string>): Promise<void>;
  /** Waits until every acknowledged reminder's job has completed. */
  allCompleted(timeoutMs?: number): Promise<void>;
  /** Accepted SMS per acknowledged reminder (number → count), from the local provider. */
  sentCounts(): Map<number, number>;
}

/**
 * The stream of appointment reminders the notification failover tests schedule
 * (Sentinel: notify-failover, Cluster: notify-cluster): each the 1-hour SMS
 * reminder of an appointment an hour and `remindInMs` away, so it is a delayed
 * job across the failovers and still due when a retry after a failover
 * schedules it again.
 */
export function reminderStream(
  service: NotificationService,
  sms: LocalSmsApi,
  options: { clinic: string; remindInMs?: number; appointmentPrefix?: string },
): ReminderStream {
  const acknowledged = new Map<number, string>();
  const seen = { storeUnavailable: 0, thrown: 0 };
  const remindInMs = options.remindInMs ?? 20_000;
  const prefix = options.appointmentPrefix ?? 'failover';
  const scheduleUntilAcknowledged = async (n: number, startsAt: number): Promise<string> => {
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (Date.now() > deadline) throw new Error(`reminder ${n} never acknowledged`);
      try {
        const result = await service.scheduleAppointmentReminders({
          clinic: options.clinic,
          appointmentId: `${prefix}-${n}`,
          startsAt,
          contact: { channel: 'sms', address: reminderPhone(n) },
          kinds: ['reminder_1h'],
        });
        if (result.ok) {
          // Left out once its time has passed: the window must outlast every retry.
          if (result.reminders.length === 0) throw new Error(`reminder ${n}: its time passed before it was acknowledged`);
          return result.reminders[0]!.id;
        }
        if (result.error.code !== 'STORE_UNAVAILABLE') throw new Error(`reminder ${n}: ${result.error.code}`);
        seen.storeUnavailable++;
      } catch (error) {
        if (!isRedisUnavailable(error)) throw error;
        seen.thrown++;
      }
      await sleep(100);
    }
  };
  let n = 0;
  const step = async () => {
    const i = n++;
    acknowledged.set(i, await scheduleUntilAcknowledged(i, Date.now() + 3600_000 + remindInMs));
  };
  return {
    acknowledged,
    seen,
    scheduleUntilAcknowledged,
    async throughFailovers(rounds, kill) {
      for (let i = 0; i < 5; i++) await step();
      for (let round = 1; round <= rounds; round++) {
        let keepWorking = true;
        const atStart = n;
        const producer = (async () => {
          while (keepWorking) await step();
        })();
        try {
          await waitFor(() => n >= atStart + 3, 'a few reminders before the kill', 20_000);
          await sleep(Math.floor(Math.random() * 100));
          const what = await kill(round);
          const afterFailover = n;
          await waitFor(() => n >= afterFailover + 5, `reminders to go on after failover ${round} (${what})`, 60_000);
        } finally {
          keepWorking = false;
          await producer;
        }
      }
    },
    async allCompleted(timeoutMs = 60_000) {
      for (const [i, id] of acknowledged) {
        await waitFor(async () => (await service.queue.getJobState(id).catch(() => 'unknown')) === 'completed', `reminder ${i} (${id}) to complete`, timeoutMs);
      }
    },
    sentCounts() {
      const byPhone = new Map<string, number>();
      for (const message of sms.accepted) byPhone.set(message.to, (byPhone.get(message.to) ?? 0) + 1);
      return new Map([...acknowledged.keys()].map((i) => [i, byPhone.get(reminderPhone(i)) ?? 0]));
    },
  };
}
