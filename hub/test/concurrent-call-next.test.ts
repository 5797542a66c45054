import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import type { QueueEvent } from '@clinic-hub/protocol';
import { ClinicRegistry } from '../src/clinics/clinic-registry.js';
import { QueueService, rebuildQueue } from '../src/queue/index.js';
import { TEST_CLINICS_DIR, startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { connectQueue, expectOk, followQueue, recordArrivals, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { sleep, waitFor } from '@clinic-hub/test-kit/wait';

/** bigclinic (hub/test/support/clinics/bigclinic.json): one department "gp", rooms room01 … room50. */
const CLINIC = 'bigclinic';
const clinics = ClinicRegistry.fromDirectory(TEST_CLINICS_DIR);
const ROOMS = clinics.department(CLINIC, 'gp')!.rooms.map((r) => r.id);

let redisServer: TestRedis;
let redis: Redis;
let queue: QueueService;
let nodes: HubNodeProcess[] = [];
const sockets: QueueSocket[] = [];
/** Staff and doctor sockets, alternating between the two nodes. */
const staff: QueueSocket[] = [];
/** The staff ones (doctors may not check patients in). */
const reception: QueueSocket[] = [];
let followers: ReturnType<typeof followQueue>[] = [];
let arrivals: ReturnType<typeof recordArrivals>[] = [];

async function open(url: string, role: Parameters<typeof tokenFor>[0]): Promise<QueueSocket> {
  const socket = await connectQueue(url, await tokenFor(role, CLINIC));
  sockets.push(socket);
  return socket;
}

async function checkInAll(count: number, runTag: string): Promise<string[]> {
  const acks = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      request(reception[i % reception.length]!, 'queue:checkin', { dept: 'gp', requestId: `${runTag}-checkin-${i}` }),
    ),
  );
  return acks.map((ack) => expectOk(ack).event.ticket.id);
}

async function streamEvents(): Promise<QueueEvent[]> {
  return queue.eventsAfter(CLINIC, 0);
}

function expectContiguous(seqs: number[], from: number, to: number) {
  expect(seqs).toEqual(Array.from({ length: to - from + 1 }, (_, i) => from + i));
}

beforeAll(async () => {
  expect(ROOMS).toHaveLength(50);
  redisServer = await startTestRedis();
  redis = new Redis(redisServer.url);
  queue = new QueueService(redis, clinics);
  nodes = await Promise.all([
    startHubProcess({ redisUrl: redisServer.url, nodeId: 'node-a' }),
    startHubProcess({ redisUrl: redisServer.url, nodeId: 'node-b' }),
  ]);
  for (let i = 0; i < 8; i++) {
    const role = i % 4 === 3 ? 'doctor' : 'staff';
    const socket = await open(nodes[i % 2]!.url, role);
    staff.push(socket);
    if (role === 'staff') reception.push(socket);
  }
  const displays = [await open(nodes[0]!.url, 'display'), await open(nodes[1]!.url, 'display')];
  followers = displays.map((d) => followQueue(d));
  arrivals = displays.map((d) => recordArrivals(d));
  await Promise.all(followers.map((f) => f.resync()));
});

afterAll(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  await Promise.all(nodes.map((n) => n.stop()));
  redis?.disconnect();
  await redisServer?.cleanup();
});

describe('call-next pressed concurrently on two nodes', () => {
  it('calls each of 50 waiting tickets exactly once, one per room', async () => {
    const checkedIn = await checkInAll(50, 'run1');
    expect(new Set(checkedIn).size).toBe(50);

    const acks = await Promise.all(
      ROOMS.map((room, i) => request(staff[i % staff.length]!, 'queue:call-next', { dept: 'gp', room, requestId: `run1-call-${room}` })),
    );
    const called = acks.map((ack) => expectOk(ack).event);
    expect(called.every((e) => e.type === 'ticket.called' && e.ticket.status === 'called')).toBe(true);
    expect(called.map((e) => e.ticket.room)).toEqual(ROOMS);
    expect(new Set(called.map((e) => e.ticket.id))).toEqual(new Set(checkedIn));

    const events = await streamEvents();
    expectContiguous(
      events.map((e) => e.seq),
      1,
      100,
    );
    const callEvents = events.filter((e) => e.type === 'ticket.called');
    expect(callEvents).toHaveLength(50);
    expect(new Set(callEvents.map((e) => e.ticket.id))).toEqual(new Set(checkedIn));
    // Each ack is the event as committed, with its own seq.
    expect(new Set(called.map((e) => e.seq))).toEqual(new Set(callEvents.map((e) => e.seq)));

    expect(await queue.callNext(CLINIC, { dept: 'gp', room: 'room01' })).toMatchObject({ ok: false, error: { code: 'QUEUE_EMPTY' } });

    const snapshot = await queue.snapshot(CLINIC);
    if (!snapshot.ok) throw new Error(snapshot.error.code);
    expect(rebuildQueue(events).tickets).toEqual(snapshot.snapshot.tickets);

    // Both displays, one per node, saw the whole run once, in order.
    for (const follower of followers) await waitFor('every event on the display', () => follower.seq === 100);
    await sleep(300);
    for (const [i, got] of arrivals.entries()) {
      expectContiguous(followers[i]!.applied, 1, 100);
      const seqs = got.events.map((e) => e.seq);
      expect(new Set(seqs).size, `display ${i} got no duplicate`).toBe(seqs.length);
    }
  });

  it('gives each room exactly one ticket when two presses race for every room', async () => {
    // Finish the first run so that every room is free.
    const firstRun = (await queue.snapshot(CLINIC)) as Extract<Awaited<ReturnType<QueueService['snapshot']>>, { ok: true }>;
    await Promise.all(
      firstRun.snapshot.tickets.map((t, i) => request(staff[i % staff.length]!, 'queue:done', { ticketId: t.id }).then(expectOk)),
    );
    const seqBefore = Number(await redis.get(`ch:{${CLINIC}}:seq`));

    const checkedIn = await checkInAll(50, 'run2');
    // Two presses per room at once, from sockets on different nodes.
    const presses = ROOMS.flatMap((room, i) => [
      { room, socket: staff[(2 * i) % staff.length]! },
      { room, socket: staff[(2 * i + 1) % staff.length]! },
    ]);
    const acks = await Promise.all(presses.map(({ room, socket }) => request(socket, 'queue:call-next', { dept: 'gp', room })));

    const winners = acks.flatMap((ack) => (ack.ok ? [ack.event] : []));
    const losers = acks.flatMap((ack) => (ack.ok ? [] : [ack.error.code]));
    expect(winners).toHaveLength(50);
    expect(new Set(winners.map((e) => e.ticket.room))).toEqual(new Set(ROOMS));
    expect(new Set(winners.map((e) => e.ticket.id))).toEqual(new Set(checkedIn));
    expect(losers).toHaveLength(50);
    for (const code of losers) expect(['QUEUE_ROOM_BUSY', 'QUEUE_EMPTY']).toContain(code);

    const events = await queue.eventsAfter(CLINIC, seqBefore);
    expectContiguous(
      events.map((e) => e.seq),
      seqBefore + 1,
      seqBefore + 100,
    );
    expect(events.filter((e) => e.type === 'ticket.called')).toHaveLength(50);
    const all = await streamEvents();
    expectContiguous(
      all.map((e) => e.seq),
      1,
      all.length,
    );
    const snapshot = await queue.snapshot(CLINIC);
    if (!snapshot.ok) throw new Error(snapshot.error.code);
    expect(rebuildQueue(all).tickets).toEqual(snapshot.snapshot.tickets);
  });
});
