import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRedisServer, type RedisProcess } from '@clinic-hub/platform/redis-server';

/** A private redis-server for one test file, on a free port, in a temporary directory. */
export async function startTestRedis(): Promise<RedisProcess & { cleanup(): Promise<void> }> {
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
