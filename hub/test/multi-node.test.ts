import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTestHubs, stopTestHubs, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { connectQueue, expectOk, followQueue, recordArrivals, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import type { TestRedis } from '@clinic-hub/test-kit/redis';
import { sleep, waitFor } from '@clinic-hub/test-kit/wait';

/** After the last expected delivery, how long to keep listening for a duplicate. */
const SETTLE_MS = 400;

let redis: TestRedis;
let nodeA: HubNodeProcess;
let nodeB: HubNodeProcess;
const sockets: QueueSocket[] = [];

async function open(url: string, role: Parameters<typeof tokenFor>[0], clinic = 'testclinic'): Promise<QueueSocket> {
  const socket = await connectQueue(url, await tokenFor(role, clinic));
  sockets.push(socket);
  return socket;
}

beforeAll(async () => {
  ({ redis, nodes: [nodeA, nodeB] } = await startTestHubs(['node-a', 'node-b']));
});

afterEach(() => {
  for (const socket of sockets.splice(0)) socket.close();
});

afterAll(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  await stopTestHubs(redis, [nodeA, nodeB]);
});

describe('two hub nodes on one Redis', () => {
  it('are two processes that answer for themselves', async () => {
    const [a, b] = await Promise.all([nodeA, nodeB].map(async (n) => (await fetch(`${n.url}/healthz`)).json()));
    expect(a).toMatchObject({ node: 'node-a', redis: 'up' });
    expect(b).toMatchObject({ node: 'node-b', redis: 'up' });
    expect(nodeA.process.pid).not.toBe(nodeB.process.pid);
  });

  for (const [from, to] of [
    ['A', 'B'],
    ['B', 'A'],
  ] as const) {
    it(`delivers a call made through node ${from} to displays on both nodes, exactly once each`, async () => {
      const byName = { A: nodeA, B: nodeB };
      const displayHere = await open(byName[from].url, 'display');
      const displayThere = await open(byName[to].url, 'display');
      const followers = [followQueue(displayHere), followQueue(displayThere)];
      const arrivals = [recordArrivals(displayHere), recordArrivals(displayThere)];
      await Promise.all(followers.map((f) => f.resync()));

      const staff = await open(byName[from].url, 'staff');
      const checkedIn = expectOk(await request(staff, 'queue:checkin', { dept: 'gp' }));
      const called = expectOk(await request(staff, 'queue:call-next', { dept: 'gp', room: 'r1' }));
      expect(called.event.ticket.id).toBe(checkedIn.event.ticket.id);
      // Free the room again for the next test.
      const done = expectOk(await request(staff, 'queue:done', { ticketId: called.event.ticket.id }));

      for (const follower of followers) await waitFor('the done event on every display', () => follower.seq === done.event.seq);
      await sleep(SETTLE_MS);

      for (const [i, got] of arrivals.entries()) {
        const calls = got.events.filter((e) => e.type === 'ticket.called' && e.ticket.id === called.event.ticket.id);
        expect(calls, `display ${i} calls`).toHaveLength(1);
        expect(calls[0]).toEqual(called.event);
        const seqs = got.events.map((e) => e.seq);
        expect(new Set(seqs).size, `display ${i} got no duplicate`).toBe(seqs.length);
        expect(seqs).toEqual([checkedIn.event.seq, called.event.seq, done.event.seq]);
        expect(followers[i]!.applied).toEqual(seqs);
      }
    });
  }

  it('delivers an announcement made on node A to displays on both nodes once, and to no other clinic', async () => {
    const displayA = await open(nodeA.url, 'display');
    const displayB = await open(nodeB.url, 'display');
    const otherClinicB = await open(nodeB.url, 'display', 'otherclinic');
    const arrivals = [displayA, displayB, otherClinicB].map((s) => recordArrivals(s));
    const staff = await open(nodeA.url, 'staff');

    const ack = expectOk(
      await request(staff, 'queue:announce', { text: { ja: '本日は混雑しています', en: 'It is busy today' }, durationSeconds: 30 }),
    );
    for (const got of arrivals.slice(0, 2)) await waitFor('the announcement', () => got.announcements.length > 0);
    await sleep(SETTLE_MS);

    for (const got of arrivals.slice(0, 2)) expect(got.announcements).toEqual([ack.announcement]);
    expect(arrivals[2]!.announcements).toEqual([]);
  });

  it('keeps clinics apart across nodes: queue events of one clinic never reach another', async () => {
    const other = await open(nodeB.url, 'display', 'otherclinic');
    const otherArrivals = recordArrivals(other);
    const mine = await open(nodeB.url, 'display');
    const mineArrivals = recordArrivals(mine);
    const staff = await open(nodeA.url, 'staff');
    const ack = expectOk(await request(staff, 'queue:checkin', { dept: 'peds' }));
    await waitFor('the check-in on the clinic display', () => mineArrivals.events.some((e) => e.seq === ack.event.seq));
    await sleep(SETTLE_MS);
    expect(otherArrivals.events).toEqual([]);
  });
});
