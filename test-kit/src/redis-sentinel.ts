import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, startRedisServer, type RedisProcess } from '@clinic-hub/platform/redis-server';
import type { RedisTarget } from '@clinic-hub/platform/redis';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';

/**
 * A real Redis Sentinel deployment on loopback, for one test file: a master,
 * a replica and three sentinels (quorum 2), each its own redis-server process
 * on a free port, all under one temporary directory removed by `cleanup`.
 * Sentinels run as `redis-server FILE --sentinel` (Debian's redis-sentinel is
 * the same binary).
 */
export interface SentinelGroup {
  name: string;
  sentinels: { host: string; port: number }[];
  /** REDIS_SENTINELS and REDIS_SENTINEL_NAME, for a service's environment. */
  env: Record<string, string>;
  target: RedisTarget;
  /** The data node the sentinels name as master now. */
  master(): Promise<RedisProcess>;
  /** The data node that is not the master now. */
  replica(): Promise<RedisProcess>;
  /**
   * SIGKILL the master (no SHUTDOWN, no AOF flush beyond what fsync already
   * did), wait until the sentinels have promoted the replica, then restart the
   * killed node as the new master's replica and wait until it is in sync.
   *
   * `lagMs`: first make the replica fall that far behind, so that the
   * failover loses what the master did meanwhile, as asynchronous replication
   * does under load (a SIGKILL alone loses almost nothing on loopback: what
   * the master sent is in the replica's socket buffer). The replica is moved
   * behind a proxy to the master that then holds back the master's stream;
   * the master dies, the proxy drops what it held. `onLagging`: called when
   * the replica stops getting the master's writes.
   */
  killMaster(options?: { lagMs?: number; onLagging?: () => void }): Promise<{ killed: number; promoted: number; failoverMs: number; killedAt: number }>;
  /**
   * A failover the operator asks for (SENTINEL FAILOVER), the master alive:
   * resolves when the replica is master and the former master its replica,
   * in sync.
   */
  failover(): Promise<{ demoted: number; promoted: number }>;
  cleanup(): Promise<void>;
}

const MASTER_NAME = 'clinic-hub';
/** How long the sentinels wait before a silent master is down: short for tests, long enough for a loaded two-core machine. */
const DOWN_AFTER_MS = 2000;

export async function startSentinelGroup(options: { downAfterMs?: number } = {}): Promise<SentinelGroup> {
  const dir = mkdtempSync(join(tmpdir(), 'clinic-hub-sentinel-'));
  const sentinelProcesses: ChildProcess[] = [];
  const nodes = new Map<number, RedisProcess>();
  const nodeDir = (port: number) => join(dir, `node-${port}`);
  try {
    const masterPort = await freePort();
    // Each node's data dir is named after its port: a killed node restarts in place.
    nodes.set(masterPort, await startRedisServer({ dir: nodeDir(masterPort), port: masterPort }));
    const replicaPort = await freePort();
    nodes.set(replicaPort, await startRedisServer({ dir: nodeDir(replicaPort), port: replicaPort, extraArgs: ['--replicaof', '127.0.0.1', String(masterPort)] }));

    const sentinelPorts = [await freePort(), await freePort(), await freePort()];
    for (const port of sentinelPorts) {
      const sentinelDir = join(dir, `sentinel-${port}`);
      mkdirSync(sentinelDir, { recursive: true });
      const file = join(sentinelDir, 'sentinel.conf');
      writeFileSync(
        file,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${sentinelDir}`,
          `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${masterPort} 2`,
          `sentinel down-after-milliseconds ${MASTER_NAME} ${options.downAfterMs ?? DOWN_AFTER_MS}`,
          `sentinel failover-timeout ${MASTER_NAME} 6000`,
          `sentinel parallel-syncs ${MASTER_NAME} 1`,
          '',
        ].join('\n'),
      );
      const child = spawn(process.env.REDIS_SERVER_BIN ?? 'redis-server', [file, '--sentinel'], { stdio: 'ignore' });
      sentinelProcesses.push(child);
    }
    const sentinels = sentinelPorts.map((port) => ({ host: '127.0.0.1', port }));

    const ask = async <T>(port: number, work: (client: Redis) => Promise<T>): Promise<T | null> => {
      const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000 });
      client.on('error', () => undefined);
      try {
        await client.connect();
        return await work(client);
      } catch {
        return null;
      } finally {
        client.disconnect();
      }
    };
    const masterPortNamedBy = (port: number) =>
      ask(port, async (c) => Number(((await c.call('SENTINEL', 'get-master-addr-by-name', MASTER_NAME)) as string[] | null)?.[1]));
    const sentinelView = (port: number) =>
      ask(port, async (c) => {
        const flat = (await c.call('SENTINEL', 'master', MASTER_NAME)) as string[];
        const fields = new Map<string, string>();
        for (let i = 0; i < flat.length; i += 2) fields.set(flat[i]!, flat[i + 1]!);
        return { replicas: Number(fields.get('num-slaves')), others: Number(fields.get('num-other-sentinels')), flags: fields.get('flags') ?? '' };
      });
    const replicationOf = (port: number) => ask(port, async (c) => c.info('replication'));
    const until = async (what: string, check: () => Promise<boolean>, ms: number) => {
      const deadline = Date.now() + ms;
      while (!(await check())) {
        if (Date.now() > deadline) throw new Error(`sentinel group: ${what} within ${ms} ms`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    const replicaInSync = async (masterAt: number) => /slave0:.*state=online/.test((await replicationOf(masterAt)) ?? '');

    await until('replica in sync', () => replicaInSync(masterPort), 20_000);
    // Every sentinel sees the replica and the two other sentinels: only then can they agree on a failover.
    await until(
      'sentinels to find each other and the replica',
      async () => (await Promise.all(sentinelPorts.map(sentinelView))).every((v) => v !== null && v.replicas === 1 && v.others === 2),
      30_000,
    );

    const currentMasterPort = async () => {
      const named = await Promise.all(sentinelPorts.map(masterPortNamedBy));
      const agreed = named.filter((p): p is number => typeof p === 'number' && p > 0);
      return agreed.length >= 2 && agreed.every((p) => p === agreed[0]) ? agreed[0]! : null;
    };

    const group: SentinelGroup = {
      name: MASTER_NAME,
      sentinels,
      env: { REDIS_SENTINELS: sentinels.map((s) => `${s.host}:${s.port}`).join(','), REDIS_SENTINEL_NAME: MASTER_NAME },
      target: { mode: 'sentinel', sentinels, name: MASTER_NAME },
      async master() {
        const port = await currentMasterPort();
        const node = port === null ? undefined : nodes.get(port);
        if (!node) throw new Error('the sentinels do not agree on a master');
        return node;
      },
      async replica() {
        const master = await group.master();
        return [...nodes.values()].find((n) => n.port !== master.port)!;
      },
      async killMaster(killOptions = {}) {
        const killed = await group.master();
        const replica = [...nodes.values()].find((n) => n.port !== killed.port)!;
        let proxy: TcpProxy | null = null;
        if (killOptions.lagMs) {
          proxy = await startTcpProxy(killed.port);
          const through = proxy.port;
          // A partial resynchronisation (same replication id): quick, and the sentinels leave a replica's new master alone for failover-timeout.
          await ask(replica.port, (c) => c.call('REPLICAOF', '127.0.0.1', String(through)));
          await until('the replica to follow the master through the proxy', async () => new RegExp(`master_port:${through}\\r?\\nmaster_link_status:up`).test((await replicationOf(replica.port)) ?? ''), 10_000);
          proxy.holdReplies(true);
          killOptions.onLagging?.();
          await new Promise((r) => setTimeout(r, killOptions.lagMs));
        }
        const exited = new Promise((resolve) => killed.process.once('exit', resolve));
        const at = Date.now();
        killed.process.kill('SIGKILL');
        await exited;
        // What the proxy held never reaches the replica.
        await proxy?.close();
        await until(
          'the sentinels to promote the replica',
          async () => (await currentMasterPort()) === replica.port && /role:master/.test((await replicationOf(replica.port)) ?? ''),
          60_000,
        );
        const failoverMs = Date.now() - at;
        // Back as the new master's replica at once (not as a second master the sentinels would have to demote).
        nodes.set(
          killed.port,
          await startRedisServer({ dir: killed.dir, port: killed.port, extraArgs: ['--replicaof', '127.0.0.1', String(replica.port)] }),
        );
        await until('the restarted node to be in sync', () => replicaInSync(replica.port), 30_000);
        await until(
          'every sentinel to see the restarted replica',
          async () => (await Promise.all(sentinelPorts.map(sentinelView))).every((v) => v !== null && v.replicas >= 1 && !/o_down|s_down/.test(v.flags)),
          30_000,
        );
        return { killed: killed.port, promoted: replica.port, failoverMs, killedAt: at };
      },
      async failover() {
        const demoted = await group.master();
        const promoted = [...nodes.values()].find((n) => n.port !== demoted.port)!;
        const asked = await ask(sentinelPorts[0]!, (c) => c.call('SENTINEL', 'failover', MASTER_NAME));
        if (asked !== 'OK') throw new Error(`sentinel group: SENTINEL FAILOVER answered ${String(asked)}`);
        await until(
          'the sentinels to promote the replica',
          async () => (await currentMasterPort()) === promoted.port && /role:master/.test((await replicationOf(promoted.port)) ?? ''),
          30_000,
        );
        await until('the former master to be the new one\'s replica, in sync', () => replicaInSync(promoted.port), 30_000);
        return { demoted: demoted.port, promoted: promoted.port };
      },
      async cleanup() {
        await stopAll();
      },
    };
    return group;
  } catch (error) {
    await stopAll();
    throw error;
  }

  async function stopAll() {
    for (const child of sentinelProcesses) {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
    }
    for (const node of nodes.values()) {
      if (node.process.exitCode === null && node.process.signalCode === null) await node.stop().catch(() => node.process.kill('SIGKILL'));
    }
    rmSync(dir, { recursive: true, force: true });
  }
}
