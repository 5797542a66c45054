import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { ClinicRegistry } from '../src/clinics/clinic-registry.js';
import { QueueService, clinicKeys } from '../src/queue/index.js';
import { TEST_CLINICS_DIR, startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { connectQueue, expectOk, followQueue, recordArrivals, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { startTcpProxy, type TcpProxy } from '@clinic-hub/test-kit/tcp-proxy';
import { sleep, waitFor } from '@clinic-hub/test-kit/wait';

const CLINIC = 'testclinic';

let redis: TestRedis;
let proxy: TcpProxy;
/** Reaches Redis through the proxy: its Redis connections can be broken. */
let proxied: HubNodeProcess;
/** Reaches Redis directly. */
let direct: HubNodeProcess;
let client: Redis;
let queue: QueueService;
const sockets: QueueSocket[] = [];

beforeAll(async () => {
  redis = await startTestRedis();
  proxy = await startTcpProxy(redis.port);
  [proxied, direct] = await Promise.all([
    startHubProcess({ redisUrl: `redis://127.0.0.1:${proxy.port}`, nodeId: 'node-proxied' }),
    startHubProcess({ redisUrl: redis.url, nodeId: 'node-direct' }),
  ]);
  client = new Redis(redis.url);
  queue = new QueueService(client, ClinicRegistry.fromDirectory(TEST_CLINICS_DIR));
});

afterAll(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  await Promise.all([proxied?.stop(), direct?.stop()]);
  await proxy?.close();
  client?.disconnect();
  await redis?.cleanup();
});

const currentSeq = async () => Number((await client.get(clinicKeys(CLINIC).seq)) ?? 0);

async function open(node: HubNodeProcess, role: Parameters<typeof tokenFor>[0]) {
  const socket = await connectQueue(node.url, await tokenFor(role));
  sockets.push(socket);
  return socket;
}

describe('a reply from Redis lost on the way back to the hub', () => {
  for (const requestId of [undefined, 'lost-reply-request-1']) {
    it(`does the action once ${requestId ? 'with' : 'without'} a client requestId`, async () => {
      const staff = await open(proxied, 'staff');
      const display = await open(proxied, 'display');
      const follower = followQueue(display);
      await follower.resync();
      const seqBefore = await currentSeq();

      proxy.swallowReplies(true);
      const pending = request(staff, 'queue:checkin', { dept: 'gp', ...(requestId ? { requestId } : {}) }, 15_000);
      // Redis has done it; the hub has not heard back.
      await waitFor('Redis to carry out the check-in', async () => (await currentSeq()) === seqBefore + 1);
      await sleep(100);
      // The connection breaks and comes back at once; ioredis sends unanswered commands again.
      proxy.swallowReplies(false);
      proxy.reset();
      const ack = await pending;

      const events = await queue.eventsAfter(CLINIC, seqBefore);
      expect(events.map((e) => e.type)).toEqual(['ticket.issued']);
      // The client hears of the one check-in that happened.
      expect(ack).toMatchObject({ ok: true, event: events[0] });
      // Without a requestId of its own, the client sent it once and is told it was done now. (With one,
      // `replayed: true` is what Redis saw: the hub's resend found the first result.)
      if (!requestId) expect(ack).toMatchObject({ replayed: false });
      // The display on that node gets it too, although its live message was lost with the connection.
      await waitFor('the display to have it', () => follower.seq === seqBefore + 1);
      await sleep(300);
      expect(await currentSeq()).toBe(seqBefore + 1);
    });
  }
});

describe('a hub node cut off from Redis for a moment', () => {
  it('still gets the calls made meanwhile through another node to its displays, without waiting for the next change', async () => {
    const display = await open(proxied, 'display');
    const follower = followQueue(display);
    const arrivals = recordArrivals(display);
    await follower.resync();
    const staff = await open(direct, 'staff');
    expectOk(await request(staff, 'queue:checkin', { dept: 'peds' }));
    const before = expectOk(await request(staff, 'queue:checkin', { dept: 'peds' }));
    await waitFor('the check-ins on the display', () => follower.seq === before.event.seq);

    await proxy.cut();
    await waitFor('the proxied node to notice', async () => (await fetch(`${proxied.url}/healthz`)).status === 503, 15_000);
    const call = expectOk(await request(staff, 'queue:call-next', { dept: 'peds', room: 'r3' }));
    await sleep(300);
    expect(follower.seq).toBe(before.event.seq);
    await proxy.restore();

    await waitFor('the call made meanwhile, on the display', () => follower.seq === call.event.seq, 15_000);
    expect(follower.events.at(-1)).toEqual(call.event);
    // It came to the display from its node, not from a sync the display asked for.
    expect(arrivals.events.filter((e) => e.seq === call.event.seq)).toHaveLength(1);
    expect(display.connected).toBe(true);

    // And live fan-out goes on as before.
    const done = expectOk(await request(staff, 'queue:done', { ticketId: call.event.ticket.id }));
    await waitFor('the next change', () => follower.seq === done.event.seq);
    await sleep(300);
    const seqs = arrivals.events.map((e) => e.seq);
    expect(new Set(seqs).size).toBe(seqs.length);
  });
});

describe('a hub node stopped while Redis is unreachable', () => {
  it('disconnects its clients and exits cleanly, without an unhandled error', async () => {
    const display = await open(proxied, 'display');
    const staff = await open(proxied, 'staff');
    await proxy.cut();
    await waitFor('the node to notice', async () => (await fetch(`${proxied.url}/healthz`)).status === 503, 15_000);
    // A broadcast through the Socket.IO adapter cannot reach Redis: refused, and nothing breaks.
    expect(await request(staff, 'queue:announce', { text: { ja: 'お知らせ', en: 'Notice' } })).toMatchObject({
      ok: false,
      error: { code: 'STORE_UNAVAILABLE' },
    });
    const disconnected = new Promise<string>((resolve) => display.once('disconnect', (reason) => resolve(reason)));
    await sleep(2500);
    expect(proxied.process.exitCode).toBeNull();
    await proxied.stop();
    expect(await disconnected).toBeTruthy();
    expect(proxied.process.exitCode, proxied.logs()).toBe(0);
    expect(proxied.logs()).not.toMatch(/MaxRetriesPerRequestError|Unhandled/);
  });
});
