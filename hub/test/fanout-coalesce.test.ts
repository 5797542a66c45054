import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { QueueEvent } from '@clinic-hub/protocol';
import { startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { connectQueue, expectOk, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { sleep, waitFor } from '@clinic-hub/test-kit/wait';

/**
 * HUB_FANOUT_COALESCE_MS: queue events that arrive within the window reach a
 * display together (one write per socket), in commit order, each once. A wide
 * window here (the largest allowed, 50 ms) makes "together" unmistakable: two
 * events committed 10 ms apart arrive in the same read, within a millisecond or two.
 */
let redis: TestRedis;
let hub: HubNodeProcess;
const sockets: QueueSocket[] = [];

beforeAll(async () => {
  redis = await startTestRedis();
  hub = await startHubProcess({ redisUrl: redis.url, nodeId: 'coalesce', env: { HUB_FANOUT_COALESCE_MS: '50' } });
});

afterAll(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  await hub?.stop();
  await redis?.cleanup();
});

describe('queue fan-out with a coalescing window', () => {
  it('delivers events committed within the window together, in order, each once', async () => {
    const staff = await connectQueue(hub.url, await tokenFor('staff'));
    const display = await connectQueue(hub.url, await tokenFor('display'));
    sockets.push(staff, display);
    const arrivals: { event: QueueEvent; at: number }[] = [];
    display.on('queue:event', (event) => arrivals.push({ event, at: performance.now() }));

    // A first action warms the path (scripts loaded, code compiled): the pair below must commit within one window.
    expectOk(await request(staff, 'queue:checkin', { dept: 'gp' }));
    await waitFor('the warm-up event at the display', () => arrivals.length === 1, 5000);
    arrivals.length = 0;

    const first = expectOk(await request(staff, 'queue:checkin', { dept: 'gp' }));
    await sleep(10);
    const second = expectOk(await request(staff, 'queue:checkin', { dept: 'gp' }));
    await waitFor('both events at the display', () => arrivals.length >= 2, 5000);
    await sleep(200);

    expect(arrivals.map((a) => a.event.seq)).toEqual([first.event.seq, second.event.seq]);
    expect(arrivals.map((a) => a.event)).toEqual([first.event, second.event]);
    // Committed at least 10 ms apart (Redis clock), received together.
    expect(second.event.at - first.event.at).toBeGreaterThanOrEqual(9);
    expect(arrivals[1]!.at - arrivals[0]!.at).toBeLessThan(2);

    // An event alone still goes out, after the window.
    const third = expectOk(await request(staff, 'queue:checkin', { dept: 'gp' }));
    await waitFor('the third event', () => arrivals.length === 3, 5000);
    expect(arrivals[2]!.event).toEqual(third.event);
  });
});
