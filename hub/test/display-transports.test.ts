import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestHubs, stopTestHubs, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { connectQueue, expectOk, recordArrivals, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import type { TestRedis } from '@clinic-hub/test-kit/redis';
import { sleep, waitFor } from '@clinic-hub/test-kit/wait';

/**
 * The queue fan-out encodes each event once and, on uWebSockets.js, publishes
 * it to the clinic room's topic, emitting it apart only to the sockets not on
 * WebSocket (hub/src/socket/local-broadcast.ts). Whatever its transport, a
 * display gets every event once and in order: on WebSocket, on long-polling,
 * and while it upgrades from one to the other in the middle of a stream of
 * events. On both servers.
 */
let redis: TestRedis;
const hubs: Partial<Record<'uws' | 'node', HubNodeProcess>> = {};
const sockets: QueueSocket[] = [];

beforeAll(async () => {
  ({ redis, nodes: [hubs.uws, hubs.node] } = await startTestHubs([{ nodeId: 'transports-uws', server: 'uws' }, { nodeId: 'transports-node', server: 'node' }]));
});

afterAll(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  await stopTestHubs(redis, Object.values(hubs));
});

async function open(url: string, role: 'staff' | 'display', transports: ('websocket' | 'polling')[]) {
  const socket = await connectQueue(url, await tokenFor(role), { transports });
  sockets.push(socket);
  return socket;
}

describe.each(['uws', 'node'] as const)('queue events on %s', (kind) => {
  it('reach displays on WebSocket, on long-polling and upgrading between them, each once and in order', { timeout: 60_000 }, async () => {
    const url = hubs[kind]!.url;
    const staff = await open(url, 'staff', ['websocket']);
    const onWebSocket = recordArrivals(await open(url, 'display', ['websocket']));
    const polling = await open(url, 'display', ['polling']);
    const onPolling = recordArrivals(polling);

    const seqs: number[] = [];
    let upgrading: QueueSocket | null = null;
    let onUpgrading: ReturnType<typeof recordArrivals> | null = null;
    for (let i = 0; i < 40; i++) {
      seqs.push(expectOk(await request(staff, 'queue:checkin', { dept: 'gp' })).event.seq);
      // Half-way, a display connects on long-polling and upgrades to WebSocket while the events go on.
      if (i === 10) {
        upgrading = await open(url, 'display', ['polling', 'websocket']);
        onUpgrading = recordArrivals(upgrading);
      }
      await sleep(10);
    }
    const last = seqs.at(-1)!;
    for (const arrivals of [onWebSocket, onPolling, onUpgrading!]) {
      await waitFor('the last event at every display', () => arrivals.events.some((e) => e.seq === last));
    }
    await sleep(200);

    expect(onWebSocket.events.map((e) => e.seq)).toEqual(seqs);
    expect(onPolling.events.map((e) => e.seq)).toEqual(seqs);
    // From the first event it got (it connected half-way) to the last: none missing, none twice.
    const got = onUpgrading!.events.map((e) => e.seq);
    expect(got.length).toBeGreaterThan(10);
    expect(got).toEqual(seqs.slice(seqs.indexOf(got[0]!)));
    expect(upgrading!.io.engine.transport.name).toBe('websocket');
    expect(polling.io.engine.transport.name).toBe('polling');
  });
});
