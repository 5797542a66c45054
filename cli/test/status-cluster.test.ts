/**
 * `clinic status` on a real Redis Cluster (3 masters, 3 replicas: test-kit
 * startRedisCluster) through a hub node on it: Redis shard by shard (master,
 * slots, replicas in sync), and a warning for a shard whose replica is
 * stalled (SIGSTOP), then cut off by its master, until it is back; through
 * a failover, every answering master's replicas known.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RedisShardStatus } from '@clinic-hub/protocol';
import { startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { startRedisCluster, type ClusterMaster, type RedisClusterNodes } from '@clinic-hub/test-kit/redis-cluster';
import { cleanEnv, runCli } from '@clinic-hub/test-kit/run-cli';
import { waitFor } from '@clinic-hub/test-kit/wait';

interface StatusRedis {
  up: boolean;
  mode: string;
  shards: RedisShardStatus[];
  warnings: string[];
}

describe('clinic status on a Redis Cluster', () => {
  let cluster: RedisClusterNodes;
  let hub: HubNodeProcess;
  let env: NodeJS.ProcessEnv;
  let masters: ClusterMaster[];

  const statusRedis = async () => {
    const run = await runCli(['status', '--json'], { env });
    expect(run.code, run.stderr).toBe(0);
    return run.json<{ redis: StatusRedis }>().redis;
  };
  const port = (address: string) => Number(address.split(':')[1]);
  const shardOf = (redis: StatusRedis, master: ClusterMaster) => redis.shards.find((s) => port(s.master) === master.port);

  beforeAll(async () => {
    cluster = await startRedisCluster();
    hub = await startHubProcess({ redisEnv: cluster.env, nodeId: 'status-cluster' });
    env = cleanEnv({ CLINIC_URL: hub.url, CLINIC_TOKEN: await tokenFor('admin', '*') });
    masters = (await cluster.masters()).sort((a, b) => a.slots[0]![0] - b.slots[0]![0]);
  }, 120_000);

  afterAll(async () => {
    for (const node of cluster?.processes() ?? []) node.process.kill('SIGCONT');
    await hub?.stop();
    await cluster?.cleanup();
  });

  it('shows each shard: its master, the slots it serves and its replica in sync; no warning', { timeout: 60_000 }, async () => {
    const redis = await statusRedis();
    expect(redis).toMatchObject({ up: true, mode: 'cluster', warnings: [] });
    expect(redis.shards.map((s) => port(s.master))).toEqual(masters.map((m) => m.port));
    for (const master of masters) {
      const shard = shardOf(redis, master)!;
      expect(shard).toMatchObject({ masterUp: true, slots: master.slots, slotCount: master.slots.reduce((n, [a, b]) => n + b - a + 1, 0) });
      expect(shard.replicas).toEqual([expect.objectContaining({ address: `127.0.0.1:${master.replicaPorts[0]}`, state: 'online', inSync: true })]);
    }
    expect(redis.shards.reduce((n, s) => n + s.slotCount, 0)).toBe(16384);

    const text = await runCli(['status'], { env: { ...env, NO_COLOR: '1' } });
    expect(text.stdout).toMatch(/Redis: up · .* · cluster · 3 shards · 3\/3 with a replica in sync · 16384\/16384 slots served\n/);
    for (const master of masters) {
      const [first, last] = master.slots[0]!;
      expect(text.stdout).toMatch(new RegExp(`127\\.0\\.0\\.1:${master.port}\\s+${first}-${last} \\(\\d+\\)\\s+127\\.0\\.0\\.1:${master.replicaPorts[0]}\\s+online\\s+yes`));
    }
    expect(text.stdout).not.toContain('warning');

    const health = (await (await fetch(`${hub.url}/healthz`)).json()) as { redisShards: RedisShardStatus[]; redisWarnings: string[] };
    expect(health.redisShards.map((s) => port(s.master))).toEqual(masters.map((m) => m.port));
    expect(health.redisWarnings).toEqual([]);
  });

  it('warns about a shard whose replica is stalled, then cut off by its master, until it is back in sync', { timeout: 120_000 }, async () => {
    const master = masters[1]!;
    const replica = cluster.processes().find((p) => p.port === master.replicaPorts[0])!;
    const warning = `shard 127.0.0.1:${master.port} (slots ${master.slots.map(([a, b]) => `${a}-${b}`).join(',')}): no replica in sync; with HUB_REDIS_ACK_REPLICAS=1 its clinics' actions answer STORE_UNAVAILABLE`;
    const masterConnection = new Redis(master.port, '127.0.0.1', { lazyConnect: true });
    await masterConnection.connect();
    try {
      replica.process.kill('SIGSTOP');
      // Its master still lists it online, but it has stopped acknowledging.
      const stalled = await waitFor('the stalled replica out of sync', async () => {
        const redis = await statusRedis();
        return shardOf(redis, master)!.replicas[0]!.inSync ? false : redis;
      }, 30_000);
      expect(shardOf(stalled, master)!.replicas).toEqual([expect.objectContaining({ address: `127.0.0.1:${replica.port}`, inSync: false })]);
      expect(stalled.warnings).toEqual([warning]);
      for (const other of masters.filter((m) => m !== master)) expect(shardOf(stalled, other)!.replicas[0]!.inSync).toBe(true);
      const text = await runCli(['status'], { env: { ...env, NO_COLOR: '1' } });
      expect(text.stdout).toContain('cluster · 3 shards · 2/3 with a replica in sync · 16384/16384 slots served');
      expect(text.stdout).toContain(`warning: ${warning}`);

      // Its master drops it after repl-timeout (60 s by default; 3 s here): the cluster still knows it, disconnected.
      await masterConnection.config('SET', 'repl-timeout', '3');
      const cutOff = await waitFor('the replica disconnected from its master', async () => {
        const redis = await statusRedis();
        return shardOf(redis, master)!.replicas[0]!.state === 'disconnected' ? redis : false;
      }, 30_000);
      expect(shardOf(cutOff, master)!.replicas).toEqual([{ address: `127.0.0.1:${replica.port}`, state: 'disconnected', lagBytes: expect.any(Number), lagSeconds: null, inSync: false }]);
      expect(cutOff.warnings).toEqual([warning]);
    } finally {
      replica.process.kill('SIGCONT');
      await masterConnection.config('SET', 'repl-timeout', '60').catch(() => undefined);
      masterConnection.disconnect();
    }
    const back = await waitFor('the replica back in sync', async () => {
      const redis = await statusRedis();
      return redis.shards.every((s) => s.replicas.every((r) => r.inSync)) ? redis : false;
    }, 60_000);
    expect(back.warnings).toEqual([]);
  });

  it('through a failover, a master that does not answer is down and every other master\'s replicas are known', { timeout: 180_000 }, async () => {
    const master = masters[2]!;
    // The hub's long-lived client, asked over and over while the master is killed and its replica takes over.
    const seen: string[] = [];
    let down = 0;
    let asking = true;
    const asked = (async () => {
      while (asking) {
        const health = (await (await fetch(`${hub.url}/healthz`)).json().catch(() => null)) as { redisShards?: RedisShardStatus[] } | null;
        for (const shard of health?.redisShards ?? []) {
          if (shard.masterUp && shard.replicas.some((r) => r.state === 'unknown')) seen.push(`${shard.master}: ${JSON.stringify(shard.replicas)}`);
          if (!shard.masterUp && port(shard.master) === master.port) down++;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const { promoted } = await cluster.killMaster(master.port);
    // Right after: the shard's new master and its replica (the restarted node).
    const after = (await (await fetch(`${hub.url}/healthz`)).json()) as { redisShards: RedisShardStatus[] };
    asking = false;
    await asked;
    expect(seen).toEqual([]);
    // The killed master was seen down (before the cluster failed it, and after).
    expect(down).toBeGreaterThan(0);
    const shard = after.redisShards.find((s) => port(s.master) === promoted)!;
    expect(shard.replicas).toEqual([expect.objectContaining({ address: `127.0.0.1:${master.port}`, state: 'online' })]);
  });
});
