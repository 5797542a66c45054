import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PARENT_WATCHDOG } from '@clinic-hub/platform/process';
import { freePort } from '@clinic-hub/platform/redis-server';
import { TokenIssuer } from '@clinic-hub/platform/token-issuer';
import { startTestRedis, type TestRedis } from './redis.js';

export const REPO_ROOT = resolve(import.meta.dirname, '../..');

/** The file of a service's entry point, as its package.json exports it (`@clinic-hub/hub/main` …): what a test starts as a process. */
export function entryPoint(specifier: string): string {
  return createRequire(import.meta.url).resolve(specifier);
}

/**
 * Node's arguments to run a TypeScript entry point as a child of a test: through tsx, and with the parent
 * watchdog, so that the child stops itself if the test's worker dies without stopping it (a timeout).
 */
export function childNodeArgs(script: string): string[] {
  return ['--import', 'tsx', '--import', PARENT_WATCHDOG, script];
}
export const TEST_SECRET = 'test-secret-that-is-long-enough-for-hs256-0123456789';
export const TEST_CLINICS_DIR = resolve(import.meta.dirname, '../clinics');
/** The AES-256-GCM key test hubs encrypt chat attachments with (HUB_ATTACHMENT_KEY). */
export const TEST_ATTACHMENT_KEY = Buffer.alloc(32, 7).toString('base64');

/** Where test hubs on this Redis keep chat attachment files: one directory per Redis, in the system's temporary directory. */
export function attachmentsDirFor(redisUrl: string): string {
  return join(tmpdir(), `clinic-hub-attachments-${redisUrl.replace(/[^A-Za-z0-9]+/g, '-')}`);
}

export interface HubNodeProcess {
  url: string;
  port: number;
  nodeId: string;
  process: ChildProcess;
  logs(): string;
  /** SIGTERM and wait for exit (SIGKILL and an error if it takes more than 15 s). */
  stop(): Promise<void>;
}

/**
 * Starts one hub node as its own process. Multi-node tests must do this:
 * Socket.IO's uWebSockets.js support patches the adapter process-wide, so two
 * nodes in one process misdeliver broadcasts (DESIGN.md).
 */
export async function startHubProcess(options: HubProcessOptions): Promise<HubNodeProcess> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startHubProcessOn(await freePort(), options);
    } catch (error) {
      if (attempt >= LISTEN_ATTEMPTS || !PORT_TAKEN.test((error as Error).message)) throw error;
    }
  }
}

interface HubProcessOptions {
  /** One Redis; or `redisEnv` (REDIS_SENTINELS and REDIS_SENTINEL_NAME from startSentinelGroup). */
  redisUrl?: string;
  redisEnv?: Record<string, string>;
  nodeId: string;
  server?: 'uws' | 'node';
  env?: Record<string, string>;
}

/**
 * A port freePort() found free can be taken by another process (a parallel test file) before the hub binds it: the
 * hub then fails to listen (it never shares a port), and starts again on another.
 */
const LISTEN_ATTEMPTS = 3;
export const PORT_TAKEN = /cannot listen on|EADDRINUSE/;

async function startHubProcessOn(port: number, options: HubProcessOptions): Promise<HubNodeProcess> {
  const child = spawn(process.execPath, childNodeArgs(entryPoint('@clinic-hub/hub/main')), {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      HUB_PORT: String(port),
      HUB_HOST: '127.0.0.1',
      HUB_NODE_ID: options.nodeId,
      HUB_SERVER: options.server ?? 'uws',
      ...(options.redisEnv ? { REDIS_URL: '', ...options.redisEnv } : { REDIS_URL: options.redisUrl }),
      HUB_TOKEN_SECRET: TEST_SECRET,
      CLINICS_DIR: TEST_CLINICS_DIR,
      HUB_ATTACHMENT_KEY: TEST_ATTACHMENT_KEY,
      // Shared by the nodes of one Redis, as a deployment's nodes share a volume.
      HUB_ATTACHMENTS_DIR: attachmentsDirFor(options.redisUrl ?? Object.values(options.redisEnv ?? {}).join(',')),
      LOG_LEVEL: 'warn',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-20_000)));
  child.stderr?.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-20_000)));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const url = `http://127.0.0.1:${port}`;
  // Generous: loading the TypeScript and bundling the pages takes seconds, more on a busy two-core machine.
  const deadline = Date.now() + 45_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`hub ${options.nodeId} exited: ${output}`);
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`hub ${options.nodeId} did not become healthy: ${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    port,
    nodeId: options.nodeId,
    process: child,
    logs: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const stopped = await Promise.race([
        exited.then(() => true),
        new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), 15_000))),
      ]);
      clearTimeout(timer);
      if (!stopped) {
        child.kill('SIGKILL');
        await exited;
        throw new Error(`hub ${options.nodeId} did not stop within 15 s of SIGTERM: ${output}`);
      }
    },
  };
}

/** One node of startTestHubs: its id, or its id with its own server and environment. */
export type TestHubNode = string | { nodeId: string; server?: 'uws' | 'node'; env?: Record<string, string> };

/**
 * The set-up of most hub tests: a private Redis, then one hub node process
 * per entry on it, started side by side (`env` goes to every node, before a
 * node's own). If a node does not start, what did start is stopped and the
 * error thrown. stopTestHubs stops them.
 */
export async function startTestHubs<const Nodes extends readonly TestHubNode[]>(
  nodes: Nodes,
  options: { env?: Record<string, string> } = {},
): Promise<{ redis: TestRedis; nodes: { -readonly [K in keyof Nodes]: HubNodeProcess } }> {
  const redis = await startTestRedis();
  const started = await Promise.allSettled(
    nodes.map((node) => {
      const { nodeId, server, env } = typeof node === 'string' ? { nodeId: node, server: undefined, env: undefined } : node;
      return startHubProcess({ redisUrl: redis.url, nodeId, server, env: { ...options.env, ...env } });
    }),
  );
  const failed = started.find((result) => result.status === 'rejected');
  if (failed) {
    await Promise.allSettled(started.map((result) => (result.status === 'fulfilled' ? result.value.stop() : undefined)));
    await redis.cleanup();
    throw failed.reason;
  }
  const processes = started.map((result) => (result as PromiseFulfilledResult<HubNodeProcess>).value);
  return { redis, nodes: processes as { -readonly [K in keyof Nodes]: HubNodeProcess } };
}

/** Stops the nodes of startTestHubs (those that started), then its Redis. */
export async function stopTestHubs(redis: TestRedis | undefined, nodes: readonly (HubNodeProcess | undefined)[]): Promise<void> {
  await Promise.all(nodes.map((node) => node?.stop()));
  await redis?.cleanup();
}

/** The node's /healthz status code; 0 when it does not answer within 3 s. */
export async function healthStatus(node: { url: string }): Promise<number> {
  try {
    return (await fetch(`${node.url}/healthz`, { signal: AbortSignal.timeout(3000) })).status;
  } catch {
    return 0;
  }
}

export const testTokens = new TokenIssuer(TEST_SECRET);

export async function tokenFor(
  role: 'admin' | 'staff' | 'doctor' | 'display' | 'patient' | 'service' | 'kiosk',
  clinic = 'testclinic',
  extra: { ticket?: string; ttlSeconds?: number; sub?: string } = {},
): Promise<string> {
  const { token } = await testTokens.issue(
    { sub: extra.sub ?? `${role}:test`, role, clinic, ...(extra.ticket ? { ticket: extra.ticket } : {}) },
    extra.ttlSeconds ?? 3600,
  );
  return token;
}
