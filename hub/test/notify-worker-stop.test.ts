/**
 * The notification worker stopped (SIGTERM) while Redis is unreachable: it
 * must end, not wait for Redis to come back. Its connections are made with
 * maxRetriesPerRequest: null, so a close that sends Redis commands (BullMQ's
 * worker and queue closes, QUIT) would otherwise wait for good
 * (platform/src/redis/close.ts).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startNotifyFixture, startWorkerProcess, type NotifyFixture } from '@clinic-hub/test-kit/notify-fixture';
import { terminateWithin } from '@clinic-hub/test-kit/processes';
import { startTcpProxy, type TcpProxy } from '@clinic-hub/test-kit/tcp-proxy';
import { sleep } from '@clinic-hub/test-kit/wait';

let fixture: NotifyFixture;
let proxy: TcpProxy;

beforeAll(async () => {
  fixture = await startNotifyFixture();
  proxy = await startTcpProxy(Number(new URL(fixture.redisUrl).port));
});

afterAll(async () => {
  await proxy?.close();
  await fixture?.stop();
});

it('ends on SIGTERM while Redis is unreachable, without an unhandled error', async () => {
  const worker = await startWorkerProcess(fixture.env({ REDIS_URL: `redis://127.0.0.1:${proxy.port}` }));
  await proxy.cut();
  // Long enough for its connections to see the network gone and start reconnecting.
  await sleep(1500);
  expect(worker.process.exitCode).toBeNull();
  expect(await terminateWithin(worker.process, 15_000), worker.logs()).toBe(0);
  expect(worker.logs()).not.toMatch(/Unhandled|uncaught/i);
}, 40_000);
