/**
 * A join is admitted only once Redis has said that the consultation is still
 * open: with Redis dead (the connection cut) or stalled (a redis-server held
 * with SIGSTOP, answering nothing), the join gets STORE_UNAVAILABLE within
 * MEDIA_STORE_TIMEOUT_MS and nobody enters the room. When Redis is back, the
 * same token joins, and an ended consultation is still refused. On both
 * engines (mediasoup and werift): admission comes before either.
 */
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { consultKeys } from '@clinic-hub/protocol';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { startTcpProxy, type TcpProxy } from '@clinic-hub/test-kit/tcp-proxy';
import { sleep, waitFor } from '@clinic-hub/test-kit/wait';
import type { RunningMediaServer } from '../src/media-server.js';
import { MEDIA_TEST_ENGINES, roomToken, startTestMediaServer } from '@clinic-hub/test-kit/media-node';
import { NodePeer } from '@clinic-hub/test-kit/node-peer';

const STORE_TIMEOUT_MS = 800;

let redisServer: TestRedis;
let proxy: TcpProxy;
let redis: Redis;
let server: RunningMediaServer;
const peers: NodePeer[] = [];

beforeAll(async () => {
  redisServer = await startTestRedis();
  redis = new Redis(redisServer.url);
  proxy = await startTcpProxy(redisServer.port);
});

afterEach(async () => {
  await Promise.all(peers.splice(0).map((peer) => peer.close()));
  redisServer.process.kill('SIGCONT');
  await proxy.restore().catch(() => undefined);
});

afterAll(async () => {
  await proxy?.close();
  redis?.disconnect();
  redisServer.process.kill('SIGCONT');
  await redisServer?.cleanup();
});

async function openConsult(consult: string): Promise<void> {
  await redis.hset(consultKeys('testclinic', consult).meta, { status: 'waiting', node: server.nodeId });
}

async function tryJoin(consult: string, sub: string): Promise<{ reply: string; ms: number; peer: NodePeer }> {
  const peer = await NodePeer.connect(server.url);
  peers.push(peer);
  const started = Date.now();
  const reply = await peer.request({ type: 'join', token: roomToken({ sub, part: 'patient', consult }) }, 15_000);
  return { reply: reply.type === 'error' ? reply.code : reply.type, ms: Date.now() - started, peer };
}

// Admission comes before either engine: the same on both.
describe.each(MEDIA_TEST_ENGINES)('checking that the consultation is open ($name)', ({ name, env }) => {
  beforeAll(async () => {
    server = await startTestMediaServer({
      redisUrl: proxy.url.replace('http://', 'redis://'),
      nodeId: `media-store-${name}`,
      env: { ...env, MEDIA_STORE_TIMEOUT_MS: String(STORE_TIMEOUT_MS) },
    });
  });

  afterAll(async () => {
    await server?.close();
  });

  it('refuses a join while Redis is unreachable, and admits it once Redis is back', async () => {
    const consult = `store-dead-${name}`;
    await openConsult(consult);
    await proxy.cut();
    const refused = await tryJoin(consult, 'patient-dead');
    expect(refused.reply).toBe('STORE_UNAVAILABLE');
    expect(refused.ms).toBeLessThan(STORE_TIMEOUT_MS + 2000);
    // Closed with "try again later": the page's reconnect backoff takes it from there.
    await refused.peer.until(() => refused.peer.closedCode !== null, 5000, 'the refused socket to close');
    expect(refused.peer.closedCode).toBe(1013);
    expect(server.rooms.get('testclinic', consult)).toBeUndefined();

    await proxy.restore();
    await waitFor('the node to see Redis again', async () => (await fetch(`${server.url}/healthz`)).status === 200);
    const admitted = await tryJoin(consult, 'patient-dead');
    expect(admitted.reply).toBe('ack');
    expect(server.rooms.get('testclinic', consult)?.participants.size).toBe(1);
  });

  it('refuses a join while Redis is stalled (SIGSTOP) instead of waiting for it or admitting', async () => {
    const consult = `store-stalled-${name}`;
    await openConsult(consult);
    redisServer.process.kill('SIGSTOP');
    const refused = await tryJoin(consult, 'patient-stalled');
    expect(refused.reply).toBe('STORE_UNAVAILABLE');
    // Within the budget, not whenever Redis comes back.
    expect(refused.ms).toBeGreaterThanOrEqual(STORE_TIMEOUT_MS - 50);
    expect(refused.ms).toBeLessThan(STORE_TIMEOUT_MS + 1500);
    expect(server.rooms.get('testclinic', consult)).toBeUndefined();
    redisServer.process.kill('SIGCONT');
    // The stalled reply that arrives now admits nobody.
    await sleep(300);
    expect(server.rooms.get('testclinic', consult)).toBeUndefined();
  });

  it('still refuses an ended consultation once Redis answers', async () => {
    const consult = `store-ended-${name}`;
    await redis.hset(consultKeys('testclinic', consult).meta, { status: 'ended', node: server.nodeId });
    const refused = await tryJoin(consult, 'patient-ended');
    expect(refused.reply).toBe('CONSULT_ENDED');
  });
});
