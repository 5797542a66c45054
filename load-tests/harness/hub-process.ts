import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { PARENT_WATCHDOG } from '@clinic-hub/platform/process';
import { freePort } from '@clinic-hub/platform/redis-server';
import { PORT_TAKEN } from '@clinic-hub/test-kit/hub-node';
import { sleep } from './time.js';

export const REPO_ROOT = resolve(import.meta.dirname, '../..');
export const BENCH_CLINICS_DIR = resolve(import.meta.dirname, 'clinics');
export const WATCHDOG = PARENT_WATCHDOG;

/** A process of the hub's code (a hub node, a notification worker) started by a benchmark. */
export interface HubChild {
  pid: number;
  process: ChildProcess;
  /** The last 20 kB of its stdout and stderr. */
  logs(): string;
  /** SIGTERM (it closes cleanly), SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

export interface HubNode extends HubChild {
  nodeId: string;
  url: string;
  port: number;
  /** What the node says it runs on (uWS falls back to node when it cannot load). */
  server: 'uws' | 'node';
}

/**
 * Runs one of the entry points (`hub/src/main.ts`, `hub/src/notify/worker-main.ts`,
 * `media-server/src/main.ts`) as a child of the benchmark, with the watchdog
 * that stops it if the benchmark dies.
 */
export function spawnHubScript(script: string, env: Record<string, string>, nodeArgs: string[] = []): HubChild {
  return spawnChild(process.execPath, [...nodeArgs, '--import', 'tsx', '--import', WATCHDOG, resolve(REPO_ROOT, script)], env);
}

/**
 * Any program as a child of the benchmark (a Node entry point, a broker),
 * in its own process group, its output kept.
 */
export function spawnChild(command: string, args: string[], env: Record<string, string> = {}): HubChild {
  const child = spawn(command, args, {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    // Own process group: Ctrl-C reaches the benchmark, which stops its children in order.
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-20_000)));
  child.stderr?.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-20_000)));
  child.on('error', (error) => (output += `\ncannot run ${command}: ${error.message}`));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    pid: child.pid ?? -1,
    process: child,
    logs: () => output,
    async stop(graceMs = 10_000) {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

/** Polls `ready` every 100 ms until it returns something; stops the child and throws after `timeoutMs` or when it exits. */
export async function waitUntilReady<T>(child: HubChild, what: string, ready: () => Promise<T | null>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.process.exitCode !== null || child.pid < 0) throw new Error(`${what} exited (${child.process.exitCode ?? 'did not start'}): ${child.logs()}`);
    const value = await ready();
    if (value !== null) return value;
    if (Date.now() > deadline) {
      await child.stop(0);
      throw new Error(`${what} was not ready within ${timeoutMs / 1000} s: ${child.logs()}`);
    }
    await sleep(100);
  }
}

/**
 * Starts one hub node as its own process. Benchmarks must: Socket.IO's
 * uWebSockets.js support patches the adapter process-wide (DESIGN.md).
 */
export async function startHubNode(options: HubNodeOptions): Promise<HubNode> {
  // A port found free can be taken before the hub binds it (the hub never shares one): then another port.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startHubNodeOn(await freePort(), options);
    } catch (error) {
      if (attempt >= 3 || !PORT_TAKEN.test((error as Error).message)) throw error;
    }
  }
}

interface HubNodeOptions {
  nodeId: string;
  server: 'uws' | 'node';
  /** REDIS_URL, or REDIS_SENTINELS and REDIS_SENTINEL_NAME. */
  redisEnv: Record<string, string>;
  tokenSecret: string;
  clinicsDir?: string;
  /** Extra node flags, e.g. ['--cpu-prof', '--cpu-prof-dir=…']. */
  nodeArgs?: string[];
  env?: Record<string, string>;
}

async function startHubNodeOn(port: number, options: HubNodeOptions): Promise<HubNode> {
  const child = spawnHubScript(
    'hub/src/main.ts',
    {
      HUB_PORT: String(port),
      HUB_HOST: '127.0.0.1',
      HUB_NODE_ID: options.nodeId,
      HUB_SERVER: options.server,
      ...options.redisEnv,
      HUB_TOKEN_SECRET: options.tokenSecret,
      CLINICS_DIR: options.clinicsDir ?? BENCH_CLINICS_DIR,
      LOG_LEVEL: 'warn',
      // No load balancer to drain from: stop at once when the benchmark is done.
      HUB_DRAIN_GRACE_MS: '0',
      // The per-socket and per-user event limits would throttle a benchmark's
      // staff and senders and show as errors or latency that is not the hub's: off.
      HUB_RATE_LIMIT_SOCKET_PER_SECOND: '0',
      HUB_RATE_LIMIT_USER_PER_SECOND: '0',
      ...options.env,
    },
    options.nodeArgs,
  );
  const url = `http://127.0.0.1:${port}`;
  const server = await waitUntilReady(child, `hub ${options.nodeId}`, async () => {
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.status === 200) return ((await res.json()) as { server: 'uws' | 'node' }).server;
    } catch {
      // not listening yet
    }
    return null;
  });
  return { ...child, nodeId: options.nodeId, url, port, server };
}

/**
 * Starts the notification worker (`hub/src/notify/worker-main.ts`) as its own
 * process with `env` (docs/notifications.md); resolves once it logged that it is ready.
 */
export async function startNotificationWorkerProcess(options: { env: Record<string, string>; nodeArgs?: string[] }): Promise<HubChild> {
  // Info: the ready line is an info line (and the worker logs one line per notice, as it does in production).
  const child = spawnHubScript('hub/src/notify/worker-main.ts', { CLINICS_DIR: BENCH_CLINICS_DIR, ...options.env, LOG_LEVEL: 'info' }, options.nodeArgs);
  await waitUntilReady(child, 'notification worker', async () => (child.logs().includes('notification worker ready') ? true : null));
  return child;
}

/** The /metrics text of every node (empty for a node that did not answer). */
export async function scrapeMetrics(hubs: HubNode[]): Promise<string[]> {
  return Promise.all(
    hubs.map(async (hub) => {
      try {
        const res = await fetch(`${hub.url}/metrics`, { signal: AbortSignal.timeout(5000) });
        return res.ok ? await res.text() : '';
      } catch {
        return '';
      }
    }),
  );
}
