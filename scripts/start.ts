/**
 * `npm start`: the whole stack on this machine. Without REDIS_URL it starts a
 * private redis-server (AOF under var/redis), keeps a token secret and the chat
 * attachments' encryption key under var/,
 * starts a hub node and a media-server node (video consultations, its own
 * process) and prints the pages' links with their tokens for the demo clinic
 * (start-banner.ts). Ctrl-C stops everything cleanly.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { resolve } from 'node:path';
import { ConfigError, loadConfig, startHub, startNotificationWorker } from '@clinic-hub/hub';
import { startRedisServer, type RedisProcess } from '@clinic-hub/platform/redis-server';
import { lanAddress, lanUrl, startBanner } from './start-banner.js';

const root = resolve(import.meta.dirname, '..');
const varDir = resolve(root, 'var');
mkdirSync(varDir, { recursive: true });

/** A random secret made on the first start and kept in var/NAME (mode 0600), so restarts keep tokens and attachments readable. */
function localSecret(name: string, encoding: 'base64url' | 'base64'): string {
  const file = resolve(varDir, name);
  if (!existsSync(file)) {
    writeFileSync(file, randomBytes(32).toString(encoding), { mode: 0o600 });
  }
  return readFileSync(file, 'utf8').trim();
}

async function main(): Promise<void> {
  let redis: RedisProcess | null = null;
  const env = { ...process.env };
  // Any way of naming Redis (one, Sentinel, Cluster; or its _FILE twin) is the operator's: only with none is a private one started.
  if (!['REDIS_URL', 'REDIS_URL_FILE', 'REDIS_SENTINELS', 'REDIS_CLUSTER_NODES'].some((name) => env[name])) {
    redis = await startRedisServer({ dir: resolve(varDir, 'redis'), port: Number(env.REDIS_PORT ?? 6390) });
    env.REDIS_URL = redis.url;
    process.stdout.write(`Started a private redis-server on ${redis.url} (data in var/redis, AOF on)\n`);
  }
  env.HUB_TOKEN_SECRET ??= localSecret('token-secret', 'base64url');
  // Chat attachments are encrypted at rest with it: losing this file makes stored attachments unreadable.
  env.HUB_ATTACHMENT_KEY ??= localSecret('attachment-key', 'base64');
  // Room tokens for video consultations: the media-server verifies them with the same secret.
  env.MEDIA_TOKEN_SECRET ??= localSecret('media-token-secret', 'base64url');
  // Consultation recordings are encrypted with it (media-server) and exported with it (hub): keep the file.
  env.RECORDING_KEY ??= localSecret('recording-key', 'base64');
  env.RECORDINGS_DIR ??= resolve(varDir, 'recordings');
  env.CLINICS_DIR ??= resolve(root, 'config/clinics');
  // Patient links (check-in) must open on a patient's phone: without HUB_PUBLIC_URL they use this
  // machine's LAN address rather than 127.0.0.1 (the banner says so, and how to set another).
  const configuredPublicUrl = env.HUB_PUBLIC_URL ?? null;
  const lan = configuredPublicUrl ? null : lanUrl(env.HUB_HOST ?? '0.0.0.0', Number(env.HUB_PORT ?? 8080), lanAddress(networkInterfaces()));
  if (lan) env.HUB_PUBLIC_URL = lan;

  let config;
  try {
    config = loadConfig(env);
  } catch (error) {
    await redis?.stop();
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(78);
    }
    throw error;
  }
  const hub = await startHub(config);
  buildMediasoupWorker(env);
  const media = await startMediaServer(env);
  // One machine: the notification worker runs in this process too (in production it is its own process).
  const worker = await startNotificationWorker(config.notify, { logger: hub.logger });
  const localUrl = `http://localhost:${hub.port}`;
  const clinic = hub.clinics.ids().includes('demo') ? 'demo' : hub.clinics.ids()[0]!;
  const display = await hub.tokens.issue({ sub: `display:${clinic}:local`, role: 'display', clinic }, config.tokenTtlSeconds.display);
  const staff = await hub.tokens.issue({ sub: `staff:${clinic}:local`, role: 'staff', clinic }, config.tokenTtlSeconds.default);
  // Staff join video consultations as a nurse: the doctor needs a doctor's token (consultRoleOf).
  const doctor = await hub.tokens.issue({ sub: `doctor:${clinic}:local`, role: 'doctor', clinic }, config.tokenTtlSeconds.default);
  const admin = await hub.tokens.issue({ sub: 'admin:local', role: 'admin', clinic: '*' }, config.tokenTtlSeconds.default);
  const localFile = resolve(varDir, 'local.json');
  // The CLI on this machine talks to the hub through loopback: it keeps working when the LAN address changes.
  writeFileSync(localFile, JSON.stringify({ url: localUrl, clinic, adminToken: admin.token, expiresAt: admin.expiresAt, pid: process.pid }, null, 2), { mode: 0o600 });
  chmodSync(localFile, 0o600);

  const aiConfigured = Boolean(env.AI_STT_MODEL_EN || env.AI_STT_MODEL_JA || env.AI_STT_ENGINE === 'deepgram');
  process.stdout.write(
    startBanner({
      server: hub.server,
      clinic,
      localUrl,
      configuredPublicUrl,
      lanUrl: lan,
      tokens: { display: display.token, staff: staff.token, doctor: doctor.token },
      mediaUrl: media.url,
      recordingsDir: env.RECORDINGS_DIR,
      aiWorkerCommand: aiConfigured ? `REDIS_URL=${env.REDIS_URL} npm run ai:worker` : null,
    }),
  );

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      // A second Ctrl-C: stop now.
      process.stdout.write(`${signal} again: exiting now\n`);
      process.exit(130);
    }
    stopping = true;
    process.stdout.write(`\n${signal}: stopping the hub, the media-server, the notification worker${redis ? ' and redis-server' : ''}… (again to stop at once)\n`);
    // A terminal's Ctrl-C reaches every process of the group, the private redis-server too, which is then
    // gone before the worker and the hub close. Their closes do not wait for an unreachable Redis
    // (platform/src/redis/close.ts; tested per service); the bound per step is a last guard for the terminal.
    await within(5000, worker.close());
    await within(5000, media.stop());
    await within(5000, hub.close());
    await within(5000, redis?.stop());
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

/**
 * The media-server's mediasoup-worker: built from the installed mediasoup
 * package's sources the first time (minutes, with progress), a cache hit in
 * about a second after that (media-server/worker-build/README.md). Without
 * its build dependencies the stack still starts, and the message names the
 * apt-get command; the media-server then refuses consultations saying so.
 */
function buildMediasoupWorker(env: NodeJS.ProcessEnv): void {
  spawnSync(process.execPath, ['--import', 'tsx', resolve(root, 'media-server/worker-build/build-cli.ts'), '--never-fail'], { cwd: root, env, stdio: ['ignore', 'inherit', 'inherit'] });
}

/**
 * One media-server node (video consultations) as its own process: WebRTC
 * runs on its event loop, which must not share one with the hub. It gets the
 * hub's MEDIA_TOKEN_SECRET and Redis, and announces itself in Redis, where the
 * hub finds it when a doctor admits a patient.
 */
async function startMediaServer(env: NodeJS.ProcessEnv): Promise<{ url: string; stop(): Promise<void> }> {
  const port = Number(env.MEDIA_PORT ?? 8090);
  const url = (env.MEDIA_PUBLIC_URL ?? `http://localhost:${port}`).replace(/\/$/, '');
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', resolve(root, 'media-server/src/main.ts')], {
    cwd: root,
    env: { ...env, MEDIA_PORT: String(port), MEDIA_PUBLIC_URL: url, MEDIA_NODE_ID: env.MEDIA_NODE_ID ?? 'media-local' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  // Loading its TypeScript takes a few seconds on a quiet machine; a busy two-core one (tests, builds) has taken over 20 s.
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the media-server exited (code ${child.exitCode}); see its message above`);
    const ok = await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false);
    if (ok) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error('the media-server did not start within 60 s');
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url,
    async stop() {
      if (child.exitCode !== null) return;
      // Twice: the first SIGTERM drains (rooms may go on), the second stops at once.
      child.kill('SIGTERM');
      child.kill('SIGTERM');
      // It is this command's child: never left running after it, even when its own stop hangs.
      const timer = setTimeout(() => child.kill('SIGKILL'), 4000);
      await exited;
      clearTimeout(timer);
    },
  };
}

main().catch((error: unknown) => {
  process.stderr.write(`Clinic Hub failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});

/** Waits for a step of the shutdown, at most `ms`; its failure is not the user's problem at this point. */
async function within(ms: number, step: Promise<unknown> | undefined): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([step?.catch(() => undefined), new Promise((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}
