import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Queue, Worker } from 'bullmq';
import { Redis, type Cluster } from 'ioredis';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JOB_QUEUE_PREFIX, NOTIFY_QUEUE_NAME, NOTIFY_QUEUE_PREFIX, WATCHED_JOB_QUEUES, WEBHOOK_QUEUE_PREFIX, clinicChannel } from '@clinic-hub/protocol';
import { clinicOnMaster, startRedisCluster, type RedisClusterNodes } from '@clinic-hub/test-kit/redis-cluster';
import { tempDir } from '@clinic-hub/test-kit/tmp';
import { ReplicaAck, SLOT_MAP_CHECK_MS, connectRedisCluster, connectionOfKey, hashSlot, onClinicMessages, subscribeClinicChannels, type ClusterTarget } from '../src/redis/connect.js';
import { defineScripts, evalScript, loadScript } from '../src/redis/lua-scripts.js';

/**
 * A real Redis Cluster (3 masters, 3 replicas) started by the test: the
 * hash slot computed here is the cluster's own, scripts run atomically on
 * whichever shard owns their clinic, a replica wait is per shard, and the
 * BullMQ queues run on it with their hash-tagged prefixes.
 */
describe('Redis Cluster: slots, scripts, replica waits and job queues', () => {
  const folder = tempDir('clinic-cluster-lua-');
  const scriptsUrl = pathToFileURL(`${folder.dir}/`);
  let cluster: RedisClusterNodes;
  let client: Cluster;
  /** One clinic id per master, so each test touches all three shards. */
  let clinics: string[];

  beforeAll(async () => {
    // Counts calls per clinic and publishes on its channel: a stand-in for a queue script (three keys, one clinic).
    writeFileSync(
      join(folder.dir, 'count-3.lua'),
      'local n = redis.call("INCR", KEYS[1])\nredis.call("HSET", KEYS[2], "n", n)\nredis.call("XADD", KEYS[3], n .. "-0", "n", n)\nreturn n\n',
    );
    cluster = await startRedisCluster();
    client = connectRedisCluster(cluster.target as ClusterTarget, 'test:cluster');
    const masters = await cluster.masters();
    clinics = masters.map((master) => clinicOnMaster(master.slots));
  }, 120_000);

  afterAll(async () => {
    client?.disconnect();
    await cluster?.cleanup();
    folder.cleanup();
  });

  it('computes the hash slot the cluster computes (CLUSTER KEYSLOT), hash tags included', async () => {
    const keys = [
      'foo', 'ch:{c1}:seq', 'ch:{c1}:tickets', '{}', 'a{}b', '{a}{b}', 'a{b', 'a}b{c}', '{{x}}', 'ç{日本}', '日本語のキー', '',
      ...Array.from({ length: 200 }, (_, i) => `ch:{clinic-${i}}:live`), ...Array.from({ length: 200 }, (_, i) => `k${i * 7919}`),
    ];
    const node = new Redis({ host: '127.0.0.1', port: cluster.nodes[0]!.port });
    try {
      for (const key of keys) expect(hashSlot(key), key).toBe(Number(await node.cluster('KEYSLOT', key)));
    } finally {
      node.disconnect();
    }
  });

  it('runs a clinic\'s script on the shard that owns the clinic, and refuses keys of two slots before any Redis sees them', async () => {
    const scripts = defineScripts(client, scriptsUrl, 'clusterTest', ['count']);
    for (const clinic of clinics) {
      const keys = [`ch:{${clinic}}:seq`, `ch:{${clinic}}:tickets`, `ch:{${clinic}}:events`];
      expect(await scripts.count<number>(keys)).toBe(1);
      expect(await scripts.count<number>(keys)).toBe(2);
      // The keys are on the master that serves the clinic's slot, and only there.
      const slot = hashSlot(keys[0]!);
      const owner = await cluster.masterOfSlot(slot);
      for (const { port } of await cluster.masters()) {
        const direct = new Redis({ host: '127.0.0.1', port });
        expect(await direct.cluster('COUNTKEYSINSLOT', slot), `clinic ${clinic} on ${port}`).toBe(port === owner.port ? 3 : 0);
        direct.disconnect();
      }
    }
    const [a, b] = clinics;
    await expect(scripts.count([`ch:{${a}}:seq`, `ch:{${b}}:tickets`, `ch:{${a}}:events`])).rejects.toMatchObject({ code: 'REDIS_KEYS_CROSS_SLOT' });
    await expect(evalScript(client, loadScript(scriptsUrl, 'count'), [`ch:{${a}}:seq`, `ch:{${a}}:tickets`, `ch:{${b}}:events`])).rejects.toThrow(/REDIS_KEYS_CROSS_SLOT/);
    // Neither refused call wrote anything: the counts stand where the two calls above left them.
    expect(await client.get(`ch:{${a}}:seq`)).toBe('2');
    expect(await client.get(`ch:{${b}}:seq`)).toBe('2');
  });

  it('waits for the replica of the shard that took the change, per shard', async () => {
    const writes = connectRedisCluster(cluster.target as ClusterTarget, 'test:cluster-acks');
    const outcomes: { confirmed: boolean; replicas: number }[] = [];
    const ack = new ReplicaAck(writes, { replicas: 1, timeoutMs: 5000 }, (outcome) => outcomes.push(outcome));
    const scripts = defineScripts(writes, scriptsUrl, 'clusterAck', ['count']);
    try {
      for (const clinic of clinics) {
        const keys = [`ch:{${clinic}}:ack-seq`, `ch:{${clinic}}:ack-tickets`, `ch:{${clinic}}:ack-events`];
        const ranOn = await ack.shardOf(keys[0]!);
        const n = await scripts.count<number>(keys);
        expect(await ack.confirm({ key: keys[0]!, ranOn })).toBe(true);
        // Confirmed means the shard's replica holds it now: read it there.
        const owner = await cluster.masterOfSlot(hashSlot(keys[0]!));
        expect(owner.replicaPorts).toHaveLength(1);
        const replica = new Redis({ host: '127.0.0.1', port: owner.replicaPorts[0]! });
        await replica.call('READONLY');
        expect(await replica.get(keys[0]!)).toBe(String(n));
        replica.disconnect();
        // A replay writes its fence on the same shard before waiting.
        expect(await ack.confirm({ key: keys[0]!, ranOn, fenceKey: `ch:{${clinic}}:ack-fence` })).toBe(true);
        expect(await client.get(`ch:{${clinic}}:ack-fence`)).toBe('1');
      }
      expect(outcomes.every((o) => o.confirmed && o.replicas >= 1)).toBe(true);
      // The change went through another shard's connection than the one that owns the key now: not confirmed.
      const elsewhere = connectionOfKey(writes, `ch:{${clinics[1]}}:x`);
      expect(await ack.confirm({ key: `ch:{${clinics[0]}}:x`, ranOn: elsewhere })).toBe(false);
      await expect(ack.confirm({})).rejects.toThrow(/needs the key of the change/);
    } finally {
      writes.disconnect();
    }
  });

  it('keeps every BullMQ queue in one slot by its hash-tagged prefix, and runs a queue on the cluster', async () => {
    const queues = [...WATCHED_JOB_QUEUES, { name: 'webhooks', prefix: WEBHOOK_QUEUE_PREFIX }];
    for (const { name, prefix } of queues) {
      expect(prefix, name).toMatch(/\{[^}]+\}/);
      const slots = new Set(['wait', 'active', 'meta', 'id', 'events', 'stalled-check', 'delayed', '1', 'completed'].map((kind) => hashSlot(`${prefix}:${name}:${kind}`)));
      expect(slots.size, `${prefix}:${name}`).toBe(1);
    }
    expect(JOB_QUEUE_PREFIX).toBe('ch:{consult-jobs}');

    const target = cluster.target as ClusterTarget;
    const connections = [connectRedisCluster(target, 'test:bull-queue', { maxRetriesPerRequest: null }), connectRedisCluster(target, 'test:bull-worker', { maxRetriesPerRequest: null })];
    const queue = new Queue(NOTIFY_QUEUE_NAME, { connection: connections[0]!, prefix: NOTIFY_QUEUE_PREFIX });
    const ran: string[] = [];
    const worker = new Worker(NOTIFY_QUEUE_NAME, async (job) => void ran.push(job.id!), { connection: connections[1]!, prefix: NOTIFY_QUEUE_PREFIX });
    try {
      const finished = new Promise<void>((resolve) => worker.on('completed', () => ran.length === 5 && resolve()));
      for (let i = 0; i < 5; i++) await queue.add('notice', { i }, { jobId: `job-${i}` });
      await queue.add('notice', { i: 0 }, { jobId: 'job-0' }); // the same job id again: not a second job
      await finished;
      expect(ran.sort()).toEqual(['job-0', 'job-1', 'job-2', 'job-3', 'job-4']);
      expect(await queue.getJobCounts('completed')).toEqual({ completed: 5 });
    } finally {
      await worker.close();
      await queue.close();
      for (const connection of connections) connection.disconnect();
    }
  });

  it('names clinic channels inside the clinic\'s slot', () => {
    for (const clinic of clinics) expect(hashSlot(clinicChannel(clinic, 'live'))).toBe(hashSlot(`ch:{${clinic}}:seq`));
  });

  /**
   * ioredis would re-read the slot map of every connection on a timer, each
   * time over a new TCP connection and walking all 16,384 slots: with the
   * dozen and more connections of a hub node, all at once every 5 s, tens to
   * hundreds of ms of stalled event loop (slot-map-watch.ts). The process reads the map once per
   * SLOT_MAP_CHECK_MS instead, however many connections it has.
   */
  it('reads the slot map once per check for the whole process, not once per connection', async () => {
    const target = cluster.target as ClusterTarget;
    const connections = [
      ...['a', 'b', 'c', 'd'].map((n) => connectRedisCluster(target, `test:map-${n}`)),
      ...['e', 'f'].map((n) => connectRedisCluster(target, `test:map-${n}`, { shardedSubscriber: true })),
    ];
    try {
      await Promise.all(connections.slice(0, 4).map((c) => c.ping()));
      await Promise.all(connections.slice(4).map((c) => subscribeClinicChannels(c, 'map', clinics)));
      const nodes = cluster.processes().map((p) => new Redis({ host: '127.0.0.1', port: p.port }));
      const slotReads = async () => {
        let reads = 0;
        for (const node of nodes) reads += Number(/^cmdstat_cluster\|slots:calls=(\d+)/m.exec(await node.info('commandstats'))?.[1] ?? 0);
        return reads;
      };
      const before = await slotReads();
      await sleep(2 * SLOT_MAP_CHECK_MS + 1000);
      const reads = (await slotReads()) - before;
      for (const node of nodes) node.disconnect();
      // Two checks in that time (one more if a timer fell due at either edge); seven connections re-reading each would be 14 or more.
      expect(reads).toBeGreaterThanOrEqual(1);
      expect(reads).toBeLessThanOrEqual(3);
    } finally {
      for (const connection of connections) connection.disconnect();
    }
  }, 60_000);

  it('follows a sharded subscription to the master its slot moved to (redis-cli --cluster reshard), which no redirection announces', async () => {
    const target = cluster.target as ClusterTarget;
    // Slots 0–19: the ones `reshard … --cluster-slots 20` moves off the master that holds them.
    const moving = clinicOnMaster([[0, 19]], 'moving');
    const subscriber = connectRedisCluster(target, 'test:moving-sub', { shardedSubscriber: true });
    const received: string[] = [];
    onClinicMessages(subscriber, 'live', (clinic, message) => clinic === moving && received.push(message));
    try {
      await subscribeClinicChannels(subscriber, 'live', [moving]);
      const publishUntilHeard = async (message: string, withinMs: number) => {
        const until = Date.now() + withinMs;
        while (!received.includes(message) && Date.now() < until) {
          await client.spublish(clinicChannel(moving, 'live'), message);
          await sleep(200);
        }
        return received.includes(message);
      };
      expect(await publishUntilHeard('before', 5000)).toBe(true);
      const slot = hashSlot(clinicChannel(moving, 'live'));
      const from = await cluster.masterOfSlot(slot);
      const to = (await cluster.masters()).find((m) => m.port !== from.port)!;
      await cluster.reshard(from.port, to.port, 20);
      expect((await cluster.masterOfSlot(slot)).port).toBe(to.port);
      // Redis dropped the subscription when the slot left its master; it is made again at the new one within a check.
      expect(await publishUntilHeard('after', 3 * SLOT_MAP_CHECK_MS)).toBe(true);
    } finally {
      subscriber.disconnect();
    }
  }, 180_000);
});
