import { Redis, Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@clinic-hub/platform/logging';
import { startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { connectQueue, expectOk, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { clinicOnMaster, startRedisCluster, type RedisClusterNodes } from '@clinic-hub/test-kit/redis-cluster';
import { QUEUE_LAYOUT, clinicKeys, upgradeQueueLayout } from '../src/queue/index.js';

/**
 * A hub upgraded mid-day keeps the queue's state written by the version
 * before 9b31bd5 (layout 1: `room:<room>` strings, `durations:<dept>` lists,
 * `ended:<id>` strings with a 25 h expiry): it converts them to the `rooms`
 * hash, the `durations` hash and the `ended` sorted set before it serves the
 * clinic, with several nodes starting at once; running it again changes nothing.
 */
const CLINIC = 'testclinic';
const keys = clinicKeys(CLINIC);
const silent = createLogger('silent', 'upgrade-test', { redact: [] });

/** The keys of one clinic as layout 1 wrote them (scripts/lib.lua at 9b31bd5^), with a called ticket in room r1. */
async function writeLayout1(redis: Redis | Cluster, prefix: string, at: number): Promise<{ calledId: string; endedIds: string[]; gp: string[]; peds: string[] }> {
  const calledId = 'T-called';
  const ticket = { id: calledId, number: 'A-001', dept: 'gp', priority: 'normal', status: 'called', room: 'r1', order: at - 60_000, recalls: 0, issuedAt: at - 60_000, calledAt: at - 30_000, startedAt: null, endedAt: null };
  await redis.hset(`${prefix}tickets`, calledId, JSON.stringify(ticket));
  await redis.set(`${prefix}room:r1`, calledId);
  // LPUSH newest first, as recordDuration did: the list reads newest → oldest.
  const gp = ['600000', '420000', '900000'];
  const peds = ['300000'];
  for (const v of [...gp].reverse()) await redis.lpush(`${prefix}durations:gp`, v);
  await redis.lpush(`${prefix}durations:peds`, peds[0]!);
  const endedIds = ['T-done-1', 'T-done-2'];
  await redis.set(`${prefix}ended:${endedIds[0]}`, String(at - 3_600_000), 'EX', 90000);
  await redis.set(`${prefix}ended:${endedIds[1]}`, String(at - 7_200_000), 'EX', 90000);
  return { calledId, endedIds, gp, peds };
}

async function layout2(redis: Redis | Cluster, prefix: string) {
  return {
    rooms: await redis.hgetall(`${prefix}rooms`),
    durations: await redis.hgetall(`${prefix}durations`),
    ended: await redis.zrange(`${prefix}ended`, 0, -1, 'WITHSCORES'),
    layout: await redis.get(`${prefix}queue:layout`),
    old: [
      await redis.exists(`${prefix}room:r1`),
      await redis.exists(`${prefix}durations:gp`, `${prefix}durations:peds`),
      await redis.exists(`${prefix}ended:T-done-1`, `${prefix}ended:T-done-2`),
    ],
  };
}

describe('upgrading a hub mid-day: the queue data of layout 1 is converted before the clinic is served', () => {
  let server: TestRedis;
  let redis: Redis;
  const hubs: HubNodeProcess[] = [];
  const sockets: QueueSocket[] = [];
  const at = Date.now();
  let written: Awaited<ReturnType<typeof writeLayout1>>;

  beforeAll(async () => {
    server = await startTestRedis();
    redis = new Redis(server.url);
    written = await writeLayout1(redis, keys.prefix, at);
  });

  afterAll(async () => {
    for (const socket of sockets.splice(0)) socket.close();
    await Promise.all(hubs.map((hub) => hub.stop()));
    redis?.disconnect();
    await server?.cleanup();
  });

  it('two nodes starting at once convert rooms, durations and ended marks, each old key once, and log what they converted', async () => {
    const env = { LOG_LEVEL: 'info' };
    hubs.push(...(await Promise.all([startHubProcess({ redisUrl: server.url, nodeId: 'up-a', env }), startHubProcess({ redisUrl: server.url, nodeId: 'up-b', env })])));
    const state = await layout2(redis, keys.prefix);
    expect(state.rooms).toEqual({ r1: written.calledId });
    expect(state.durations).toEqual({ gp: written.gp.join(','), peds: written.peds.join(',') });
    expect(state.ended).toEqual([written.endedIds[1], String(at - 7_200_000), written.endedIds[0], String(at - 3_600_000)]);
    expect(state.layout).toBe(QUEUE_LAYOUT);
    expect(state.old).toEqual([0, 0, 0]);
    // The nodes' logs: what each converted, for this clinic; together exactly the old keys.
    const lines = hubs
      .flatMap((hub) => hub.logs().split('\n'))
      .filter((line) => line.includes('queue data upgraded from layout 1'))
      .map((line) => JSON.parse(line) as { clinic: string; rooms: number; departmentsDurations: number; endedTickets: number });
    const ours = lines.filter((line) => line.clinic === CLINIC);
    expect(ours.length).toBeGreaterThanOrEqual(1);
    const sum = (field: 'rooms' | 'departmentsDurations' | 'endedTickets') => ours.reduce((total, line) => total + line[field], 0);
    expect([sum('rooms'), sum('departmentsDurations'), sum('endedTickets')]).toEqual([1, 2, 2]);
    expect(lines.filter((line) => line.clinic !== CLINIC)).toEqual([]);
  }, 120_000);

  it('serves the converted state: the called room is busy, the measured durations give the department its mean', async () => {
    const staff = await connectQueue(hubs[0]!.url, await tokenFor('staff', CLINIC));
    sockets.push(staff);
    expectOk(await request(staff, 'queue:checkin', { dept: 'gp' }));
    const busy = await request(staff, 'queue:call-next', { dept: 'gp', room: 'r1' });
    expect(busy).toMatchObject({ ok: false, error: { code: 'QUEUE_ROOM_BUSY' } });
    const sync = expectOk(await request(staff, 'queue:sync', {}));
    if (sync.mode !== 'snapshot') throw new Error(`a snapshot expected, got ${sync.mode}`);
    // (600000 + 420000 + 900000) / 3 ms = 10.7 min
    expect(sync.snapshot.deptStats.gp).toEqual({ samples: 3, avgConsultMinutes: 10.7 });
    expect(sync.snapshot.deptStats.peds).toEqual({ samples: 1, avgConsultMinutes: 5 });
  });

  it('running again (a restart, or the mark removed) changes nothing', async () => {
    const before = await layout2(redis, keys.prefix);
    const restarted = await startHubProcess({ redisUrl: server.url, nodeId: 'up-c', env: { LOG_LEVEL: 'info' } });
    hubs.push(restarted);
    expect(restarted.logs()).not.toContain('queue data upgraded');
    expect(await layout2(redis, keys.prefix)).toEqual(before);
    await redis.del(keys.layout);
    const again = await upgradeQueueLayout(redis, [CLINIC], silent);
    expect(again).toEqual([{ clinic: CLINIC, scanned: true, rooms: 0, durations: 0, ended: 0 }]);
    expect(await layout2(redis, keys.prefix)).toEqual(before);
  }, 60_000);

  it('keeps what this version wrote since: a room the hash names, newer durations first (20 kept), an ended mark already set', async () => {
    const other = clinicKeys('otherclinic');
    await redis.del(other.layout); // marked (nothing found) when the hubs started
    await redis.hset(other.rooms, 'r1', 'T-new');
    await redis.set(`${other.prefix}room:r1`, 'T-old');
    await redis.set(`${other.prefix}room:r2`, 'T-old-2');
    await redis.hset(other.durations, 'gp', '1000,2000');
    for (let i = 0; i < 25; i++) await redis.rpush(`${other.prefix}durations:gp`, String(10_000 + i));
    await redis.zadd(other.ended, 5, 'T-x');
    await redis.set(`${other.prefix}ended:T-x`, '9');
    const [result] = await upgradeQueueLayout(redis, ['otherclinic'], silent);
    expect(result).toEqual({ clinic: 'otherclinic', scanned: true, rooms: 2, durations: 1, ended: 1 });
    expect(await redis.hgetall(other.rooms)).toEqual({ r1: 'T-new', r2: 'T-old-2' });
    const gp = (await redis.hget(other.durations, 'gp'))!.split(',');
    expect(gp).toEqual(['1000', '2000', ...Array.from({ length: 18 }, (_, i) => String(10_000 + i))]);
    expect(await redis.zscore(other.ended, 'T-x')).toBe('5');
    expect(await redis.exists(`${other.prefix}room:r1`, `${other.prefix}room:r2`, `${other.prefix}durations:gp`, `${other.prefix}ended:T-x`)).toBe(0);
  });
});

describe('on a Redis Cluster: each clinic converted in its own slot, its keys found by SCAN on every master', () => {
  let cluster: RedisClusterNodes;
  let client: Cluster;

  beforeAll(async () => {
    cluster = await startRedisCluster();
  }, 120_000);

  afterAll(async () => {
    client?.disconnect();
    await cluster?.cleanup();
  });

  it('converts the clinics of two shards; a second run changes nothing', async () => {
    const masters = await cluster.masters();
    const clinics = masters.slice(1).map((master) => clinicOnMaster(master.slots, 'upgrade'));
    client = new Cluster(masters.map((master) => ({ host: '127.0.0.1', port: master.port })));
    const at = Date.now();
    for (const clinic of clinics) await writeLayout1(client, clinicKeys(clinic).prefix, at);
    const first = await upgradeQueueLayout(client, clinics, silent);
    expect(first).toEqual(clinics.map((clinic) => ({ clinic, scanned: true, rooms: 1, durations: 2, ended: 2 })));
    const states = [];
    for (const clinic of clinics) {
      const state = await layout2(client, clinicKeys(clinic).prefix);
      expect(state.rooms).toEqual({ r1: 'T-called' });
      expect(state.durations).toEqual({ gp: '600000,420000,900000', peds: '300000' });
      expect(state.ended).toHaveLength(4);
      expect(state.old).toEqual([0, 0, 0]);
      states.push(state);
      await client.del(clinicKeys(clinic).layout);
    }
    const second = await upgradeQueueLayout(client, clinics, silent);
    expect(second).toEqual(clinics.map((clinic) => ({ clinic, scanned: true, rooms: 0, durations: 0, ended: 0 })));
    for (const [i, clinic] of clinics.entries()) expect(await layout2(client, clinicKeys(clinic).prefix)).toEqual({ ...states[i], layout: QUEUE_LAYOUT });
  }, 60_000);
});
