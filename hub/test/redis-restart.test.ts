import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { ClinicRegistry } from '../src/clinics/clinic-registry.js';
import { QueueService, rebuildQueue } from '../src/queue/index.js';
import { startRedisServer, type RedisProcess } from '@clinic-hub/platform/redis-server';
import { TEST_CLINICS_DIR, startTestHubs, tokenFor, type HubNodeProcess, healthStatus } from '@clinic-hub/test-kit/hub-node';
import { connectQueue, deskAndDisplay, expectOk, recordArrivals, request, untilAcknowledged, workingClinicStep, type AcknowledgedChanges, type QueueSocket, type RetryTally } from '@clinic-hub/test-kit/queue-client';
import type { TestRedis } from '@clinic-hub/test-kit/redis';
import { sleep, waitFor } from '@clinic-hub/test-kit/wait';

const CLINIC = 'testclinic';

let redis: TestRedis;
let restarted: RedisProcess | null = null;
let nodeA: HubNodeProcess;
let nodeB: HubNodeProcess;
const sockets: QueueSocket[] = [];

beforeAll(async () => {
  ({ redis, nodes: [nodeA, nodeB] } = await startTestHubs(['node-a', 'node-b']));
});

afterAll(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  await Promise.all([nodeA?.stop(), nodeB?.stop()]);
  await restarted?.stop();
  await redis?.cleanup();
});

/** What the client saw while it kept working through the outage. */
const seen: RetryTally = { storeUnavailable: 0, timeouts: 0, replayed: 0 };
const retry = { seen, deadlineMs: 30_000, ackTimeoutMs: 3000 };

describe('Redis restarted under two running hub nodes', () => {
  it('loses nothing acknowledged, duplicates nothing retried, and fans out across nodes again', { timeout: 90_000 }, async () => {
    const { staff, display, follower, arrivals } = await deskAndDisplay(nodeA.url, nodeB.url, { staff: await tokenFor('staff'), display: await tokenFor('display') });
    sockets.push(staff, display);

    const acknowledged: AcknowledgedChanges = new Map();
    let n = 0;
    const step = (tag: string) => workingClinicStep(staff, tag, n++, acknowledged, retry);

    // Before: ordinary work, all acknowledged at once.
    for (let i = 0; i < 9; i++) await step('before');
    expect(seen).toEqual({ storeUnavailable: 0, timeouts: 0, replayed: 0 });

    // During: the client keeps working while Redis goes away and comes back.
    let keepWorking = true;
    const worker = (async () => {
      while (keepWorking) await step('during');
    })();
    await sleep(200);
    const oldPid = redis.process.pid;
    await redis.stop();
    // While Redis is down, the nodes notice by themselves, say so, and stay up.
    await waitFor('both nodes to report Redis down', async () => (await healthStatus(nodeA)) === 503 && (await healthStatus(nodeB)) === 503, 15_000);
    const [announced, snapshot, health, ready] = await Promise.all([
      request(staff, 'queue:announce', { text: { ja: 'お知らせ', en: 'Notice' } }),
      fetch(`${nodeB.url}/api/clinics/${CLINIC}/queue`, { headers: { authorization: `Bearer ${await tokenFor('staff')}` } }),
      fetch(`${nodeA.url}/healthz`),
      fetch(`${nodeA.url}/readyz`),
    ]);
    expect(announced).toMatchObject({ ok: false, error: { code: 'STORE_UNAVAILABLE' } });
    expect(snapshot.status).toBe(503);
    expect(await snapshot.json()).toMatchObject({ error: { code: 'STORE_UNAVAILABLE' } });
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({ node: 'node-a', redis: 'down' });
    expect(ready.status).toBe(503);
    await sleep(500);
    expect(nodeA.process.exitCode).toBeNull();
    expect(nodeB.process.exitCode).toBeNull();
    restarted = await startRedisServer({ dir: redis.dir, port: redis.port });
    expect(restarted.process.pid).not.toBe(oldPid);
    const stepsAtRestart = n;
    await waitFor('work to go on after the restart', () => n >= stepsAtRestart + 6, 40_000);
    keepWorking = false;
    await worker;

    // The outage was real: the client saw it and retried.
    expect(seen.storeUnavailable + seen.timeouts).toBeGreaterThan(0);

    // Both nodes report healthy again by themselves.
    await waitFor('both nodes healthy', async () => (await healthStatus(nodeA)) === 200 && (await healthStatus(nodeB)) === 200, 20_000);
    expect(nodeA.process.exitCode).toBeNull();
    expect(nodeB.process.exitCode).toBeNull();

    // After: what Redis holds is exactly what was acknowledged.
    const client = new Redis(restarted.url);
    try {
      const queue = new QueueService(client, ClinicRegistry.fromDirectory(TEST_CLINICS_DIR));
      const events = await queue.eventsAfter(CLINIC, 0);
      expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
      // One event per acknowledged action: a retried requestId did not act twice.
      expect(events).toHaveLength(acknowledged.size);
      for (const { event } of acknowledged.values()) expect(events[event.seq - 1]).toEqual(event);
      const kinds = [...acknowledged.values()].map(({ action }) => action.kind);
      expect(events.filter((e) => e.type === 'ticket.issued')).toHaveLength(kinds.filter((k) => k === 'checkin').length);
      expect(events.filter((e) => e.type === 'ticket.called')).toHaveLength(kinds.filter((k) => k === 'call-next').length);
      expect(events.filter((e) => e.type === 'ticket.done')).toHaveLength(kinds.filter((k) => k === 'done').length);

      const snapshot = await queue.snapshot(CLINIC);
      if (!snapshot.ok) throw new Error(snapshot.error.code);
      const rebuilt = rebuildQueue(events);
      expect(rebuilt.seq).toBe(snapshot.snapshot.seq);
      expect(rebuilt.tickets).toEqual(snapshot.snapshot.tickets);
      const waitingIds = new Set(snapshot.snapshot.tickets.map((t) => t.id));
      for (const { action, event } of acknowledged.values()) {
        if (action.kind === 'checkin' && !events.some((e) => e.type === 'ticket.called' && e.ticket.id === event.ticket.id)) {
          expect(waitingIds.has(event.ticket.id), `checked-in ticket ${event.ticket.number} is still waiting`).toBe(true);
        }
      }

      // Live fan-out across nodes works again: a call through A reaches the display on B as a live event.
      const liveBefore = arrivals.events.length;
      const call = await untilAcknowledged(staff, { kind: 'call-next', requestId: 'after-call-1' }, retry);
      await waitFor('the call, live, on the display of node B', () => arrivals.events.slice(liveBefore).some((e) => e.seq === call.seq));
      // And through the Socket.IO adapter too.
      const announced = expectOk(await request(staff, 'queue:announce', { text: { ja: '再開しました', en: 'Back in service' } }));
      await waitFor('the announcement on node B', () => arrivals.announcements.some((a) => a.id === announced.announcement.id));
      // A display that connects to B now, and one on A, get the next call live.
      const freshB = await connectQueue(nodeB.url, await tokenFor('display'));
      const freshA = await connectQueue(nodeA.url, await tokenFor('display'));
      sockets.push(freshB, freshA);
      const freshArrivals = [recordArrivals(freshB), recordArrivals(freshA)];
      const done = await untilAcknowledged(staff, { kind: 'done', requestId: 'after-done-1', ticketId: call.ticket.id }, retry);
      for (const got of freshArrivals) await waitFor('the next change, live, on fresh displays', () => got.events.some((e) => e.seq === done.seq));

      // The display that stayed on B through it all followed every change once, in order.
      await waitFor('the display to have everything', () => follower.seq === done.seq);
      await sleep(300);
      expect(follower.applied).toEqual(follower.applied.map((_, i) => follower.applied[0]! + i));
      expect(follower.applied.at(-1)).toBe(done.seq);
      const final = await queue.snapshot(CLINIC);
      if (!final.ok) throw new Error(final.error.code);
      expect([...follower.tickets.values()].sort((a, b) => a.order - b.order)).toEqual(final.snapshot.tickets);
    } finally {
      client.disconnect();
    }
  });
});
