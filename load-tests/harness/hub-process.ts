import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { freePort } from '../../hub/src/redis/redis-process.js';

export const REPO_ROOT = resolve(import.meta.dirname, '../..');
export const BENCH_CLINICS_DIR = resolve(import.meta.dirname, 'clinics');
export const WATCHDOG = resolve(import.meta.dirname, 'parent-watchdog.ts');

export interface HubNode {
  nodeId: string;
  url: string;
  port: number;
  pid: number;
  /** What the node says it runs on (uWS falls back to node when it cannot load). */
  server: 'uws' | 'node';
  process: ChildProcess;
  logs(): string;
  /** SIGTERM (the hub closes cleanly), SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Starts one hub node as its own process. Benchmarks must: Socket.IO's
 * uWebSockets.js support patches the adapter process-wide (DESIGN.md).
 */
export async function startHubNode(options: {
  nodeId: string;
  server: 'uws' | 'node';
  redisUrl: string;
  tokenSecret: string;
  clinicsDir?: string;
  /** Extra node flags, e.g. ['--cpu-prof', '--cpu-prof-dir=…']. */
  nodeArgs?: string[];
  env?: Record<string, string>;
}): Promise<HubNode> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [...(options.nodeArgs ?? []), '--import', 'tsx', '--import', WATCHDOG, resolve(REPO_ROOT, 'hub/src/main.ts')],
    {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        HUB_PORT: String(port),
        HUB_HOST: '127.0.0.1',
        HUB_NODE_ID: options.nodeId,
        HUB_SERVER: options.server,
        REDIS_URL: options.redisUrl,
        HUB_TOKEN_SECRET: options.tokenSecret,
        CLINICS_DIR: options.clinicsDir ?? BENCH_CLINICS_DIR,
        LOG_LEVEL: 'warn',
        ...options.env,
      },
      // Own process group: Ctrl-C reaches the benchmark, which stops the nodes in order.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout?.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-20_000)));
  child.stderr?.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-20_000)));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const url = `http://127.0.0.1:${port}`;
  const stop = async (graceMs = 10_000) => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    }
  };
  const deadline = Date.now() + 30_000;
  let server: 'uws' | 'node' | null = null;
  while (server === null) {
    if (child.exitCode !== null) throw new Error(`hub ${options.nodeId} exited (${child.exitCode}): ${output}`);
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.status === 200) server = ((await res.json()) as { server: 'uws' | 'node' }).server;
    } catch {
      // not listening yet
    }
    if (server !== null) break;
    if (Date.now() > deadline) {
      await stop(0);
      throw new Error(`hub ${options.nodeId} did not become healthy within 30 s: ${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { nodeId: options.nodeId, url, port, pid: child.pid!, server, process: child, logs: () => output, stop };
}
