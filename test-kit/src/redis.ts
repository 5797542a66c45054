import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRedisServer, type RedisProcess } from '@clinic-hub/platform/redis-server';

/** A private redis-server of one test file; `cleanup()` stops it and removes its directory. */
export type TestRedis = RedisProcess & { cleanup(): Promise<void> };

/** A private redis-server for one test file, on a free port, in a temporary directory. */
export async function startTestRedis(): Promise<TestRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'clinic-hub-redis-'));
  const redis = await startRedisServer({ dir });
  return {
    ...redis,
    async cleanup() {
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
