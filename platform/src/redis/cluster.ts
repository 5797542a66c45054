import { Cluster, type ClusterOptions, type Redis, type RedisOptions } from 'ioredis';
import { hashSlot } from './hash-slot.js';
import type { RedisTarget } from './redis-target.js';
import { SlotMapWatch } from './slot-map-watch.js';

/**
 * A connection to one Redis (with or without Sentinel) or to a Redis
 * Cluster. Code typed with it can be handed a cluster: every script,
 * transaction and pipeline it sends must name keys of one hash slot (one
 * clinic's `{clinic}` tag). Which services run on a cluster is the
 * configuration check's to say (`redisTargetForService`).
 */
export type RedisClient = Redis | Cluster;

export type ClusterTarget = Extract<RedisTarget, { mode: 'cluster' }>;

/**
 * What a service may set on its connections. `shardedSubscriber`: on a
 * cluster, this connection SSUBSCRIBEs (one Redis needs nothing for that).
 * `clusterReadyCheck: false`: on a cluster, a (re)connection is ready once it
 * has the slot map, without first asking a node whether the cluster's state is
 * ok (connectRedisClientForJobs says why its connections need that).
 */
export type ClientOptions = Pick<RedisOptions, 'commandTimeout' | 'maxRetriesPerRequest'> & { shardedSubscriber?: boolean; clusterReadyCheck?: false };

/**
 * A Redis Cluster connection (ioredis `Cluster`) that behaves as
 * connectRedis's do: it reconnects by itself (backing off to 2 s), and a
 * command fails fast (STORE_UNAVAILABLE for the action) once the cluster has
 * not answered it after one retry. A failover or a slot migration is a
 * redirection (MOVED, ASK, TRYAGAIN, CLUSTERDOWN) the client follows by
 * itself, re-reading the slot map; commands go to masters only. What no
 * redirection tells (a sharded subscriber's slot moved) the process's
 * SlotMapWatch does, within SLOT_MAP_CHECK_MS.
 */
export function connectRedisCluster(target: ClusterTarget, name: string, options: ClientOptions = {}): Cluster {
  const { shardedSubscriber, clusterReadyCheck, ...redisOptions } = options;
  const credentials = { ...(target.username && { username: target.username }), ...(target.password && { password: target.password }) };
  const common: ClusterOptions = {
    redisOptions: { maxRetriesPerRequest: 1, ...credentials },
    enableOfflineQueue: true,
    clusterRetryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 2000),
    // A failover takes the cluster node timeout and more: these delays are per try, up to maxRedirections tries.
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 200,
    retryDelayOnTryAgain: 100,
    retryDelayOnMoved: 0,
    maxRedirections: 16,
    scaleReads: 'master',
    slotsRefreshTimeout: 2000,
    // Not ioredis's re-read of the slot map on a timer, per connection: the process's one SlotMapWatch tells a
    // connection when its map is stale (slot-map-watch.ts says why). Redirections still re-read it at once.
    slotsRefreshInterval: 0,
  };
  const cluster = new Cluster(target.nodes, {
    ...common,
    redisOptions: { ...common.redisOptions, connectionName: name, ...redisOptions },
    // SSUBSCRIBE goes to the master that owns the channel's slot, and follows it when the slot moves. It keeps a
    // connection to every master: only for the connections that subscribe to sharded channels.
    shardedSubscribers: shardedSubscriber === true,
    ...(clusterReadyCheck === false && { enableReadyCheck: false }),
  });
  slotMapWatchOf(target, common).add(cluster);
  return cluster;
}

/** One SlotMapWatch per cluster (its startup nodes and user) in this process, while it has connections to watch. */
const slotMapWatches = new Map<string, SlotMapWatch>();

function slotMapWatchOf(target: ClusterTarget, options: ClusterOptions): SlotMapWatch {
  const key = JSON.stringify([target.nodes, target.username ?? null]);
  let watch = slotMapWatches.get(key);
  if (!watch) slotMapWatches.set(key, (watch = new SlotMapWatch(target.nodes, options, () => slotMapWatches.delete(key))));
  return watch;
}

/**
 * The connection a command on `key` goes to now: the client itself for one
 * Redis, or with a cluster the connection to the master that owns the key's
 * slot (null while the slot map names none). Writes go through that
 * connection, so a WAIT on it counts the replicas of that shard.
 */
export function connectionOfKey(client: RedisClient, key: string): Redis | null {
  if (!isCluster(client)) return client;
  const owner = client.slots[hashSlot(key)]?.[0];
  if (!owner) return null;
  return client.nodes('master').find((node) => `${node.options.host}:${node.options.port}` === owner) ?? null;
}

export function isCluster(client: RedisClient): client is Cluster {
  return (client as Cluster).isCluster === true;
}
