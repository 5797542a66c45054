/**
 * The media-server stopped (SIGTERM) while Redis is unreachable: it must
 * end, not wait for Redis to come back (its recording jobs' BullMQ queues and
 * its connections would otherwise wait: platform/src/redis/close.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startMediaServerProcess } from '@clinic-hub/test-kit/media-node';
import { terminateWithin } from '@clinic-hub/test-kit/processes';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { startTcpProxy, type TcpProxy } from '@clinic-hub/test-kit/tcp-proxy';
import { sleep } from '@clinic-hub/test-kit/wait';

const recordingsDir = mkdtempSync(join(tmpdir(), 'stop-without-redis-'));
let redis: TestRedis;
let proxy: TcpProxy;

beforeAll(async () => {
  redis = await startTestRedis();
  proxy = await startTcpProxy(redis.port);
});

afterAll(async () => {
  await proxy?.close();
  await redis?.cleanup();
  rmSync(recordingsDir, { recursive: true, force: true });
});

it('ends on SIGTERM while Redis is unreachable, without an unhandled error', async () => {
  const media = await startMediaServerProcess({
    REDIS_URL: `redis://127.0.0.1:${proxy.port}`,
    MEDIA_NODE_ID: 'stop-without-redis',
    // With recording on: its jobs' worker and queues close through Redis too.
    RECORDING_KEY: Buffer.alloc(32, 9).toString('base64'),
    RECORDINGS_DIR: recordingsDir,
  });
  await proxy.cut();
  // Long enough for its connections to see the network gone and start reconnecting.
  await sleep(1500);
  expect(media.process.exitCode).toBeNull();
  expect(await terminateWithin(media.process, 15_000), media.logs()).toBe(0);
  expect(media.logs()).not.toMatch(/Unhandled|uncaught/i);
}, 60_000);
