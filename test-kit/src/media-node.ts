import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { pino, type Logger } from 'pino';
import { RoomTokenIssuer } from '@clinic-hub/platform/token-issuer';
import type { ConsultRole } from '@clinic-hub/protocol';
import { freePort } from '@clinic-hub/platform/redis-server';
import { REPO_ROOT, childNodeArgs, entryPoint } from './hub-node.js';
import { loadMediaConfig } from '@clinic-hub/media-server';
import type { Recorder } from '@clinic-hub/media-server';
import { startMediaServer, type RunningMediaServer } from '@clinic-hub/media-server';

/**
 * werift alone, for tests of werift's own mechanisms (its REMB, its
 * server-made offers), and for k6-style clients that speak only werift's
 * signalling. Pages in Chromium use the default, mediasoup.
 */
export const WERIFT_ENGINE_ENV = { MEDIA_ENGINE: 'werift' } as const;

/**
 * Both engines, for tests of what the product does whichever engine
 * forwards the media (admission, rooms, consent, recording, the audio tap):
 * `describe.each(MEDIA_TEST_ENGINES)`, with Node peers from
 * engine-peer.ts. mediasoup runs one worker, and keeps a participant whose
 * socket dropped (a Node peer's `close()`) for 1 s rather than the 15 s a
 * page has to resume in, so that a dropped peer leaves within a test's wait.
 */
export const MEDIA_TEST_ENGINES = [
  { name: 'mediasoup', env: { MEDIA_ENGINE: 'mediasoup', MEDIA_WORKERS: '1', MEDIA_RESUME_GRACE_MS: '1000' } },
  { name: 'werift', env: WERIFT_ENGINE_ENV },
] as const;

export const MEDIA_TEST_SECRET = 'media-test-secret-that-is-long-enough-0123456789';
export const roomTokens = new RoomTokenIssuer(MEDIA_TEST_SECRET);

/**
 * A port range of its own for each media-server a test starts: mediasoup's
 * WebRtcServers listen on UDP and TCP at its first ports (one per worker),
 * werift takes its UDP ports from it. Below Linux's ephemeral range (32768
 * and up, where outgoing connections get their ports), at a random block of
 * 100, and checked free on UDP and TCP for the first ports: a range chosen
 * from the process id alone collided between parallel test files, and a
 * media-server then failed to start.
 */
async function freeMediaPortRange(): Promise<{ min: number; max: number }> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const min = 20_000 + Math.floor(Math.random() * 120) * 100;
    if (await portsFree(min, 8)) return { min, max: min + 99 };
  }
  throw new Error('no free block of 100 ports between 20000 and 32000 for a media-server');
}

/** Whether `count` ports from `first` can be bound on 127.0.0.1, both UDP and TCP. */
async function portsFree(first: number, count: number): Promise<boolean> {
  for (let port = first; port < first + count; port++) {
    const udp = await new Promise<boolean>((resolve) => {
      const socket = createSocket('udp4');
      socket.once('error', () => resolve(false));
      socket.bind(port, '127.0.0.1', () => socket.close(() => resolve(true)));
    });
    const tcp = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (!udp || !tcp) return false;
  }
  return true;
}

/** A media-server in this process (so a test can count its sockets and drive its rooms), on free ports, with a quiet logger. */
export async function startTestMediaServer(options: {
  redisUrl: string;
  nodeId?: string;
  env?: Record<string, string>;
  recorder?: Recorder | null;
  /** Where the server's (and its rooms') lines go; a quiet one of its own by default. */
  logger?: Logger;
}): Promise<RunningMediaServer> {
  const range = await freeMediaPortRange();
  const config = loadMediaConfig({
    MEDIA_PORT: '0',
    MEDIA_HOST: '127.0.0.1',
    MEDIA_NODE_ID: options.nodeId ?? 'media-test',
    REDIS_URL: options.redisUrl,
    MEDIA_TOKEN_SECRET: MEDIA_TEST_SECRET,
    MEDIA_UDP_PORT_MIN: String(range.min),
    MEDIA_UDP_PORT_MAX: String(range.max),
    MEDIA_ICE_EXTRA_HOSTS: '127.0.0.1',
    LOG_LEVEL: 'warn',
    ...options.env,
  });
  const logger = options.logger ?? pino({ level: process.env.MEDIA_TEST_LOG_LEVEL ?? 'warn', base: { node: config.nodeId } });
  return startMediaServer(config, { recorder: options.recorder ?? null, logger });
}

export function roomToken(
  claims: { sub: string; part: ConsultRole; consult: string; clinic?: string; name?: string },
  ttlSeconds = 600,
): string {
  return roomTokens.issue({ clinic: claims.clinic ?? 'testclinic', consult: claims.consult, sub: claims.sub, part: claims.part, name: claims.name ?? `Name of ${claims.sub}` }, ttlSeconds).token;
}

export interface MediaServerProcess {
  url: string;
  process: ChildProcess;
  logs(): string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  /** Two SIGTERMs (drain, then stop at once) and the exit code; SIGKILL after 10 s. */
  stop(): Promise<number | null>;
}

/** `npm run media`'s entry point as its own process (for SIGTERM and configuration tests). */
export async function startMediaServerProcess(env: Record<string, string>): Promise<MediaServerProcess> {
  const port = await freePort();
  const range = await freeMediaPortRange();
  const child = spawn(process.execPath, childNodeArgs(entryPoint('@clinic-hub/media-server/main')), {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      MEDIA_PORT: String(port),
      MEDIA_HOST: '127.0.0.1',
      MEDIA_TOKEN_SECRET: MEDIA_TEST_SECRET,
      MEDIA_UDP_PORT_MIN: String(range.min),
      MEDIA_UDP_PORT_MAX: String(range.max),
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-50_000)));
  child.stderr?.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-50_000)));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 200));
      if (child.exitCode === null) child.kill('SIGTERM');
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    const code = await exited;
    clearTimeout(timer);
    return code;
  };
  // Generous, as for hubs: loading the TypeScript takes seconds, many more on a busy two-core machine.
  const deadline = Date.now() + 45_000;
  for (;;) {
    if (child.exitCode !== null) return { url, process: child, logs: () => output, exited, stop };
    try {
      if ((await fetch(`${url}/healthz`)).status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`media-server did not become healthy: ${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, process: child, logs: () => output, exited, stop };
}
