import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import type { ActionResult, DrainingNotice, QueueEvent } from '@clinic-hub/protocol';
import { ClinicRegistry } from '../src/clinics/clinic-registry.js';
import { QueueService } from '../src/queue/index.js';
import { startHaproxy, type Haproxy } from './support/haproxy.js';
import { TEST_CLINICS_DIR, startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { actionsInFlight, connectedClients } from '@clinic-hub/test-kit/metrics-text';
import { connectQueue, followQueue, recordArrivals, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { startTcpProxy, type TcpProxy } from '@clinic-hub/test-kit/tcp-proxy';
import { sleep, waitFor } from '@clinic-hub/test-kit/wait';

/**
 * A rolling restart as production does it: two hub nodes behind HAProxy
 * running deploy/haproxy/haproxy.cfg, staff pressing buttons and displays
 * watching through the load balancer, and SIGTERM to one node in the middle
 * of it. The node drains: /readyz 503 at once, `hub:draining` to its
 * clients, the actions in flight acknowledged, then its connections closed.
 * Every client ends up on the other node, every acknowledged action's event
 * is in the stream once, every display shows what the hub has.
 *
 * hub-1 reaches Redis through a proxy that delays every reply, and holds them
 * around the SIGTERM, so that some of its actions are in flight when it stops
 * taking new ones: those must still be acknowledged.
 */
/** bigclinic (support/clinics/bigclinic.json): one department "gp", rooms room01 … room50. */
const CLINIC = 'bigclinic';
const DEPT = 'gp';
/** How long hub-1's Redis replies are held. */
const REDIS_DELAY_MS = 100;
/** Concurrent loops per staff desk, each with a room of its own. */
const LOOPS_PER_DESK = 3;
const clinics = ClinicRegistry.fromDirectory(TEST_CLINICS_DIR);
/** Errors after which an action is sent again, with the same requestId, once the socket is connected. */
const RETRYABLE = new Set(['HUB_DRAINING', 'STORE_UNAVAILABLE', 'RATE_LIMITED']);
const DISPLAYS = 6;

let redisServer: TestRedis;
let redis: Redis;
let queue: QueueService;
let nodes: Record<'hub-1' | 'hub-2', HubNodeProcess>;
let slowRedis: TcpProxy;
let lb: Haproxy;
const sockets: QueueSocket[] = [];

beforeAll(async () => {
  redisServer = await startTestRedis();
  redis = new Redis(redisServer.url);
  queue = new QueueService(redis, clinics);
  slowRedis = await startTcpProxy(Number(new URL(redisServer.url).port));
  // The test is about draining: the rate limits stay out of the way of its steady traffic.
  const env = { LOG_LEVEL: 'info', HUB_RATE_LIMIT_SOCKET_PER_SECOND: '0', HUB_RATE_LIMIT_USER_PER_SECOND: '0' };
  const [one, two] = await Promise.all([
    startHubProcess({ redisUrl: `redis://127.0.0.1:${slowRedis.port}`, nodeId: 'hub-1', env }),
    startHubProcess({ redisUrl: redisServer.url, nodeId: 'hub-2', env }),
  ]);
  nodes = { 'hub-1': one!, 'hub-2': two! };
  lb = await startHaproxy({ 'hub-1': nodes['hub-1'].port, 'hub-2': nodes['hub-2'].port });
});

afterAll(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  await lb?.stop();
  await Promise.all(Object.values(nodes ?? {}).map((n) => n.stop().catch(() => undefined)));
  await slowRedis?.close();
  redis?.disconnect();
  await redisServer?.cleanup();
});

async function open(role: 'staff' | 'display', sub: string): Promise<QueueSocket> {
  const socket = await connectQueue(lb.url, await tokenFor(role, CLINIC, { sub }), { reconnection: true });
  sockets.push(socket);
  return socket;
}

/** Who is on which node, by role, from the nodes' own /metrics. */
async function placement(): Promise<Record<string, { staff: number; display: number }>> {
  const entries = await Promise.all(
    Object.entries(nodes)
      .filter(([, node]) => node.process.exitCode === null)
      .map(async ([name, node]) => [name, { staff: await connectedClients(node.url, name, 'staff'), display: await connectedClients(node.url, name, 'display') }] as const),
  );
  return Object.fromEntries(entries);
}

/**
 * A staff client as the protocol asks clients to behave: every action has a
 * requestId; a lost ack, HUB_DRAINING or STORE_UNAVAILABLE means "send it
 * again with the same requestId once connected".
 */
function staffClient(socket: QueueSocket) {
  let sends = 0;
  const act = async <E extends 'queue:checkin' | 'queue:call-next' | 'queue:done'>(
    event: E,
    payload: Parameters<typeof request<E>>[2],
  ): Promise<ActionResult> => {
    for (let attempt = 1; attempt <= 40; attempt++) {
      if (!socket.connected) await waitFor('the staff socket to reconnect', () => socket.connected, 15_000);
      sends += 1;
      const ack = await request(socket, event, payload, 2000).catch(() => null);
      if (ack === null) continue;
      if (ack.ok) return ack;
      if (!RETRYABLE.has(ack.error.code)) throw new Error(`${event} ${JSON.stringify(payload)}: ${ack.error.code}`);
      await sleep(50);
    }
    throw new Error(`${event} ${JSON.stringify(payload)}: no ack after 40 attempts`);
  };
  return { act, sends: () => sends };
}

describe('SIGTERM to a hub node behind the load balancer, mid-traffic', () => {
  it('moves every client to the other node and loses no acknowledged event', async () => {
    // Two staff desks first (leastconn puts one on each node), then the displays.
    const desks = [await open('staff', 'staff:desk-1'), await open('staff', 'staff:desk-2')];
    const displays: QueueSocket[] = [];
    for (let i = 0; i < DISPLAYS; i++) displays.push(await open('display', `display:screen-${i}`));
    const followers = displays.map((d) => followQueue(d));
    const arrivals = displays.map((d) => recordArrivals(d));
    const notices = displays.map(() => [] as DrainingNotice[]);
    const disconnects = displays.map(() => [] as string[]);
    displays.forEach((d, i) => {
      d.on('hub:draining', (notice) => notices[i]!.push(notice));
      d.on('disconnect', (reason) => disconnects[i]!.push(reason));
    });
    await Promise.all(followers.map((f) => f.resync()));
    const before = await placement();
    expect(before['hub-1']!.staff + before['hub-2']!.staff).toBe(2);
    expect(before['hub-1']).toMatchObject({ staff: 1 });
    expect(before['hub-1']!.display).toBeGreaterThan(0);
    expect(before['hub-2']!.display).toBeGreaterThan(0);
    const onDrainingNode = before['hub-1']!.display;
    const seqBefore = Number((await redis.get(`ch:{${CLINIC}}:seq`)) ?? 0);

    // Each desk runs loops that check a patient in, call the next one into the loop's room and finish them, over and over:
    // one queue event per action, and each loop's call always finds someone waiting (it checked one in first).
    slowRedis.delayReplies(REDIS_DELAY_MS);
    const acked = new Map<string, QueueEvent>();
    let drained = false;
    let cyclesAfterDrain = 0;
    const clients = desks.map((socket) => staffClient(socket));
    const loops = clients.flatMap((client, desk) =>
      Array.from({ length: LOOPS_PER_DESK }, (_, loop) => ({ client, room: `room0${desk * LOOPS_PER_DESK + loop + 1}` })),
    );
    const traffic = Promise.all(
      loops.map(async ({ client, room }) => {
        for (let cycle = 0; cycle < 200 && cyclesAfterDrain < 2 * loops.length; cycle++) {
          const id = `drain-${room}-${cycle}`;
          const checkin = await client.act('queue:checkin', { dept: DEPT, requestId: `${id}-in` });
          acked.set(`${id}-in`, checkin.event);
          const called = await client.act('queue:call-next', { dept: DEPT, room, requestId: `${id}-call` });
          acked.set(`${id}-call`, called.event);
          const done = await client.act('queue:done', { ticketId: called.event.ticket.id, requestId: `${id}-done` });
          acked.set(`${id}-done`, done.event);
          if (drained) cyclesAfterDrain += 1;
          await sleep(10);
        }
      }),
    );

    await waitFor('some traffic before the drain', () => acked.size >= 12, 10_000);
    const draining = nodes['hub-1'];
    const exited = new Promise<number | null>((resolve) => draining.process.once('exit', (code) => resolve(code)));
    draining.process.kill('SIGTERM');
    // Not ready at once, while it still answers.
    await waitFor('hub-1 to say it is not ready', async () => (await fetch(`${draining.url}/readyz`)).status === 503, 1000);
    expect((await fetch(`${draining.url}/healthz`)).status).toBe(200);
    // hub-1's Redis replies are held from here until it stops taking new actions, so that some of its actions are
    // in flight at that moment however the machine schedules the loops (the staff client resends the ones whose ack
    // is late, with the same requestId); then they must still be acknowledged.
    slowRedis.holdReplies(true);
    await waitFor('an action in flight on hub-1', async () => (await actionsInFlight(draining.url, 'hub-1')) > 0, 2000);
    // A Redis that does not answer makes /healthz say so within its 1 s bound rather than leave the probe hanging.
    const probe = await fetch(`${draining.url}/healthz`, { signal: AbortSignal.timeout(2500) });
    expect([probe.status, ((await probe.json()) as { redis: string }).redis]).toEqual([503, 'down']);
    await waitFor('hub-1 to stop taking new actions', () => draining.logs().includes('waiting for the ones in flight'), 10_000);
    slowRedis.holdReplies(false);
    await waitFor('HAProxy to take hub-1 out', async () => (await lb.serverStates())['hub-1'] !== 'UP', 5000);
    const ackedDuringGrace = acked.size;

    expect(await exited).toBe(0);
    drained = true;
    await traffic;
    expect(acked.size).toBeGreaterThan(ackedDuringGrace);

    // Every client is on hub-2 now.
    await waitFor('every display to reconnect', () => displays.every((d) => d.connected), 15_000);
    expect(await placement()).toEqual({ 'hub-2': { staff: 2, display: DISPLAYS } });
    // The displays that were on hub-1 were told, then moved by a closed transport (they reconnected by themselves).
    const told = notices.filter((n) => n.length > 0);
    expect(told).toHaveLength(onDrainingNode);
    for (const notice of told) expect(notice).toEqual([{ node: 'hub-1', closesInMs: 3000 }]);
    expect(disconnects.filter((d) => d.length > 0)).toEqual(Array.from({ length: onDrainingNode }, () => ['transport close']));

    // Every acknowledged action's event is in the stream, once; nothing else is.
    const stream = await queue.eventsAfter(CLINIC, seqBefore);
    const seqs = stream.map((e) => e.seq);
    expect(seqs).toEqual(seqs.map((_, i) => seqBefore + 1 + i));
    expect(stream).toHaveLength(acked.size);
    const bySeq = new Map(stream.map((e) => [e.seq, e]));
    for (const [requestId, event] of acked) expect(bySeq.get(event.seq), requestId).toEqual(event);
    expect(new Set([...acked.values()].map((e) => e.seq)).size).toBe(acked.size);

    // An action sent again with its requestId, now on the other node, is not done twice.
    const [lastId, lastEvent] = [...acked.entries()].find(([id]) => id.endsWith('-in'))!;
    const again = await request(desks[0]!, 'queue:checkin', { dept: DEPT, requestId: lastId });
    expect(again).toMatchObject({ ok: true, replayed: true, event: lastEvent });
    expect(await queue.eventsAfter(CLINIC, seqBefore)).toHaveLength(acked.size);

    // Every display shows what the hub has: the same last event and the same tickets, nothing applied twice.
    const lastSeq = seqBefore + acked.size;
    const snapshot = await queue.snapshot(CLINIC);
    if (!snapshot.ok) throw new Error(snapshot.error.code);
    for (const [i, follower] of followers.entries()) {
      await waitFor(`display ${i} to catch up`, () => follower.seq === lastSeq, 10_000);
      expect(new Set(follower.applied).size, `display ${i} applied nothing twice`).toBe(follower.applied.length);
      expect([...follower.tickets.values()].sort((a, b) => a.id.localeCompare(b.id))).toEqual(
        [...snapshot.snapshot.tickets].sort((a, b) => a.id.localeCompare(b.id)),
      );
      const live = arrivals[i]!.events.map((e) => e.seq);
      expect(new Set(live).size, `display ${i} got no live event twice`).toBe(live.length);
    }

    // Actions were in flight when hub-1 stopped taking new ones, and were acknowledged before it closed.
    const closing = draining
      .logs()
      .split('\n')
      .filter((line) => line.includes('waiting for the ones in flight'))
      .map((line) => JSON.parse(line) as { inFlight: number });
    expect(closing).toHaveLength(1);
    expect(closing[0]!.inFlight).toBeGreaterThan(0);
    expect(draining.logs()).toContain('every action in flight is acknowledged');
    expect(draining.logs()).toContain('connections closed; clients reconnect to other nodes');
  });
});
