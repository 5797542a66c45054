import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freePort, startRedisServer, type RedisProcess } from '@clinic-hub/platform/redis-server';
import { hashSlot, type RedisTarget } from '@clinic-hub/platform/redis';

const run = promisify(execFile);

/**
 * A real Redis Cluster on loopback for one test file: 3 masters and 3
 * replicas, each its own redis-server (AOF with fsync always, as every test
 * Redis) on a free port with its cluster bus on another free port
 * (`cluster-port`, Redis 7), made into a cluster by `redis-cli --cluster
 * create … --cluster-replicas 1`, all under one temporary directory removed
 * by `cleanup`.
 */
export interface RedisClusterNodes {
  /** Every node's address (masters and replicas): REDIS_CLUSTER_NODES takes any of them. */
  nodes: { host: string; port: number }[];
  /** REDIS_CLUSTER_NODES, for a service's environment. */
  env: Record<string, string>;
  target: RedisTarget;
  /** Every node's redis-server process now (masters and replicas; a killed node's restart replaces it). */
  processes(): RedisProcess[];
  /** The masters now, each with the slot ranges it serves and its replicas' ports. */
  masters(): Promise<ClusterMaster[]>;
  /** The master serving `slot` now. */
  masterOfSlot(slot: number): Promise<ClusterMaster>;
  /**
   * SIGKILL a master (no SHUTDOWN, no AOF flush beyond what fsync already
   * did), wait until the cluster has promoted its replica and is whole
   * again, then restart the killed node in place (its nodes.conf makes it
   * rejoin as the new master's replica) and wait until it is in sync.
   *
   * `lagMs`: first make the replica fall that far behind, so that the
   * failover loses what the master did meanwhile (a SIGKILL alone loses
   * almost nothing on loopback: what the master sent is in the replica's
   * socket buffer). A cluster replica cannot be moved behind a proxy
   * (REPLICAOF is refused in cluster mode), so an nftables rule drops the
   * master's packets to the replica's replication connection, from then
   * until the replica is promoted; what the master sent meanwhile never
   * arrives. Needs root and nft: `clusterLagSkipReason()` says why not.
   * `onLagging`: called when the replica stops getting the master's writes.
   */
  killMaster(port: number, options?: { lagMs?: number; onLagging?: () => void }): Promise<{ killed: number; promoted: number; failoverMs: number; killedAt: number }>;
  /** `redis-cli --cluster reshard`: move `count` slots from one master to another, keys and all, while clients run. */
  reshard(fromPort: number, toPort: number, count: number): Promise<void>;
  /**
   * Moves one slot to another master as `redis-cli --cluster reshard` does
   * (IMPORTING, MIGRATING, MIGRATE, then the slot's new owner), but one key
   * at a time, awaiting `between()` after each, so that clients act in every
   * state the slot passes through, its keys split between the two nodes.
   * `first`: keys to move before the others, in that order (a migration
   * takes a slot's keys in any order; a test may choose the one that splits
   * what belongs together). Resolves with how many keys moved.
   */
  migrateSlotKeyByKey(slot: number, toPort: number, between: () => Promise<void>, first?: readonly string[]): Promise<number>;
  cleanup(): Promise<void>;
}

export interface ClusterMaster {
  id: string;
  port: number;
  /** Inclusive slot ranges. */
  slots: [number, number][];
  replicaPorts: number[];
}

/** A clinic id whose slot is in `slots` (a master's, as ClusterMaster has them): the first `<prefix>-N` that lands there. */
export function clinicOnMaster(slots: readonly [number, number][], prefix = 'clinic'): string {
  for (let n = 0; ; n++) {
    const id = `${prefix}-${n}`;
    const slot = hashSlot(`{${id}}`);
    if (slots.some(([first, last]) => slot >= first && slot <= last)) return id;
  }
}

const NFT = ['/usr/sbin/nft', '/sbin/nft', '/usr/bin/nft'].find((path) => existsSync(path)) ?? null;

/** Why `killMaster({ lagMs })` cannot run here, or null when it can. */
export function clusterLagSkipReason(): string | null {
  if (process.platform !== 'linux') return `the replica's lag uses nftables, on Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'the replica\'s lag adds an nftables rule, which needs root: run the tests as root, as CI does';
  if (!NFT) return 'nft is not installed: apt-get install nftables';
  return null;
}

/**
 * Drops the packets `fromPort` sends to `toPort` on loopback (one TCP connection's one direction) until the returned
 * function is called. A table of its own per rule, named after this process, so removing it touches nothing else.
 */
async function dropOnLoopback(fromPort: number, toPort: number): Promise<() => Promise<void>> {
  const table = `clinic_redislag_${process.pid}_${fromPort}_${toPort}`;
  await runNft(
    [
      `table inet ${table} {`,
      '  chain out {',
      '    type filter hook output priority 0; policy accept;',
      `    ip saddr 127.0.0.1 ip daddr 127.0.0.1 tcp sport ${fromPort} tcp dport ${toPort} drop`,
      '  }',
      '}',
    ].join('\n'),
  );
  droppedTables.add(table);
  return async () => {
    if (!droppedTables.delete(table)) return;
    await runNft(`delete table inet ${table}`);
  };
}

/** The nftables tables this process added and has not removed yet (removed by `cleanup` at the latest). */
const droppedTables = new Set<string>();

function runNft(script: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = execFile(NFT!, ['-f', '-'], { timeout: 10_000 }, (error) => (error ? reject(new Error(`nft: ${error.message}`)) : resolve()));
    child.stdin!.end(`${script}\n`);
  });
}

/** How long a silent master goes before the cluster fails it over: short for tests, long enough for a loaded two-core machine. */
const NODE_TIMEOUT_MS = 3000;

export async function startRedisCluster(options: { nodeTimeoutMs?: number } = {}): Promise<RedisClusterNodes> {
  const dir = mkdtempSync(join(tmpdir(), 'clinic-hub-cluster-'));
  const nodes = new Map<number, RedisProcess>();
  const busPorts = new Map<number, number>();
  const clusterArgs = (port: number) => [
    '--cluster-enabled', 'yes',
    '--cluster-config-file', 'nodes.conf',
    '--cluster-node-timeout', String(options.nodeTimeoutMs ?? NODE_TIMEOUT_MS),
    '--cluster-port', String(busPorts.get(port)),
    // A replica with a stale copy may still be promoted: the test is about what WAIT guarantees, not about refusing failovers.
    '--cluster-replica-validity-factor', '0',
  ];
  const nodeDir = (port: number) => join(dir, `node-${port}`);
  const start = async (port: number) => nodes.set(port, await startRedisServer({ dir: nodeDir(port), port, extraArgs: clusterArgs(port) }));
  try {
    const ports: number[] = [];
    const taken = new Set<number>();
    // A free port can be taken by another process before redis-server binds it (parallel test files): then two new ones.
    for (let tries = 0; ports.length < 6; tries++) {
      const port = await freePort();
      const bus = await freePort();
      if (port === bus || taken.has(port) || taken.has(bus)) continue;
      taken.add(port).add(bus);
      busPorts.set(port, bus);
      try {
        await start(port);
      } catch (error) {
        if (tries < 20 && /Address already in use/.test((error as Error).message)) continue;
        throw error;
      }
      ports.push(port);
    }
    await run(process.env.REDIS_CLI_BIN ?? 'redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '1', '--cluster-yes'], {
      timeout: 60_000,
    });
    await until('every node to see the cluster whole', () => everyNodeOk(ports), 60_000);
    await until('every master\'s replica to be in sync', () => everyReplicaInSync(ports), 60_000);

    const cluster: RedisClusterNodes = {
      nodes: ports.map((port) => ({ host: '127.0.0.1', port })),
      env: { REDIS_CLUSTER_NODES: ports.map((p) => `127.0.0.1:${p}`).join(',') },
      target: { mode: 'cluster', nodes: ports.map((port) => ({ host: '127.0.0.1', port })) },
      processes: () => [...nodes.values()],
      masters: () => readMasters([...nodes.values()].filter(isAlive).map((n) => n.port)),
      async masterOfSlot(slot) {
        const master = (await cluster.masters()).find((m) => m.slots.some(([from, to]) => slot >= from && slot <= to));
        if (!master) throw new Error(`redis cluster: no master serves slot ${slot}`);
        return master;
      },
      async killMaster(port, killOptions = {}) {
        const killed = nodes.get(port);
        const before = (await cluster.masters()).find((m) => m.port === port);
        if (!killed || !before) throw new Error(`redis cluster: ${port} is not a master`);
        let lagging: (() => Promise<void>) | null = null;
        if (killOptions.lagMs) {
          const skip = clusterLagSkipReason();
          if (skip) throw new Error(`redis cluster: killMaster({ lagMs }): ${skip}`);
          // The replica's replication connection, as the master sees it: addr=127.0.0.1:<the replica's own port for it>.
          const replicas = (await ask(port, (c) => c.call('CLIENT', 'LIST', 'TYPE', 'replica') as Promise<string>)) ?? '';
          const replicaEnds = [...replicas.matchAll(/addr=127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1]));
          if (replicaEnds.length === 0) throw new Error(`redis cluster: master ${port} has no replica connected to lag`);
          const restore = await Promise.all(replicaEnds.map((end) => dropOnLoopback(port, end)));
          lagging = async () => void (await Promise.all(restore.map((r) => r())));
          killOptions.onLagging?.();
          await new Promise((r) => setTimeout(r, killOptions.lagMs));
        }
        const exited = new Promise((resolve) => killed.process.once('exit', resolve));
        const at = Date.now();
        let promoted = 0;
        try {
          killed.process.kill('SIGKILL');
          await exited;
          const alive = () => ports.filter((p) => p !== port);
          await until(
            'a replica to take over the killed master\'s slots',
            async () => {
              const masters = await readMasters(alive()).catch(() => []);
              const heir = masters.find((m) => before.replicaPorts.includes(m.port) && m.slots.length > 0);
              promoted = heir?.port ?? 0;
              return promoted !== 0 && (await everyNodeOk(alive()));
            },
            60_000,
          );
        } finally {
          // The replica is master now and has closed that connection: what the dead master's kernel still resends meets a reset.
          await lagging?.();
        }
        const failoverMs = Date.now() - at;
        await start(port);
        await until('the restarted node to be the new master\'s replica, in sync', () => replicaInSync(promoted, port), 60_000);
        await until('every node to see the cluster whole', () => everyNodeOk(ports), 60_000);
        await until('every master\'s replica to be in sync', () => everyReplicaInSync(ports), 60_000);
        return { killed: port, promoted, failoverMs, killedAt: at };
      },
      async reshard(fromPort, toPort, count) {
        const masters = await cluster.masters();
        const from = masters.find((m) => m.port === fromPort);
        const to = masters.find((m) => m.port === toPort);
        if (!from || !to) throw new Error(`redis cluster: reshard needs two masters (got ${fromPort} → ${toPort})`);
        await run(
          process.env.REDIS_CLI_BIN ?? 'redis-cli',
          ['--cluster', 'reshard', `127.0.0.1:${fromPort}`, '--cluster-from', from.id, '--cluster-to', to.id, '--cluster-slots', String(count), '--cluster-yes'],
          { timeout: 120_000 },
        );
        await until('every node to agree on the slots after the reshard', () => everyNodeOk(ports), 30_000);
      },
      async migrateSlotKeyByKey(slot, toPort, between, first = []) {
        const from = await cluster.masterOfSlot(slot);
        const to = (await cluster.masters()).find((m) => m.port === toPort);
        if (!to || to.port === from.port) throw new Error(`redis cluster: cannot move slot ${slot} from ${from.port} to ${toPort}`);
        const source = new Redis({ host: '127.0.0.1', port: from.port, lazyConnect: true });
        const target = new Redis({ host: '127.0.0.1', port: to.port, lazyConnect: true });
        try {
          await Promise.all([source.connect(), target.connect()]);
          await target.cluster('SETSLOT', slot, 'IMPORTING', from.id);
          await source.cluster('SETSLOT', slot, 'MIGRATING', to.id);
          let moved = 0;
          const chosen = first.filter((key) => hashSlot(key) === slot);
          for (;;) {
            const key = chosen.shift() ?? ((await source.cluster('GETKEYSINSLOT', slot, 1)) as string[])[0];
            if (key === undefined) break;
            // A chosen key not (or no longer) on the source is skipped: MIGRATE answers NOKEY.
            if ((await source.call('MIGRATE', '127.0.0.1', to.port, '', 0, 5000, 'KEYS', key)) === 'NOKEY') continue;
            moved++;
            await between();
          }
          // The new owner first, then the old one (redis-cli's order), then the others so that none answers with the old map.
          await target.cluster('SETSLOT', slot, 'NODE', to.id);
          await source.cluster('SETSLOT', slot, 'NODE', to.id);
          for (const master of await cluster.masters()) {
            if (master.port !== from.port && master.port !== to.port) await ask(master.port, (c) => c.cluster('SETSLOT', slot, 'NODE', to.id));
          }
          await until('every node to agree on the slots after the move', () => everyNodeOk(ports), 30_000);
          return moved;
        } finally {
          source.disconnect();
          target.disconnect();
        }
      },
      async cleanup() {
        await stopAll();
      },
    };
    return cluster;
  } catch (error) {
    await stopAll();
    throw error;
  }

  async function stopAll() {
    for (const table of droppedTables) await runNft(`delete table inet ${table}`).catch(() => undefined);
    droppedTables.clear();
    for (const node of nodes.values()) {
      if (isAlive(node)) await node.stop().catch(() => node.process.kill('SIGKILL'));
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

const isAlive = (node: RedisProcess) => node.process.exitCode === null && node.process.signalCode === null;

async function ask<T>(port: number, work: (client: Redis) => Promise<T>): Promise<T | null> {
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
}

async function until(what: string, check: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`redis cluster: ${what} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Every node answers, says cluster_state:ok, and all name the same masters for all 16384 slots. */
async function everyNodeOk(ports: readonly number[]): Promise<boolean> {
  const views = await Promise.all(
    ports.map((port) => ask(port, async (c) => ({ info: await c.cluster('INFO'), nodes: (await c.cluster('NODES')) as string }))),
  );
  if (views.some((v) => v === null || !/cluster_state:ok/.test(v.info) || !/cluster_slots_ok:16384/.test(v.info))) return false;
  const layouts = views.map((v) => slotLayout(v!.nodes));
  return layouts.every((layout) => layout === layouts[0]);
}

/** Masters and their slot ranges as one node sees them, as a comparable string (a failed master left without slots is not one). */
function slotLayout(nodesText: string): string {
  return parseNodes(nodesText)
    .filter((n) => n.master && n.slots.length > 0)
    .map((n) => `${n.port}:${n.slots.map(([a, b]) => `${a}-${b}`).join(',')}`)
    .sort()
    .join(' ');
}

interface NodeLine {
  id: string;
  port: number;
  master: boolean;
  masterId: string | null;
  failed: boolean;
  slots: [number, number][];
}

/** CLUSTER NODES: `<id> <ip:port@bus> <flags> <master|-> <ping> <pong> <epoch> <link> <slot>…`; importing/migrating entries (`[…]`) are left out. */
function parseNodes(text: string): NodeLine[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [id, address, flags, master, , , , , ...slots] = line.trim().split(' ');
      const flagSet = new Set(flags!.split(','));
      return {
        id: id!,
        port: Number(/:(\d+)@/.exec(address!)?.[1]),
        master: flagSet.has('master') && !flagSet.has('fail'),
        masterId: master === '-' ? null : master!,
        failed: flagSet.has('fail') || flagSet.has('fail?'),
        slots: slots
          .filter((s) => !s.startsWith('['))
          .map((s) => {
            const [from, to] = s.split('-').map(Number);
            return [from!, to ?? from!] as [number, number];
          }),
      };
    });
}

async function readMasters(alivePorts: readonly number[]): Promise<ClusterMaster[]> {
  for (const port of alivePorts) {
    const text = await ask(port, async (c) => (await c.cluster('NODES')) as string);
    if (!text) continue;
    const lines = parseNodes(text);
    return lines
      .filter((n) => n.master && n.slots.length > 0)
      .map((m) => ({
        id: m.id,
        port: m.port,
        slots: m.slots,
        replicaPorts: lines.filter((r) => r.masterId === m.id && !r.failed).map((r) => r.port),
      }));
  }
  throw new Error('redis cluster: no node answered CLUSTER NODES');
}

/** Every master has a replica, online (a replica wait, WAIT 1, can be met). */
async function everyReplicaInSync(ports: readonly number[]): Promise<boolean> {
  const masters = await readMasters(ports).catch(() => []);
  if (masters.length === 0) return false;
  for (const master of masters) {
    if (master.replicaPorts.length === 0 || !(await replicaInSync(master.port, master.replicaPorts[0]!))) return false;
  }
  return true;
}

async function replicaInSync(masterPort: number, replicaPort: number): Promise<boolean> {
  const info = await ask(masterPort, (c) => c.info('replication'));
  return new RegExp(`slave\\d+:ip=127\\.0\\.0\\.1,port=${replicaPort},state=online`).test(info ?? '');
}
