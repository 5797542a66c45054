/**
 * The set-up every hub benchmark shares: a private redis-server for the run
 * (or a private Sentinel group: a master, a replica and three sentinels on
 * loopback; or a private Redis Cluster: 3 masters and 3 replicas), with what
 * to stop at the end, whatever happens; hub nodes as processes of their own,
 * and Redis's counters around the measured window.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRedisServer, type RedisProcess } from '@clinic-hub/platform/redis-server';
import { hashSlot } from '@clinic-hub/platform/redis';
import { startRedisCluster } from '@clinic-hub/test-kit/redis-cluster';
import { startSentinelGroup } from '@clinic-hub/test-kit/redis-sentinel';
import { startHubNode, type HubNode } from './hub-process.js';
import { ProcessWatcher } from './proc-stats.js';
import { redisInfoNumber } from './redis-command.js';
import type { ServerKind } from './resource-figures.js';
import type { Resources } from './resources.js';
import { sleep } from './time.js';
import { WorkerPool, generatorProfileDir, type ConnectOptions } from './worker-pool.js';

/**
 * How the run's Redis is deployed: one redis-server, Sentinel (the hubs then
 * wait for the replica: HUB_REDIS_ACK_REPLICAS 1), or a Cluster of 3 masters
 * and 3 replicas (each change waits for its shard's replica).
 */
export const REDIS_MODES = ['single', 'sentinel', 'cluster'] as const;
export type RedisMode = (typeof REDIS_MODES)[number];

/** What one run of a benchmark shares: its redis-server, a temporary directory, what to stop. */
export interface BenchContext {
  /**
   * The redis-server the hubs write to (with Sentinel, the master; the group
   * has no failover during a run; on a Cluster, the master of the `bench`
   * clinic's slot, where its queue lives).
   */
  redis: RedisProcess;
  /** Every master (one but on a Cluster): flushed between phases, their command counts summed. */
  redisMasterPorts: number[];
  redisMode: RedisMode;
  /** How a hub node names that Redis: REDIS_URL, REDIS_SENTINELS and REDIS_SENTINEL_NAME, or REDIS_CLUSTER_NODES. */
  redisEnv: Record<string, string>;
  /** The other redis-server processes (Sentinel's replica; a Cluster's other 5 nodes), for their CPU. */
  redisReplicaPids: number[];
  /** Removed at the end of the run. */
  dir: string;
  resources: Resources;
  log: (line: string) => void;
  /** Rejects when something the run depends on (redis-server) dies. */
  fatal: Promise<never>;
}

/**
 * Starts a private redis-server for a run, hands it to `body`, and stops
 * everything registered on `resources` at the end, whatever happens.
 */
export async function withBenchContext<T>(
  name: string,
  options: { profileDir: string | null; redis?: RedisMode },
  log: (line: string) => void,
  resources: Resources,
  body: (context: BenchContext) => Promise<T>,
): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), `clinic-hub-${name}-`));
  resources.add('temporary directory', async () => rmSync(dir, { recursive: true, force: true }));
  let rejectFatal!: (error: Error) => void;
  const fatal = new Promise<never>((_, reject) => (rejectFatal = reject));
  fatal.catch(() => undefined);
  try {
    if (options.profileDir) mkdirSync(options.profileDir, { recursive: true });
    if (options.redis === 'cluster') {
      const cluster = await startRedisCluster();
      resources.add('redis cluster', () => cluster.cleanup());
      const masters = await cluster.masters();
      // The benchmarks' clinic ('bench', harness/clinics): its keys are in one slot, on one master.
      const owner = await cluster.masterOfSlot(hashSlot('{bench}'));
      const processes = cluster.processes();
      const redis = processes.find((p) => p.port === owner.port)!;
      const others = processes.filter((p) => p !== redis);
      for (const node of processes) node.process.once('exit', () => rejectFatal(new Error(`redis-server ${node.port} (cluster) exited during the benchmark`)));
      log(
        `Redis Cluster: 3 masters + 3 replicas, pids ${processes.map((p) => `${p.process.pid} (${p.port})`).join(', ')}; ` +
          `clinic bench on master pid ${redis.process.pid} port ${redis.port} (slot ${hashSlot('{bench}')})`,
      );
      return await body({
        redis,
        redisMasterPorts: masters.map((m) => m.port),
        redisMode: 'cluster',
        redisEnv: cluster.env,
        redisReplicaPids: others.map((p) => p.process.pid!),
        dir,
        resources,
        log,
        fatal,
      });
    }
    if (options.redis === 'sentinel') {
      const group = await startSentinelGroup();
      resources.add('sentinel group', () => group.cleanup());
      const [redis, replica] = [await group.master(), await group.replica()];
      for (const node of [redis, replica]) node.process.once('exit', () => rejectFatal(new Error(`redis-server ${node.port} exited during the benchmark`)));
      log(`Sentinel group: master pid ${redis.process.pid} on ${redis.url}, replica pid ${replica.process.pid} on ${replica.url}, sentinels ${group.env.REDIS_SENTINELS}`);
      return await body({ redis, redisMasterPorts: [redis.port], redisMode: 'sentinel', redisEnv: group.env, redisReplicaPids: [replica.process.pid!], dir, resources, log, fatal });
    }
    const redis = await startRedisServer({ dir: join(dir, 'redis') });
    resources.add('redis-server', () => redis.stop());
    redis.process.once('exit', () => rejectFatal(new Error('redis-server exited during the benchmark')));
    log(`redis-server pid ${redis.process.pid} on ${redis.url} (private, ${dir})`);
    return await body({ redis, redisMasterPorts: [redis.port], redisMode: 'single', redisEnv: { REDIS_URL: redis.url }, redisReplicaPids: [], dir, resources, log, fatal });
  } finally {
    await resources.stopAll(log);
  }
}

export interface StartedHubs {
  hubs: HubNode[];
  /** Stops them now (they are also stopped at the end of the run). */
  stop: () => Promise<void>;
  /** A node that could not run on the server asked for (uWebSockets.js did not load): its figures are not that server's. */
  warnings: string[];
}

/** `count` hub nodes on `server`, each its own process (with `--cpu-prof` into `profileDir/<node id>` when profiling). */
export async function startHubNodes(
  options: {
    count: number;
    idPrefix: string;
    server: ServerKind;
    /** REDIS_URL, or REDIS_SENTINELS and REDIS_SENTINEL_NAME (BenchContext.redisEnv). */
    redisEnv: Record<string, string>;
    secret: string;
    profileDir: string | null;
    env?: Record<string, string>;
  },
  context: Pick<BenchContext, 'resources' | 'log'>,
  tag: string,
): Promise<StartedHubs> {
  const started = await Promise.allSettled(
    Array.from({ length: options.count }, (_, n) => {
      const nodeId = `${options.idPrefix}-${n + 1}`;
      // One directory per node: the module loader's thread writes a profile too (the largest file is the main thread).
      const nodeArgs = options.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${join(options.profileDir, nodeId)}`] : [];
      return startHubNode({ nodeId, server: options.server, redisEnv: options.redisEnv, tokenSecret: options.secret, nodeArgs, ...(options.env ? { env: options.env } : {}) });
    }),
  );
  const hubs = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const stop = context.resources.add(`${options.idPrefix} hub nodes`, async () => {
    await Promise.all(hubs.map((h) => h.stop()));
  });
  const failedStart = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failedStart) throw failedStart.reason;
  const warnings: string[] = [];
  for (const hub of hubs) {
    if (hub.server !== options.server) {
      const warning = `${hub.nodeId} runs on ${hub.server}, not ${options.server} (uWebSockets.js did not load): its figures are not ${options.server}'s`;
      warnings.push(warning);
      context.log(`${tag} WARNING: ${warning}`);
    }
  }
  context.log(`${tag} hub nodes up: ${hubs.map((h) => `${h.nodeId} pid ${h.pid} ${h.url}`).join(', ')}`);
  return { hubs, stop, warnings };
}

/** A run's generator processes with their clients connected, and the watcher of every process the run measures. */
export interface ConnectedClients {
  pool: WorkerPool;
  /** Stops the generator processes now (they are also stopped at the end of the run). */
  stopWorkers: () => Promise<void>;
  watcher: ProcessWatcher;
  /** Stops the watcher now (it is also stopped at the end of the run). */
  stopWatcher: () => Promise<void>;
  redisPid: number;
  /** The replica's, with Sentinel (its CPU counts as Redis's too). */
  redisReplicaPids: number[];
  connected: number;
  connectFailed: number;
  connectSeconds: number;
}

/**
 * Starts `workers` generator processes (CPU profiles under `profileDir`,
 * named by `label`), watches them with the hub nodes, Redis and this
 * process, connects `count` clients (`token(i)` each) spread over them and
 * the hubs, and lets the last connections settle. Throws when no client
 * could connect (`who`: what a client is, for the message).
 */
export async function connectClients(
  options: { workers: number; profileDir: string | null; label: string; count: number; who: string },
  hubs: HubNode[],
  token: (i: number) => string,
  connect: ConnectOptions,
  context: Pick<BenchContext, 'resources' | 'log' | 'redis' | 'redisReplicaPids' | 'fatal'>,
  tag: string,
): Promise<ConnectedClients> {
  const pool = new WorkerPool(options.workers, generatorProfileDir(options.profileDir, options.label));
  const stopWorkers = context.resources.add(`${options.label} generator processes`, () => pool.stop());
  context.log(`${tag} generator processes: pids ${pool.pids.join(', ')}`);
  const redisPid = context.redis.process.pid!;
  const watcher = new ProcessWatcher([...hubs.map((h) => h.pid), ...pool.pids, process.pid, redisPid, ...context.redisReplicaPids]);
  const stopWatcher = context.resources.add('process watcher', async () => watcher.stop());
  const connectSeconds = await pool.connect(options.count, hubs, token, connect, { log: context.log, tag, fatal: context.fatal });
  const connected = pool.sum((p) => p.connected);
  if (connected === 0) throw new Error(`no ${options.who} could connect: see the errors above`);
  // Presence notices and joins of the last connections settle before anything is timed.
  await sleep(500);
  return { pool, stopWorkers, watcher, stopWatcher, redisPid, redisReplicaPids: context.redisReplicaPids, connected, connectFailed: pool.sum((p) => p.failed), connectSeconds };
}

/** What a hub benchmark's set-up holds: its log tag, the hub nodes, the clients connected to them, warnings so far. */
export interface BenchSetup extends ConnectedClients {
  tag: string;
  hubs: HubNode[];
  /** Stops the hub nodes now (they are also stopped at the end of the run). */
  stopHubs: () => Promise<void>;
  errors: string[];
}

/** What a run read around its measured window: the processes' marks, the hubs' metrics, Redis's counters, each generator's results. */
export interface WindowReadings {
  markStart: ReturnType<ProcessWatcher['mark']>;
  markEnd: ReturnType<ProcessWatcher['mark']>;
  metricsBefore: string[];
  metricsAfter: string[];
  redisBefore: RedisCounters;
  redisAfter: RedisCounters;
  results: Awaited<ReturnType<WorkerPool['results']>>;
}

export interface RedisCounters {
  commands: number;
  aof: number;
}

/** Redis's command count and AOF size, read before and after the measured window (summed over the masters given). */
export async function redisCounters(...ports: number[]): Promise<RedisCounters> {
  const counters = { commands: 0, aof: 0 };
  for (const port of ports) {
    counters.commands += await redisInfoNumber(port, 'stats', 'total_commands_processed').catch(() => NaN);
    counters.aof += await redisInfoNumber(port, 'persistence', 'aof_current_size').catch(() => NaN);
  }
  return counters;
}
