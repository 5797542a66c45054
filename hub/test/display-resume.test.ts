import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { QueueEvent } from '@clinic-hub/protocol';
import { startTestHubs, stopTestHubs, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { connectQueue, expectOk, followQueue, recordArrivals, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import type { TestRedis } from '@clinic-hub/test-kit/redis';
import { startTcpProxy, type TcpProxy } from '@clinic-hub/test-kit/tcp-proxy';
import { sleep, waitFor } from '@clinic-hub/test-kit/wait';

let redis: TestRedis;
let nodeA: HubNodeProcess;
let nodeB: HubNodeProcess;
let proxy: TcpProxy;
const sockets: QueueSocket[] = [];

beforeAll(async () => {
  ({ redis, nodes: [nodeA, nodeB] } = await startTestHubs(['node-a', 'node-b']));
  // The display reaches node B through a proxy the test can cut: a real network loss.
  proxy = await startTcpProxy(nodeB.port);
});

afterAll(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  await proxy?.close();
  await stopTestHubs(redis, [nodeA, nodeB]);
});

function noDuplicates(seqs: number[]) {
  expect(new Set(seqs).size).toBe(seqs.length);
}

function contiguous(seqs: number[]) {
  expect(seqs).toEqual(seqs.map((_, i) => seqs[0]! + i));
}

describe('a display that loses its connection', () => {
  it('gets exactly the three calls made while it was cut off, once each, in order, after it reconnects by itself', async () => {
    const display = await connectQueue(proxy.url, await tokenFor('display'), { reconnection: true });
    sockets.push(display);
    const follower = followQueue(display);
    const arrivals = recordArrivals(display);
    const disconnects: string[] = [];
    display.on('disconnect', (reason) => disconnects.push(reason));
    await follower.resync();

    const staff = await connectQueue(nodeA.url, await tokenFor('staff'));
    sockets.push(staff);
    const checkins: QueueEvent[] = [];
    for (const dept of ['gp', 'gp', 'peds', 'gp']) checkins.push(expectOk(await request(staff, 'queue:checkin', { dept })).event);
    await waitFor('the check-ins on the display', () => follower.seq === checkins.at(-1)!.seq);
    const appliedBefore = [...follower.applied];
    expect(appliedBefore).toEqual(checkins.map((e) => e.seq));

    await proxy.cut();
    await waitFor('the display to notice the cut', () => disconnects.length === 1);
    const arrivalsAtCut = arrivals.events.length;

    const calls: QueueEvent[] = [];
    for (const [dept, room] of [
      ['gp', 'r1'],
      ['gp', 'r2'],
      ['peds', 'r3'],
    ] as const) {
      calls.push(expectOk(await request(staff, 'queue:call-next', { dept, room })).event);
    }
    // Give the lost deliveries time to have gone nowhere, and the client time to fail reconnecting.
    await sleep(600);
    expect(arrivals.events.length).toBe(arrivalsAtCut);
    expect(display.connected).toBe(false);

    await proxy.restore();
    await waitFor('the display to catch up after reconnecting', () => follower.seq === calls.at(-1)!.seq, 15_000);
    expect(display.connected).toBe(true);

    // A later change arrives live and proves nothing more was queued for the display.
    const marker = expectOk(await request(staff, 'queue:checkin', { dept: 'gp' })).event;
    await waitFor('the change after the reconnect', () => follower.seq === marker.seq);
    await sleep(300);

    const afterCut = follower.events.slice(appliedBefore.length);
    expect(afterCut.slice(0, 3)).toEqual(calls);
    expect(afterCut.map((e) => e.seq)).toEqual([...calls.map((e) => e.seq), marker.seq]);
    expect(follower.applied).toEqual([...appliedBefore, ...calls.map((e) => e.seq), marker.seq]);
    noDuplicates(follower.applied);
    contiguous(follower.applied);
    // The display shows what a display must: the three called tickets and their rooms.
    expect(
      follower
        .calls()
        .map((t) => [t.number, t.room])
        .sort(),
    ).toEqual([
      ['A-001', 'r1'],
      ['A-002', 'r2'],
      ['B-001', 'r3'],
    ]);
    expect(disconnects).toHaveLength(1);
  });

  it('resumes again and again: several cuts, calls in between, nothing missed or doubled', async () => {
    const display = await connectQueue(proxy.url, await tokenFor('display'), { reconnection: true });
    sockets.push(display);
    const follower = followQueue(display);
    await follower.resync();
    const start = follower.seq!;
    const staff = await connectQueue(nodeA.url, await tokenFor('staff'));
    sockets.push(staff);

    const committed: QueueEvent[] = [];
    for (let round = 0; round < 3; round++) {
      await proxy.cut();
      await waitFor('the disconnect', () => !display.connected);
      for (let i = 0; i < 2; i++) committed.push(expectOk(await request(staff, 'queue:checkin', { dept: 'peds' })).event);
      await proxy.restore();
      await waitFor('the catch-up', () => follower.seq === committed.at(-1)!.seq, 15_000);
      // Some changes while connected too.
      committed.push(expectOk(await request(staff, 'queue:checkin', { dept: 'gp' })).event);
      await waitFor('the live change', () => follower.seq === committed.at(-1)!.seq);
    }
    await sleep(300);
    const mine = follower.events.filter((e) => e.seq > start);
    expect(mine).toEqual(committed);
    noDuplicates(follower.applied);
  });
});
