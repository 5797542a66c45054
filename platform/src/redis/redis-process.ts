import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';

export interface RedisProcess {
  port: number;
  url: string;
  dir: string;
  process: ChildProcess;
  /** SHUTDOWN (the AOF is flushed), then wait for the process to exit. */
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1, chosen by the kernel. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * Starts a private redis-server on 127.0.0.1 with its data under `dir`:
 * AOF on, fsync on every write, so an acknowledged queue change survives a
 * crash of Redis itself (queue changes are a few per minute per clinic).
 */
export async function startRedisServer(options: {
  dir: string;
  port?: number;
  binary?: string;
  /** More redis-server options (`--replicaof`, `--cluster-enabled` …), after the defaults. */
  extraArgs?: readonly string[];
}): Promise<RedisProcess> {
  mkdirSync(options.dir, { recursive: true });
  const port = options.port ?? (await freePort());
  const binary = options.binary ?? process.env.REDIS_SERVER_BIN ?? 'redis-server';
  const child = spawn(
    binary,
    ['--port', String(port), '--bind', '127.0.0.1', '--dir', options.dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--protected-mode', 'yes', ...(options.extraArgs ?? [])],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000)));
  child.stderr?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000)));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const spawnError = new Promise<never>((_, reject) =>
    child.once('error', (error) =>
      reject(new Error(`cannot run ${binary}: ${error.message}. Install Redis (apt-get install redis-server) or set REDIS_URL.`)),
    ),
  );
  const url = `redis://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ready = await Promise.race([ping(url), spawnError, exited.then((code) => new Error(`redis-server exited (${code}): ${output}`))]);
    if (ready instanceof Error) throw ready;
    if (ready) break;
    if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer within 10 s: ${output}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    url,
    dir: options.dir,
    process: child,
    async stop() {
      if (child.exitCode !== null) return;
      const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      await client.connect().then(
        () => client.shutdown('SAVE' as never).catch(() => undefined),
        () => child.kill('SIGTERM'),
      );
      client.disconnect();
      await exited;
    },
  };
}

async function ping(url: string): Promise<boolean> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}
