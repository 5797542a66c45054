import { Redis, type Cluster } from 'ioredis';
import type { RedisReplicaStatus, RedisShardStatus } from '@clinic-hub/protocol';
import { isCluster, type RedisClient } from './cluster.js';

/**
 * A replica acknowledges what it holds every second: one silent for longer
 * is stalled or cut off, and would not confirm a replica wait (WAIT) in time,
 * even while its master still lists it `online` (until `repl-timeout`, 60 s).
 */
export const IN_SYNC_MAX_LAG_SECONDS = 2;

/** What a connection's Redis says about replication (INFO replication), for /healthz, metrics and `clinic status`. */
export interface RedisReplication {
  /** `master` (or `replica`: the connection reached a replica, which only happens mid-failover). */
  role: 'master' | 'replica';
  /** host:port of the node this connection talks to: with Sentinel, the master it found. */
  address: string | null;
  replicas: RedisReplicaStatus[];
  /** On a Redis Cluster: each shard (CLUSTER SHARDS), by its first slot. */
  shards?: RedisShardStatus[];
}

/**
 * With a Redis Cluster: `shards`, each master with its slots and replicas;
 * `address` lists the masters (host:port, comma-separated) and `replicas`
 * every replica connected to its master.
 */
export async function readReplication(client: RedisClient): Promise<RedisReplication> {
  if (!isCluster(client)) return readNodeReplication(client);
  const shards = await readShards(client);
  return {
    role: 'master',
    address: shards.map((s) => s.master).join(',') || null,
    replicas: shards.flatMap((s) => s.replicas.filter((r) => r.lagSeconds !== null)),
    shards,
  };
}

/**
 * The shards as the node asked sees them (CLUSTER SHARDS, Redis 7), each
 * replica as its master reports it (INFO replication). A replica the cluster
 * knows but its master does not list is `disconnected` (killed, or cut off
 * past `repl-timeout`); its lag in bytes is from the offsets the cluster last
 * gossiped. A master that does not answer (through the client's connection
 * to it or one of its own) is down, even while the cluster still holds it
 * online, and its replicas are `unknown`.
 */
async function readShards(cluster: Cluster): Promise<RedisShardStatus[]> {
  const reply = (await cluster.call('CLUSTER', 'SHARDS')) as unknown[][];
  const connections = new Map(cluster.nodes('all').map((node) => [`${node.options.host}:${node.options.port}`, node]));
  const shards = await Promise.all(
    reply.map(async (entry) => {
      const shard = pairs(entry);
      const flat = shard.slots as number[];
      const slots: [number, number][] = [];
      for (let i = 0; i < flat.length; i += 2) slots.push([Number(flat[i]), Number(flat[i + 1])]);
      const nodes = (shard.nodes as unknown[][]).map(pairs);
      const master = nodes.find((n) => n.role === 'master');
      if (!master || slots.length === 0) return null;
      const address = `${master.ip}:${master.port}`;
      // A failed master is not asked: it would only make the answer late. One the cluster still holds online but that
      // does not answer (killed, not yet failed by the others: cluster-node-timeout) is down all the same.
      const reported = master.health === 'online' ? await readMasterReplication(cluster, connections.get(address), master) : null;
      const masterUp = reported !== null;
      const replicas = nodes
        .filter((n) => n.role === 'replica')
        .map((n): RedisReplicaStatus => {
          const replica = `${n.ip}:${n.port}`;
          return (
            reported?.replicas.find((r) => r.address === replica) ?? {
              address: replica,
              state: reported ? 'disconnected' : 'unknown',
              lagBytes: Math.max(0, Number(master['replication-offset']) - Number(n['replication-offset'])),
              lagSeconds: null,
              inSync: false,
            }
          );
        });
      return {
        master: address,
        masterUp,
        slots,
        slotCount: slots.reduce((n, [first, last]) => n + last - first + 1, 0),
        replicas,
      };
    }),
  );
  return shards.filter((s) => s !== null).sort((a, b) => a.slots[0]![0] - b.slots[0]![0]);
}

/**
 * INFO replication of a shard's master through the client's own connection
 * to it, or, when the client has none or it fails (right after a failover the
 * client's pool may not hold the promoted master yet, or holds a connection
 * still reconnecting), through a connection of its own for this one question.
 * Null when neither answers.
 */
async function readMasterReplication(cluster: Cluster, pooled: Redis | undefined, master: Record<string, unknown>): Promise<RedisReplication | null> {
  if (pooled && pooled.status !== 'end') {
    const reported = await readNodeReplication(pooled).catch(() => null);
    if (reported) return reported;
  }
  const { username, password } = cluster.options.redisOptions ?? {};
  const once = new Redis({
    host: String(master.ip),
    port: Number(master.port),
    ...(username && { username }),
    ...(password && { password }),
    connectionName: 'clinic:replication-status',
    lazyConnect: true,
    connectTimeout: ONE_OFF_TIMEOUT_MS,
    commandTimeout: ONE_OFF_TIMEOUT_MS,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  once.on('error', () => undefined);
  try {
    await once.connect();
    return await readNodeReplication(once);
  } catch {
    return null;
  } finally {
    once.disconnect();
  }
}

/** How long a one-off question to a master may take: status answers are read by people and probes. */
const ONE_OFF_TIMEOUT_MS = 1000;

/** A RESP map sent as a flat array (`[key, value, key, value …]`), as CLUSTER SHARDS answers on RESP2. */
function pairs(flat: unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = flat[i + 1];
  return out;
}

async function readNodeReplication(redis: Redis): Promise<RedisReplication> {
  const fields = parseInfo(await redis.info('replication'));
  const masterOffset = Number(fields.master_repl_offset ?? 0);
  const replicas: RedisReplicaStatus[] = [];
  for (let i = 0; fields[`slave${i}`] !== undefined; i++) {
    const entry = Object.fromEntries(fields[`slave${i}`]!.split(',').map((kv) => kv.split('=') as [string, string]));
    const state = entry.state ?? '?';
    const lagSeconds = Number(entry.lag ?? 0);
    replicas.push({
      address: `${entry.ip}:${entry.port}`,
      state,
      lagBytes: Math.max(0, masterOffset - Number(entry.offset ?? 0)),
      lagSeconds,
      inSync: state === 'online' && lagSeconds <= IN_SYNC_MAX_LAG_SECONDS,
    });
  }
  const stream = (redis as unknown as { stream?: { remoteAddress?: string; remotePort?: number } }).stream;
  return {
    role: fields.role === 'master' ? 'master' : 'replica',
    address: stream?.remoteAddress && stream.remotePort ? `${stream.remoteAddress}:${stream.remotePort}` : null,
    replicas,
  };
}

export function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}
