import { Redis, type RedisOptions } from 'ioredis';
import { connectRedisCluster, type ClientOptions, type RedisClient } from './cluster.js';
import type { RedisTarget } from './redis-target.js';

export * from './clinic-subscriptions.js';
export * from './close.js';
export * from './cluster.js';
export * from './hash-slot.js';
export * from './redis-target.js';
export * from './replica-ack.js';
export * from './replication.js';
export * from './slot-map-watch.js';

/**
 * A Redis connection that reconnects by itself (forever, backing off to 2 s)
 * and fails commands fast while Redis is down instead of queueing them, so an
 * action gets STORE_UNAVAILABLE at once and the client can retry it.
 *
 * `target` is a URL (one Redis) or what `readRedisTarget` made of the
 * environment. With Sentinel, every (re)connection asks the sentinels for the
 * current master: a failover is a reconnection like any other. A connection
 * never stays on a former master: a SIGKILLed master closes it, the sentinels
 * close every client of an instance they demote (CLIENT KILL TYPE normal and
 * pubsub, part of their reconfiguration), a node that is not a master is
 * refused when the connection is made (`role: 'master'`), and a node that
 * answers READONLY makes the connection reconnect and send that command
 * again.
 */
const SENTINEL_COMMAND_TIMEOUT_MS = 2000;

export function connectRedis(target: RedisTarget | string, name: string, options: RedisOptions = {}): Redis {
  const resolved: RedisTarget = typeof target === 'string' ? { mode: 'single', url: target } : target;
  const common: RedisOptions = {
    connectionName: name,
    lazyConnect: false,
    enableOfflineQueue: true,
    maxRetriesPerRequest: 1,
    retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 2000),
  };
  if (resolved.mode === 'single') return new Redis(resolved.url, { ...common, ...options });
  if (resolved.mode === 'sentinel') {
    return new Redis({
      ...common,
      sentinels: resolved.sentinels,
      name: resolved.name,
      role: 'master',
      ...(resolved.username && { username: resolved.username }),
      ...(resolved.password && { password: resolved.password }),
      ...(resolved.sentinelPassword && { sentinelPassword: resolved.sentinelPassword }),
      sentinelRetryStrategy: (attempt) => Math.min(100 * attempt, 2000),
      // A sentinel that takes the connection but does not answer (stopped, overloaded) is passed over for the next.
      sentinelCommandTimeout: SENTINEL_COMMAND_TIMEOUT_MS,
      // Not ioredis's failover detector: on +switch-master it closes the connection through the connector, and
      // when that happens while the connection is asking the sentinels for the master (every reconnection does,
      // so it happens during failovers) ioredis 5's connect fails with "Connection is closed" and the connection
      // ends for good: status "end", no reconnection, every command fails from then on. See the comment above for
      // what leaves a former master instead.
      failoverDetector: false,
      reconnectOnError: (error) => (/^READONLY/.test(error.message) ? 2 : false),
      ...options,
    });
  }
  throw new Error(`${name}: a Redis Cluster (REDIS_CLUSTER_NODES) is opened with connectRedisCluster, by code checked on a cluster (RedisClient)`);
}

/**
 * A connection for BullMQ workers and their blocking commands: BullMQ wants
 * `maxRetriesPerRequest: null` there (a blocking read waits out an outage).
 */
export function connectRedisForJobs(target: RedisTarget | string, name: string): Redis {
  return connectRedis(target, name, { maxRetriesPerRequest: null });
}

/**
 * connectRedis for code that can be handed a Redis Cluster (RedisClient):
 * with REDIS_CLUSTER_NODES a cluster connection (connectRedisCluster), else
 * connectRedis's.
 */
export function connectRedisClient(target: RedisTarget | string, name: string, options: ClientOptions = {}): RedisClient {
  if (typeof target !== 'string' && target.mode === 'cluster') return connectRedisCluster(target, name, options);
  const { shardedSubscriber: _oneRedisNeedsNothing, clusterReadyCheck: _nor, ...redisOptions } = options;
  return connectRedis(target, name, redisOptions);
}

/**
 * connectRedisForJobs for code that can be handed a Redis Cluster.
 *
 * On a cluster without the cluster's ready check: a BullMQ worker whose
 * blocking read goes unanswered (its master killed) disconnects that
 * connection and awaits its `connect()`, and ioredis's Cluster never settles
 * that promise when the ready check of the reconnection fails (CLUSTER INFO
 * says `fail` while the replica is not promoted yet): it reconnects again by
 * itself, but the awaited promise is dropped, and the worker waits on it
 * forever, taking no job again (recording-failover, 2026-12-07: 32 purges
 * waiting, none taken; platform/test/job-worker-failover.test.ts, 4 runs in
 * 12). Without the check the connection is ready once it has the slot map; a
 * command it sends while the cluster's state is not ok meets CLUSTERDOWN,
 * which the client retries as any redirection.
 */
export function connectRedisClientForJobs(target: RedisTarget | string, name: string): RedisClient {
  return connectRedisClient(target, name, { maxRetriesPerRequest: null, clusterReadyCheck: false });
}

export function isRedisUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  return (
    error.name === 'MaxRetriesPerRequestError' ||
    error instanceof DeadlinePassed ||
    // "Command timed out": ioredis's commandTimeout, a Redis that is up but does not answer (stalled, overloaded).
    // CLUSTERDOWN, TRYAGAIN, "Too many Cluster redirections", "Failed to refresh slots cache": a cluster mid-failover or mid-migration.
    // "non local key": a script met a key its node no longer (or not yet) holds while its slot migrates (README, "Scaling").
    /Connection is closed|ECONNREFUSED|ECONNRESET|EPIPE|LOADING|READONLY|MASTERDOWN|NOREPLICAS|All sentinels are unreachable|Stream isn't writeable|enableOfflineQueue|Command timed out|CLUSTERDOWN|TRYAGAIN|Too many Cluster redirections|Failed to refresh slots cache|None of startup nodes is available|Script attempted to access a non local key/i.test(
      error.message,
    )
  );
}

/** The store did not answer within the action's budget (HUB_ACTION_TIMEOUT_MS): STORE_UNAVAILABLE, like a Redis that is down. */
export class DeadlinePassed extends Error {
  override readonly name = 'DeadlinePassed';
}

/**
 * `work`, or a DeadlinePassed rejection after `ms`, whichever comes first. The
 * work goes on (a Redis command already sent cannot be taken back); what it
 * does after the deadline is `onLate`'s to log. Every action is safe to
 * retry with its idempotency key (requestId, clientMessageId), so a client
 * told STORE_UNAVAILABLE retries and learns whether it was done.
 */
export function withinDeadline<T>(work: Promise<T>, ms: number, onLate: (outcome: { ok: true } | { ok: false; error: unknown }) => void): Promise<T> {
  if (!(ms > 0)) return work;
  let timer: NodeJS.Timeout | undefined;
  let passed = false;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      passed = true;
      reject(new DeadlinePassed(`no answer within ${ms} ms`));
    }, ms);
  });
  work.then(
    () => passed && onLate({ ok: true }),
    (error: unknown) => passed && onLate({ ok: false, error }),
  );
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

/** Resolves true when Redis answers PING within `ms`, false when it fails or stays silent (down, or stalled). */
export async function pingWithin(redis: RedisClient, ms: number): Promise<boolean> {
  try {
    return (await withinDeadline(redis.ping(), ms, () => undefined)) === 'PONG';
  } catch {
    return false;
  }
}

/**
 * For a connection handed to a library that sends some commands without
 * awaiting them (the Socket.IO Redis adapter publishes broadcasts
 * fire-and-forget): while Redis is down those commands reject, and an
 * unhandled rejection would stop the whole process. Their failures go to
 * `onError` instead; a caller that does await still gets the rejection.
 */
export function catchUnawaitedFailures<C extends RedisClient>(client: C, commands: readonly string[], onError: (error: Error, command: string) => void): C {
  const methods = client as unknown as Record<string, (...args: unknown[]) => unknown>;
  for (const command of commands) {
    const send = methods[command]!.bind(client);
    methods[command] = (...args: unknown[]) => {
      const result = send(...args);
      if (result instanceof Promise) result.catch((error: Error) => onError(error, command));
      return result;
    };
  }
  return client;
}
