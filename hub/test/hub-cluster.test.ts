import { readFileSync, writeFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hashSlot } from '@clinic-hub/platform/redis';
import { TEST_CLINICS_DIR, startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { connectQueue, expectOk, followQueue, recordArrivals, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import { clinicOnMaster, startRedisCluster, type RedisClusterNodes } from '@clinic-hub/test-kit/redis-cluster';
import { tempDir } from '@clinic-hub/test-kit/tmp';
import { sleep, waitFor } from '@clinic-hub/test-kit/wait';

/** After the last expected delivery, how long to keep listening for a duplicate. */
const SETTLE_MS = 400;

/**
 * Two hub nodes (two processes) on a real Redis Cluster of 3 masters and 3
 * replicas (REDIS_CLUSTER_NODES), with one clinic on each shard: a display
 * on either node gets every event of its clinic exactly once, whichever node
 * made the change, and nothing of another clinic; an announcement goes
 * through Socket.IO's sharded adapter.
 */
describe('two hub nodes on a Redis Cluster', () => {
  const clinicsDir = tempDir('clinic-hub-cluster-clinics-');
  let cluster: RedisClusterNodes;
  let clinics: string[];
  let nodeA: HubNodeProcess;
  let nodeB: HubNodeProcess;
  const sockets: QueueSocket[] = [];

  async function open(url: string, role: Parameters<typeof tokenFor>[0], clinic: string): Promise<QueueSocket> {
    const socket = await connectQueue(url, await tokenFor(role, clinic));
    sockets.push(socket);
    return socket;
  }

  beforeAll(async () => {
    cluster = await startRedisCluster();
    clinics = (await cluster.masters()).map((master) => clinicOnMaster(master.slots));
    const base = JSON.parse(readFileSync(join(TEST_CLINICS_DIR, 'testclinic.json'), 'utf8')) as Record<string, unknown>;
    for (const id of clinics) writeFileSync(join(clinicsDir.dir, `${id}.json`), JSON.stringify({ ...base, id }));
    const env = { CLINICS_DIR: clinicsDir.dir };
    [nodeA, nodeB] = await Promise.all([
      startHubProcess({ redisEnv: cluster.env, nodeId: 'node-a', env }),
      startHubProcess({ redisEnv: cluster.env, nodeId: 'node-b', env }),
    ]);
  }, 150_000);

  afterEach(() => {
    for (const socket of sockets.splice(0)) socket.close();
  });

  afterAll(async () => {
    for (const socket of sockets.splice(0)) socket.close();
    await Promise.all([nodeA?.stop(), nodeB?.stop()]);
    await cluster?.cleanup();
    clinicsDir.cleanup();
  });

  it('say they run on the cluster, with every master and its replica', async () => {
    for (const node of [nodeA, nodeB]) {
      const health = (await (await fetch(`${node.url}/healthz`)).json()) as { redis: string; redisMode: string; redisMaster: string; redisReplicas: unknown[] };
      expect(health).toMatchObject({ redis: 'up', redisMode: 'cluster' });
      expect(health.redisMaster.split(',')).toHaveLength(3);
      expect(health.redisReplicas).toHaveLength(3);
    }
    expect(new Set(await Promise.all(clinics.map(async (c) => (await cluster.masterOfSlot(hashSlot(`{${c}}`))).port))).size).toBe(3);
  });

  it('follow each clinic\'s live and chat channels at the shard that owns the clinic, and only there (SSUBSCRIBE)', async () => {
    for (const clinic of clinics) {
      const owner = await cluster.masterOfSlot(hashSlot(`{${clinic}}`));
      for (const { port } of await cluster.masters()) {
        const node = new Redis({ host: '127.0.0.1', port });
        const [, live, , chat] = (await node.call('PUBSUB', 'SHARDNUMSUB', `ch:{${clinic}}:live`, `ch:{${clinic}}:chat`)) as [string, number, string, number];
        node.disconnect();
        // Each node's queue fan-out and consultation relay follow the live channel, its chat fan-out the chat channel.
        expect({ port, live, chat }).toEqual(port === owner.port ? { port, live: 4, chat: 2 } : { port, live: 0, chat: 0 });
      }
    }
  });

  it('delivers every event of clinics on three shards to displays on both nodes, exactly once each, and nothing of another clinic', async () => {
    const displays = await Promise.all(clinics.flatMap((clinic) => [open(nodeA.url, 'display', clinic), open(nodeB.url, 'display', clinic)]));
    const followers = displays.map((d) => followQueue(d));
    const arrivals = displays.map((d) => recordArrivals(d));
    await Promise.all(followers.map((f) => f.resync()));

    const lastSeq = new Map<string, number>();
    const expected = new Map<string, number[]>();
    for (const [i, clinic] of clinics.entries()) {
      // Changes made through both nodes, alternating.
      const staffA = await open(nodeA.url, 'staff', clinic);
      const staffB = await open(nodeB.url, 'staff', clinic);
      const first = expectOk(await request(i % 2 ? staffB : staffA, 'queue:checkin', { dept: 'gp' }));
      const second = expectOk(await request(i % 2 ? staffA : staffB, 'queue:checkin', { dept: 'peds' }));
      const called = expectOk(await request(staffB, 'queue:call-next', { dept: 'gp', room: 'r1' }));
      const done = expectOk(await request(staffA, 'queue:done', { ticketId: called.event.ticket.id }));
      expected.set(clinic, [first.event.seq, second.event.seq, called.event.seq, done.event.seq]);
      lastSeq.set(clinic, done.event.seq);
    }
    for (const [i, follower] of followers.entries()) {
      const clinic = clinics[Math.floor(i / 2)]!;
      await waitFor(`display ${i} of ${clinic} to reach its last event`, () => follower.seq === lastSeq.get(clinic));
    }
    await sleep(SETTLE_MS);
    for (const [i, got] of arrivals.entries()) {
      const clinic = clinics[Math.floor(i / 2)]!;
      const seqs = got.events.map((e) => e.seq);
      expect(seqs, `display ${i} (${clinic}, node ${i % 2 ? 'B' : 'A'})`).toEqual(expected.get(clinic));
      expect(followers[i]!.applied).toEqual(seqs);
      expect(got.errors).toEqual([]);
    }
  });

  it('delivers an announcement made on node A to the clinic\'s displays on both nodes once (the sharded Socket.IO adapter)', async () => {
    const [clinic, other] = clinics;
    const displayA = await open(nodeA.url, 'display', clinic!);
    const displayB = await open(nodeB.url, 'display', clinic!);
    const otherB = await open(nodeB.url, 'display', other!);
    const arrivals = [displayA, displayB, otherB].map((s) => recordArrivals(s));
    const staff = await open(nodeA.url, 'staff', clinic!);
    const ack = expectOk(await request(staff, 'queue:announce', { text: { ja: '本日は混雑しています', en: 'It is busy today' }, durationSeconds: 30 }));
    for (const got of arrivals.slice(0, 2)) await waitFor('the announcement', () => got.announcements.length > 0);
    await sleep(SETTLE_MS);
    for (const got of arrivals.slice(0, 2)) expect(got.announcements).toEqual([ack.announcement]);
    expect(arrivals[2]!.announcements).toEqual([]);
  });
});
