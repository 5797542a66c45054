/**
 * An AI worker stopped (SIGTERM) while Redis is unreachable: it must end,
 * not wait for Redis to come back (its BullMQ workers and connections would
 * otherwise wait: platform/src/redis/close.ts).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { terminateWithin } from '@clinic-hub/test-kit/processes';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { startTcpProxy, type TcpProxy } from '@clinic-hub/test-kit/tcp-proxy';
import { tempDir } from '@clinic-hub/test-kit/tmp';
import { sleep, waitFor } from '@clinic-hub/test-kit/wait';
import { fixtureWorkerEnv, startAiWorkerProcess, writeFixtureModels } from '@clinic-hub/test-kit/worker-fixtures';

const tmp = tempDir();
const modelsDir = `${tmp.dir}/models`;
let redis: TestRedis;
let proxy: TcpProxy;

beforeAll(async () => {
  redis = await startTestRedis();
  proxy = await startTcpProxy(redis.port);
  writeFixtureModels(modelsDir);
});

afterAll(async () => {
  await proxy?.close();
  await redis?.cleanup();
  tmp.cleanup();
});

it('ends on SIGTERM while Redis is unreachable, without an unhandled error', async () => {
  const worker = startAiWorkerProcess(fixtureWorkerEnv(`redis://127.0.0.1:${proxy.port}`, modelsDir, { AI_WORKER_ID: 'stop-without-redis', LOG_LEVEL: 'info' }));
  await waitFor('the worker to be ready', () => worker.output().includes('AI worker ready'), 30_000);
  await proxy.cut();
  // Long enough for its connections to see the network gone and start reconnecting.
  await sleep(1500);
  expect(worker.child.exitCode).toBeNull();
  expect(await terminateWithin(worker.child, 15_000), worker.output()).toBe(0);
  expect(worker.output()).not.toMatch(/Unhandled|uncaught/i);
}, 60_000);
