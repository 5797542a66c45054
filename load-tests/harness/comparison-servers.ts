/**
 * The servers the hub's display fan-out is compared with, each started by the
 * benchmark on 127.0.0.1, on free ports, with its own configuration file in
 * a temporary directory, and stopped by pid:
 *
 * - `limit`: bare uWebSockets.js that only publishes pre-built frames
 *   (limit-server.ts), one process per hub node the hub phase has;
 * - `mosquitto`: Debian's Mosquitto, MQTT over WebSocket;
 * - `nats`: Debian's nats-server, its WebSocket listener.
 *
 * The machine may run a Mosquitto on 1883 and a nats-server on 4222 of its
 * own: nothing here uses or depends on them.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort } from '@clinic-hub/platform/redis-server';
import { REPO_ROOT, spawnChild, spawnHubScript, waitUntilReady, type HubChild } from './hub-process.js';

export const COMPARISON_KINDS = ['limit', 'mosquitto', 'nats'] as const;
export type ComparisonKind = (typeof COMPARISON_KINDS)[number];

export interface ComparisonServer extends HubChild {
  kind: ComparisonKind;
  /** For the report: `limit-1`, `mosquitto`, `nats-server`. */
  name: string;
  /** Where displays connect: http:// for the limit (its clients add the Engine.IO path), ws:// for the brokers. */
  displayUrl: string;
  /** Where the benchmark's publisher connects (ws://). */
  publishUrl: string;
  /** The program's own version line, for the report. */
  version: string;
}

export const MOSQUITTO_BIN = process.env.MOSQUITTO_BIN ?? '/usr/sbin/mosquitto';
export const NATS_SERVER_BIN = process.env.NATS_SERVER_BIN ?? '/usr/sbin/nats-server';
const SETPRIV = '/usr/bin/setpriv';

/**
 * A broker binary as a child that the kernel stops if the benchmark dies
 * (setpriv --pdeathsig, util-linux): unlike the Node children it cannot load
 * the parent watchdog.
 */
function spawnBroker(binary: string, args: string[], install: string): HubChild {
  if (!existsSync(binary)) throw new Error(`${binary} not found: install it (apt-get install ${install}) or set ${install === 'mosquitto' ? 'MOSQUITTO_BIN' : 'NATS_SERVER_BIN'}`);
  return existsSync(SETPRIV) ? spawnChild(SETPRIV, ['--pdeathsig', 'KILL', binary, ...args]) : spawnChild(binary, args);
}

/** True once something accepts TCP connections on 127.0.0.1:port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** `count` limit servers (limit-server.ts), each its own process, as the hub runs one node per process. */
export async function startLimitServers(count: number, options: { namespace: string; nodeArgs?: (i: number) => string[] }): Promise<ComparisonServer[]> {
  const started = await Promise.allSettled(
    Array.from({ length: count }, async (_, i): Promise<ComparisonServer> => {
      const port = await freePort();
      const child = spawnHubScript('load-tests/harness/limit-server.ts', { LIMIT_PORT: String(port), LIMIT_NAMESPACE: options.namespace }, options.nodeArgs?.(i) ?? []);
      const url = `http://127.0.0.1:${port}`;
      await waitUntilReady(child, `limit server ${i + 1}`, async () => {
        try {
          return (await fetch(`${url}/healthz`)).ok ? true : null;
        } catch {
          return null;
        }
      });
      return { ...child, kind: 'limit', name: `limit-${i + 1}`, displayUrl: url, publishUrl: `ws://127.0.0.1:${port}/publish`, version: uwsVersion() };
    }),
  );
  const servers = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await Promise.all(servers.map((s) => s.stop()));
    throw failed.reason;
  }
  return servers;
}

/**
 * Mosquitto with a WebSocket listener for the displays and the publisher.
 * Mosquitto 2.0's WebSocket listener (libwebsockets) does not start without a
 * plain MQTT listener beside it (eclipse/mosquitto#2284), so there is one,
 * unused, on another free port. Latency settings a clinic's engineer would
 * make: Nagle off on every socket; nothing persisted; QoS 0 only.
 */
export async function startMosquitto(dir: string): Promise<ComparisonServer> {
  mkdirSync(dir, { recursive: true });
  const [mqttPort, wsPort] = [await freePort(), await freePort()];
  const config = join(dir, 'mosquitto.conf');
  writeFileSync(
    config,
    [
      '# Written by the clinic-hub benchmark (load-tests/harness/comparison-servers.ts) for one run.',
      'per_listener_settings false',
      'allow_anonymous true',
      'persistence false',
      // Stay the user that started it: dropping to "mosquitto" would clear the parent-death signal.
      `user ${userInfo().username}`,
      'set_tcp_nodelay true',
      'connection_messages false',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      `listener ${mqttPort} 127.0.0.1`,
      'protocol mqtt',
      `listener ${wsPort} 127.0.0.1`,
      'protocol websockets',
      '',
    ].join('\n'),
  );
  const child = spawnBroker(MOSQUITTO_BIN, ['-c', config], 'mosquitto');
  await waitUntilReady(child, 'mosquitto', async () => ((await listening(wsPort)) ? true : null), 10_000);
  const url = `ws://127.0.0.1:${wsPort}/mqtt`;
  return { ...child, kind: 'mosquitto', name: 'mosquitto', displayUrl: url, publishUrl: url, version: versionOf(MOSQUITTO_BIN, ['-h'], /mosquitto version (\S+)/) };
}

/** nats-server with its WebSocket listener (no TLS, loopback only) beside its client port. */
export async function startNatsServer(dir: string): Promise<ComparisonServer> {
  mkdirSync(dir, { recursive: true });
  const [clientPort, wsPort] = [await freePort(), await freePort()];
  const config = join(dir, 'nats-server.conf');
  writeFileSync(
    config,
    [
      '# Written by the clinic-hub benchmark (load-tests/harness/comparison-servers.ts) for one run.',
      `listen: "127.0.0.1:${clientPort}"`,
      'websocket {',
      `  listen: "127.0.0.1:${wsPort}"`,
      '  no_tls: true',
      '  compression: false',
      '}',
      '',
    ].join('\n'),
  );
  const child = spawnBroker(NATS_SERVER_BIN, ['-c', config], 'nats-server');
  await waitUntilReady(child, 'nats-server', async () => ((await listening(wsPort)) ? true : null), 10_000);
  const url = `ws://127.0.0.1:${wsPort}`;
  return { ...child, kind: 'nats', name: 'nats-server', displayUrl: url, publishUrl: url, version: versionOf(NATS_SERVER_BIN, ['--version'], /v(\d+\.\d+\.\d+)/) };
}

/** The uWebSockets.js build the hub and the limit server load (the package behind the npm alias). */
function uwsVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules/uWebSockets.js/package.json'), 'utf8')) as { version: string };
    return `uWebSockets.js ${pkg.version}`;
  } catch {
    return 'uWebSockets.js';
  }
}

/** The version a binary prints (`mosquitto -h`, `nats-server --version`); "unknown" when it does not say. */
function versionOf(binary: string, args: string[], pattern: RegExp): string {
  const run = spawnSync(binary, args, { encoding: 'utf8', timeout: 5000 });
  const match = pattern.exec(`${run.stdout ?? ''}${run.stderr ?? ''}`);
  return `${binary.split('/').pop()} ${match?.[1] ?? 'unknown'}`;
}
