import type { Redis } from 'ioredis';
import { isCluster, type RedisClient } from './cluster.js';

/** What a connection's Redis says about replication (INFO replication), for /healthz, metrics and `clinic status`. */
export interface RedisReplication {
  /** `master` (or `replica`: the connection reached a replica, which only happens mid-failover). */
  role: 'master' | 'replica';
  /** host:port of the node this connection talks to: with Sentinel, the master it found. */
  address: string | null;
  replicas: {
    address: string;
    /** `online` once in sync; `wait_bgsave`, `send_bulk` while a full copy is under way. */
    state: string;
    /** How far behind the master's replication offset it is, in bytes. */
    lagBytes: number;
    /** Seconds since its last acknowledgement (Redis sends one every second). */
    lagSeconds: number;
  }[];
}

/**
 * With a Redis Cluster: every master's replicas, and `address` lists the
 * masters (host:port, comma-separated); a slot without its master shows as
 * fewer masters, a replica gone as fewer replicas.
 */
export async function readReplication(client: RedisClient): Promise<RedisReplication> {
  if (!isCluster(client)) return readNodeReplication(client);
  const masters = await Promise.all(client.nodes('master').map(readNodeReplication));
  return {
    role: 'master',
    address: masters.map((m) => m.address).filter((a) => a !== null).join(',') || null,
    replicas: masters.flatMap((m) => m.replicas),
  };
}

async function readNodeReplication(redis: Redis): Promise<RedisReplication> {
  const fields = parseInfo(await redis.info('replication'));
  const masterOffset = Number(fields.master_repl_offset ?? 0);
  const replicas: RedisReplication['replicas'] = [];
  for (let i = 0; fields[`slave${i}`] !== undefined; i++) {
    const entry = Object.fromEntries(fields[`slave${i}`]!.split(',').map((kv) => kv.split('=') as [string, string]));
    replicas.push({
      address: `${entry.ip}:${entry.port}`,
      state: entry.state ?? '?',
      lagBytes: Math.max(0, masterOffset - Number(entry.offset ?? 0)),
      lagSeconds: Number(entry.lag ?? 0),
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
