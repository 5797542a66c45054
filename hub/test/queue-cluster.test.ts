import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Cluster } from 'ioredis';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClinicConfig, type Ack, type ActionResult, type QueueEvent } from '@clinic-hub/protocol';
import { ReplicaAck, connectRedisCluster, hashSlot, type ClusterTarget } from '@clinic-hub/platform/redis';
import { TEST_CLINICS_DIR } from '@clinic-hub/test-kit/hub-node';
import { clinicOnMaster, clusterLagSkipReason, startRedisCluster, type RedisClusterNodes } from '@clinic-hub/test-kit/redis-cluster';
import { ClinicRegistry } from '../src/clinics/clinic-registry.js';
import { QueueService, clinicKeys, rebuildQueue } from '../src/queue/index.js';

/**
 * The waiting room on a real Redis Cluster of 3 masters and 3 replicas,
 * started by the test: clinics spread over the three shards, each clinic's
 * scripts atomic on its own shard, every change acknowledged only once its
 * shard's replica has it (HUB_REDIS_ACK_REPLICAS=1). Then the two events a
 * cluster lives through: a master killed (SIGKILL, its replica lagging) and
 * its replica promoted, and a slot migration (`redis-cli --cluster reshard`)
 * while clinics act. After each, every acknowledged check-in is there
 * exactly once.
 */
describe('the queue on a Redis Cluster', () => {
  let cluster: RedisClusterNodes;
  let commands: Cluster;
  let writes: Cluster;
  let queue: QueueService;
  /** One clinic per master. */
  let clinics: string[];
  /**
   * A clinic in slots 0–19: the lowest slots of whichever master holds them,
   * which are the ones `redis-cli --cluster reshard --cluster-slots 20` moves.
   */
  let migrating: string;

  beforeAll(async () => {
    cluster = await startRedisCluster();
    const masters = await cluster.masters();
    clinics = masters.map((master) => clinicOnMaster(master.slots));
    migrating = clinicOnMaster([[0, 19]], 'moving');
    const base = JSON.parse(readFileSync(join(TEST_CLINICS_DIR, 'testclinic.json'), 'utf8')) as Record<string, unknown>;
    const registry = new ClinicRegistry([...clinics, migrating].map((id) => ClinicConfig.parse({ ...base, id })));
    const target = cluster.target as ClusterTarget;
    commands = connectRedisCluster(target, 'test:cmd', { commandTimeout: 5000 });
    writes = connectRedisCluster(target, 'test:queue-writes', { commandTimeout: 5000 });
    for (const connection of [commands, writes]) connection.on('error', () => undefined);
    queue = new QueueService(commands, registry, { ack: new ReplicaAck(writes, { replicas: 1, timeoutMs: 2000 }) });
  }, 120_000);

  afterAll(async () => {
    commands?.disconnect();
    writes?.disconnect();
    await cluster?.cleanup();
  });

  it('runs every queue action of clinics on three shards, each clinic on its own master', async () => {
    expect(new Set(await Promise.all(clinics.map(async (c) => (await cluster.masterOfSlot(hashSlot(clinicKeys(c).seq))).port))).size).toBe(3);
    for (const clinic of clinics) {
      const a = ok(await queue.checkin(clinic, { dept: 'gp', priority: 'normal', requestId: `${clinic}-a` }));
      const b = ok(await queue.checkin(clinic, { dept: 'gp', priority: 'normal', requestId: `${clinic}-b` }));
      const c = ok(await queue.checkin(clinic, { dept: 'gp', priority: 'urgent', requestId: `${clinic}-c` }));
      const called = ok(await queue.callNext(clinic, { dept: 'gp', room: 'r1', requestId: `${clinic}-call` }));
      expect(called.ticket.id).toBe(c.ticket.id);
      ok(await queue.recall(clinic, { ticketId: c.ticket.id, requestId: `${clinic}-recall` }));
      ok(await queue.start(clinic, { ticketId: c.ticket.id, requestId: `${clinic}-start` }));
      ok(await queue.done(clinic, { ticketId: c.ticket.id, requestId: `${clinic}-done` }));
      ok(await queue.callTicket(clinic, { ticketId: b.ticket.id, dept: 'gp', room: 'r2', requestId: `${clinic}-call-b` }));
      ok(await queue.skip(clinic, { ticketId: b.ticket.id, requestId: `${clinic}-skip` }));
      ok(await queue.cancel(clinic, { ticketId: a.ticket.id, requestId: `${clinic}-cancel` }));
      // A retried action is the same change, replayed (and fenced for the replica wait), not a second one.
      const again = await queue.checkin(clinic, { dept: 'gp', priority: 'normal', requestId: `${clinic}-a` });
      expect(again).toMatchObject({ ok: true, replayed: true, event: { seq: a.seq, ticket: { id: a.ticket.id } } });

      expect(await queue.lastSeq(clinic)).toBe(10);
      expect((await queue.eventsAfter(clinic, 0)).map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      const snapshot = await queue.snapshot(clinic);
      if (!snapshot.ok) throw new Error(snapshot.error.code);
      expect(snapshot.snapshot.seq).toBe(10);
      // The clinic's keys are on the master that owns its slot, and on no other.
      const slot = hashSlot(clinicKeys(clinic).seq);
      const owner = await cluster.masterOfSlot(slot);
      for (const { port } of await cluster.masters()) {
        const node = new Redis({ host: '127.0.0.1', port });
        const here = await node.cluster('COUNTKEYSINSLOT', slot);
        node.disconnect();
        if (port === owner.port) expect(here, `${clinic} on its master ${port}`).toBeGreaterThanOrEqual(3);
        else expect(here, `${clinic} on ${port}`).toBe(0);
      }
    }
  });

  it('loses nothing acknowledged when a master is killed (SIGKILL) mid-stream, its replica behind, and the replica takes over', async () => {
    const victim = await cluster.masterOfSlot(hashSlot(clinicKeys(clinics[0]!).seq));
    const stream = clinics.map((clinic) => checkinStream(queue, clinic, 'kill', 40));
    await untilAcknowledged(stream, 10);
    // The replica 800 ms behind when the master dies: the failover loses what the master did meanwhile, so only the
    // replica wait keeps an acknowledged check-in (a SIGKILL alone loses nothing on loopback).
    const lagSkip = clusterLagSkipReason();
    if (lagSkip) console.warn(`queue-cluster: the master is killed without its replica lagging (${lagSkip}): nothing is lost either way, so this run does not show the replica wait at work`);
    const failover = await cluster.killMaster(victim.port, lagSkip ? {} : { lagMs: 800 });
    const results = await Promise.all(stream.map((s) => s.done));
    expect(failover.promoted).not.toBe(victim.port);
    for (const [i, clinic] of clinics.entries()) {
      await expectExactlyOnce(queue, clinic, results[i]!);
    }
    // The clinic of the killed master is served by its former replica now.
    expect((await cluster.masterOfSlot(hashSlot(clinicKeys(clinics[0]!).seq))).port).toBe(failover.promoted);
  }, 180_000);

  it('moves a clinic\'s slot to another master (redis-cli --cluster reshard) while the other clinics act, losing nothing', async () => {
    const slot = hashSlot(clinicKeys(migrating).seq);
    // After the failover above this client's slot map may be stale: a change is then not confirmed (STORE_UNAVAILABLE) until retried.
    await checkinStream(queue, migrating, 'before-move', 5).done;
    const from = await cluster.masterOfSlot(slot);
    const to = (await cluster.masters()).find((m) => m.port !== from.port)!;
    const stream = clinics.map((clinic) => checkinStream(queue, clinic, 'move', 30));
    await untilAcknowledged(stream, 5);
    await cluster.reshard(from.port, to.port, 20);
    const results = await Promise.all(stream.map((s) => s.done));
    expect((await cluster.masterOfSlot(slot)).port).toBe(to.port);
    for (const [i, clinic] of clinics.entries()) await expectExactlyOnce(queue, clinic, results[i]!);
    // The moved clinic goes on where it was, on its new master.
    const next = await checkinStream(queue, migrating, 'after-move', 1).done;
    expect(next.acknowledged.map((a) => a.seq)).toEqual([6]);
    expect((await queue.eventsAfter(migrating, 0)).map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6]);
  }, 180_000);

  /**
   * Every key a queue script touches is one of its KEYS (platform
   * lua-scripts.ts checks it), so while the slot migrates the cluster routes
   * each script by all of them: it runs where every key is, or is refused
   * (ASK, then TRYAGAIN while the keys are split between the two nodes, or
   * while a key it names does not exist yet on either) before it changes
   * anything; the client retries with the same requestId.
   */
  it('loses nothing acknowledged while the slot of a clinic that is acting migrates', async () => {
    const slot = hashSlot(clinicKeys(migrating).seq);
    // Many keys in the slot, so that its migration lasts long enough to meet the clinic's changes.
    const fill = commands.pipeline();
    for (let i = 0; i < 3000; i++) fill.set(`ch:{${migrating}}:fill:${i}`, 'x');
    await fill.exec();
    const from = await cluster.masterOfSlot(slot);
    const to = (await cluster.masters()).find((m) => m.port !== from.port)!;
    const baseSeq = await queue.lastSeq(migrating);
    const work = workingStream(queue, migrating, `live-move-${Date.now()}`);
    await untilAcknowledged([work], 5);
    const moving = { from: Date.now(), to: 0 };
    await cluster.reshard(from.port, to.port, 20);
    moving.to = Date.now();
    // A few more changes on the new master, then stop.
    const afterMove = work.acknowledged.length;
    await untilAcknowledged([work], afterMove + 5);
    const result = await work.stop();
    expect((await cluster.masterOfSlot(slot)).port).toBe(to.port);
    // The clinic was acting while its slot moved: answers (acknowledgements or refusals) came in the meantime.
    expect(result.answeredAt.filter((at) => at >= moving.from && at <= moving.to).length, 'answers during the migration').toBeGreaterThan(0);
    console.info(`live slot move: ${result.acknowledged.length} changes acknowledged, ${result.unavailable} STORE_UNAVAILABLE answers retried, reshard ${moving.to - moving.from} ms`);
    await expectQueueAsItsEvents(queue, commands, migrating, baseSeq, result.acknowledged);
  }, 180_000);
});

function ok(result: Ack<ActionResult>): QueueEvent {
  if (!result.ok) throw new Error(`expected ok, got ${result.error.code}`);
  return result.event;
}

interface Acknowledged {
  requestId: string;
  ticketId: string;
  seq: number;
  type?: string;
}

/**
 * A clinic at work until stopped, as a desk works it: check-ins, and in turn
 * a call to a room then its end (done), a call then a skip, a cancel of a
 * waiting ticket. Every action retried with its requestId while the store
 * answers STORE_UNAVAILABLE, until acknowledged; every answer's time kept.
 */
function workingStream(queue: QueueService, clinic: string, run: string) {
  const acknowledged: Acknowledged[] = [];
  const answeredAt: number[] = [];
  let unavailable = 0;
  let stopping = false;
  const act = async (requestId: string, action: () => Promise<Ack<ActionResult>>): Promise<QueueEvent | null> => {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const result = await action();
      answeredAt.push(Date.now());
      if (result.ok) {
        acknowledged.push({ requestId, ticketId: result.event.ticket.id, seq: result.event.seq, type: result.event.type });
        return result.event;
      }
      if (result.error.code === 'QUEUE_EMPTY') return null;
      if (result.error.code !== 'STORE_UNAVAILABLE') throw new Error(`${requestId}: ${result.error.code}`);
      if (Date.now() > deadline) throw new Error(`${requestId}: still STORE_UNAVAILABLE after 60 s`);
      unavailable++;
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const done = (async () => {
    for (let i = 0; !stopping; i++) {
      const id = `${run}-${i}`;
      const issued = await act(`${id}-checkin`, () => queue.checkin(clinic, { dept: 'gp', priority: 'normal', requestId: `${id}-checkin` }));
      if (i % 3 === 1) {
        const called = await act(`${id}-call`, () => queue.callNext(clinic, { dept: 'gp', room: 'r1', requestId: `${id}-call` }));
        if (called) await act(`${id}-done`, () => queue.done(clinic, { ticketId: called.ticket.id, requestId: `${id}-done` }));
      }
      if (i % 5 === 2) {
        const called = await act(`${id}-call2`, () => queue.callNext(clinic, { dept: 'gp', room: 'r2', requestId: `${id}-call2` }));
        if (called) await act(`${id}-skip`, () => queue.skip(clinic, { ticketId: called.ticket.id, requestId: `${id}-skip` }));
      }
      if (i % 7 === 3 && issued) await act(`${id}-cancel`, () => queue.cancel(clinic, { ticketId: issued.ticket.id, requestId: `${id}-cancel` }));
    }
    return { acknowledged, answeredAt, unavailable };
  })();
  done.catch(() => undefined);
  return {
    acknowledged,
    stop: () => {
      stopping = true;
      return done;
    },
  };
}

/**
 * Every acknowledged change is in the event stream once, at its seq, and
 * every event after `baseSeq` is one of them; what
 * Redis holds is what the events say: the active tickets, each department's
 * waiting list, the rooms, and ticket numbers never given twice.
 */
async function expectQueueAsItsEvents(queue: QueueService, redis: Cluster, clinic: string, baseSeq: number, acknowledged: Acknowledged[]) {
  const events = await queue.eventsAfter(clinic, 0);
  expect(events.map((e) => e.seq), `${clinic}: gapless`).toEqual(events.map((_, i) => i + 1));
  for (const ack of acknowledged) {
    const event = events[ack.seq - 1]!;
    expect({ type: event.type, ticket: event.ticket.id }, ack.requestId).toEqual({ type: ack.type, ticket: ack.ticketId });
  }
  // One change, one event: a retry of a change that was in fact done replays it, it does not make another.
  expect(new Set(acknowledged.map((a) => a.seq)).size, `${clinic}: one event per acknowledged change`).toBe(acknowledged.length);
  expect(events.filter((e) => e.seq > baseSeq).length, `${clinic}: no event that was not acknowledged`).toBe(acknowledged.length);
  const rebuilt = rebuildQueue(events);
  const snapshot = await queue.snapshot(clinic);
  if (!snapshot.ok) throw new Error(snapshot.error.code);
  expect(snapshot.snapshot.seq).toBe(rebuilt.seq);
  expect(snapshot.snapshot.tickets).toEqual(rebuilt.tickets);
  const keys = clinicKeys(clinic);
  for (const dept of ['gp', 'peds']) {
    expect(await redis.zrange(keys.waiting(dept), 0, -1), `${clinic} waiting ${dept}`).toEqual(rebuilt.tickets.filter((t) => t.dept === dept && t.status === 'waiting').map((t) => t.id));
  }
  const rooms = Object.fromEntries(rebuilt.tickets.filter((t) => t.room !== null).map((t) => [t.room, t.id]));
  expect(await redis.hgetall(keys.rooms), `${clinic} rooms`).toEqual(rooms);
  const numbers = events.filter((e) => e.type === 'ticket.issued').map((e) => e.ticket.number);
  expect(new Set(numbers).size, `${clinic}: ticket numbers given once`).toBe(numbers.length);
}

/**
 * `count` check-ins one after another, as a kiosk makes them: each retried
 * with its requestId while the store answers STORE_UNAVAILABLE, until it is
 * acknowledged. Resolves with every acknowledged check-in and how many
 * answers were STORE_UNAVAILABLE.
 */
function checkinStream(queue: QueueService, clinic: string, run: string, count: number) {
  const acknowledged: Acknowledged[] = [];
  let unavailable = 0;
  const done = (async () => {
    for (let i = 0; i < count; i++) {
      const requestId = `${run}-${clinic}-${i}`;
      const deadline = Date.now() + 60_000;
      for (;;) {
        const result = await queue.checkin(clinic, { dept: 'peds', priority: 'normal', requestId });
        if (result.ok) {
          acknowledged.push({ requestId, ticketId: result.event.ticket.id, seq: result.event.seq });
          break;
        }
        if (result.error.code !== 'STORE_UNAVAILABLE') throw new Error(`${requestId}: ${result.error.code}`);
        if (Date.now() > deadline) throw new Error(`${requestId}: still STORE_UNAVAILABLE after 60 s`);
        unavailable++;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    return { acknowledged, unavailable };
  })();
  // Awaited by the test later; a failure meanwhile is not an unhandled rejection.
  done.catch(() => undefined);
  return { acknowledged, done };
}

async function untilAcknowledged(streams: { acknowledged: Acknowledged[] }[], count: number) {
  const deadline = Date.now() + 30_000;
  while (streams.some((s) => s.acknowledged.length < count)) {
    if (Date.now() > deadline) throw new Error(`fewer than ${count} check-ins acknowledged in 30 s`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Every acknowledged check-in is in the clinic's queue and event stream, once, at the sequence number it was acknowledged with. */
async function expectExactlyOnce(queue: QueueService, clinic: string, result: { acknowledged: Acknowledged[] }) {
  const events = await queue.eventsAfter(clinic, 0);
  expect(events.map((e) => e.seq), `${clinic}: gapless`).toEqual(events.map((_, i) => i + 1));
  const checkins = events.filter((e) => e.type === 'ticket.issued');
  for (const ack of result.acknowledged) {
    const matching = checkins.filter((e) => e.ticket.id === ack.ticketId);
    expect(matching.map((e) => e.seq), `${clinic} ${ack.requestId}`).toEqual([ack.seq]);
    expect(await queue.ticket(clinic, ack.ticketId), `${clinic} ${ack.requestId}`).not.toBeNull();
  }
  expect(new Set(result.acknowledged.map((a) => a.ticketId)).size).toBe(result.acknowledged.length);
}
