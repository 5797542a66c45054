import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { startRedisServer, type RedisProcess } from '@clinic-hub/platform/redis-server';
import { clinicKeys } from '../src/queue/index.js';
import { connectChat, chatRequest, type ChatSocket } from '@clinic-hub/test-kit/chat-client';
import { startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { connectQueue, expectOk, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import { waitFor } from '@clinic-hub/test-kit/wait';

/**
 * A Redis that is up but does not answer (SIGSTOP: a long fork, a frozen VM,
 * a saturated link) and a Redis that is gone. Either way every action gets an
 * answer within its budget (STORE_UNAVAILABLE), /readyz says 503 so the load
 * balancer sends no one new, and a retry with the same id after Redis is back
 * tells the client what happened, without doing anything twice.
 */
const REDIS_TIMEOUT_MS = 1000;
const ACTION_TIMEOUT_MS = 2500;

/** The test's own redis-server: SIGSTOP and SIGKILL go to this process only. */
let redis: RedisProcess;
let redisDir: string;
let hub: HubNodeProcess;
let client: Redis;
const sockets: { close(): void }[] = [];

beforeAll(async () => {
  redisDir = mkdtempSync(join(tmpdir(), 'clinic-hub-stall-'));
  redis = await startRedisServer({ dir: redisDir });
  hub = await startHubProcess({
    redisUrl: redis.url,
    nodeId: 'node-stall',
    env: { HUB_REDIS_TIMEOUT_MS: String(REDIS_TIMEOUT_MS), HUB_ACTION_TIMEOUT_MS: String(ACTION_TIMEOUT_MS) },
  });
  client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  client.on('error', () => undefined);
});

afterEach(() => resume());

afterAll(async () => {
  resume();
  for (const socket of sockets.splice(0)) socket.close();
  client?.disconnect();
  await hub?.stop();
  await redis?.stop();
  rmSync(redisDir, { recursive: true, force: true });
});

function stall(): void {
  redis.process.kill('SIGSTOP');
}
function resume(): void {
  if (redis?.process.exitCode === null) redis.process.kill('SIGCONT');
}

async function status(path: string): Promise<{ status: number; ms: number }> {
  const started = Date.now();
  try {
    const res = await fetch(`${hub.url}${path}`, { signal: AbortSignal.timeout(5000) });
    return { status: res.status, ms: Date.now() - started };
  } catch {
    return { status: 0, ms: Date.now() - started };
  }
}

async function timed<T>(work: Promise<T>): Promise<{ value: T; ms: number }> {
  const started = Date.now();
  const value = await work;
  return { value, ms: Date.now() - started };
}

const tickets = async () => client.hlen(clinicKeys('testclinic').tickets);


describe('a stalled Redis (SIGSTOP)', () => {
  it('answers actions with STORE_UNAVAILABLE within the budget, and /readyz and /healthz with 503', async () => {
    const staff = await connectQueue(hub.url, await tokenFor('staff'));
    sockets.push(staff);
    const chat: ChatSocket = await connectChat(hub.url, await tokenFor('staff', 'testclinic', { sub: 'staff:stall' }));
    sockets.push(chat);
    const before = await tickets();
    stall();

    const checkin = await timed(request(staff, 'queue:checkin', { dept: 'gp', requestId: 'stalled-checkin-1' }, 15_000));
    expect(checkin.value).toMatchObject({ ok: false, error: { code: 'STORE_UNAVAILABLE' } });
    expect(checkin.ms).toBeLessThan(ACTION_TIMEOUT_MS + 1000);

    const send = await timed(chatRequest(chat, 'chat:create', { kind: 'staff', id: 'stall-room', title: 'stall' }, 15_000));
    expect(send.value).toMatchObject({ ok: false, error: { code: 'STORE_UNAVAILABLE' } });
    expect(send.ms).toBeLessThan(ACTION_TIMEOUT_MS + 1000);

    const api = await timed(fetch(`${hub.url}/api/clinics/testclinic/queue`, { headers: { authorization: `Bearer ${await tokenFor('staff')}` }, signal: AbortSignal.timeout(15_000) }));
    expect(api.value.status).toBe(503);
    expect(((await api.value.json()) as { error: { code: string } }).error.code).toBe('STORE_UNAVAILABLE');
    expect(api.ms).toBeLessThan(ACTION_TIMEOUT_MS + 1000);

    for (const path of ['/readyz', '/healthz']) {
      const probe = await status(path);
      expect(probe, path).toMatchObject({ status: 503 });
      expect(probe.ms, path).toBeLessThan(1500);
    }
    expect(hub.process.exitCode).toBeNull();

    // Back: the stalled check-in ran when Redis woke up (it had been sent); the retry with its requestId says so.
    resume();
    await waitFor('/readyz 200 again', async () => (await status('/readyz')).status === 200, 15_000);
    const retry = expectOk(await request(staff, 'queue:checkin', { dept: 'gp', requestId: 'stalled-checkin-1' }));
    expect(retry.replayed).toBe(true);
    expect(await tickets()).toBe(before + 1);
    expectOk(await request(staff, 'queue:checkin', { dept: 'gp' }));
    expect(await tickets()).toBe(before + 2);
  }, 60_000);
});

describe('a dead Redis', () => {
  it('answers actions with STORE_UNAVAILABLE at once, /readyz 503, and everything works again once it is back', async () => {
    const staff = await connectQueue(hub.url, await tokenFor('staff'));
    sockets.push(staff);
    const before = await tickets();
    redis.process.kill('SIGKILL');
    await new Promise<void>((resolve) => (redis.process.exitCode !== null || redis.process.signalCode !== null ? resolve() : redis.process.once('exit', () => resolve())));

    const checkin = await timed(request(staff, 'queue:checkin', { dept: 'gp', requestId: 'dead-redis-checkin-1' }, 15_000));
    expect(checkin.value).toMatchObject({ ok: false, error: { code: 'STORE_UNAVAILABLE' } });
    expect(checkin.ms).toBeLessThan(ACTION_TIMEOUT_MS + 1000);
    await waitFor('/readyz 503', async () => (await status('/readyz')).status === 503, 10_000);
    expect(hub.process.exitCode).toBeNull();

    redis = await startRedisServer({ dir: redisDir, port: redis.port });
    await waitFor('/readyz 200 again', async () => (await status('/readyz')).status === 200, 20_000);
    const retry = expectOk(await request(staff, 'queue:checkin', { dept: 'gp', requestId: 'dead-redis-checkin-1' }));
    // Nothing reached the dead Redis: the retry is the first time it is done.
    expect(retry.replayed).toBe(false);
    expect(await tickets()).toBe(before + 1);
  }, 60_000);
});
