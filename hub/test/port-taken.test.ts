/**
 * A hub never shares its port: uWebSockets.js sets SO_REUSEPORT unless told
 * otherwise, so a second hub started on a taken port used to listen beside the
 * first, and the kernel split new connections between the two (CI saw a
 * benchmark's clients reach another test's hub and be refused AUTH_INVALID).
 * Now the second one exits, naming the port, and the first goes on.
 */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_CLINICS_DIR, startHubProcess, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';

let redis: TestRedis;
let first: HubNodeProcess;

beforeAll(async () => {
  redis = await startTestRedis();
  first = await startHubProcess({ redisUrl: redis.url, nodeId: 'port-first', server: 'uws' });
}, 60_000);

afterAll(async () => {
  await first?.stop();
  await redis?.cleanup();
});

describe('a hub started on a port another hub listens on', () => {
  it.each(['uws', 'node'] as const)('exits naming the port (%s), and the first hub goes on', { timeout: 60_000 }, async (server) => {
    const second = spawnSync(process.execPath, ['--import', 'tsx', resolve(import.meta.dirname, '../src/main.ts')], {
      cwd: resolve(import.meta.dirname, '../..'),
      env: {
        PATH: process.env.PATH ?? '',
        REDIS_URL: redis.url,
        HUB_TOKEN_SECRET: 'a-secret-that-is-long-enough-for-hs256-0123456789',
        CLINICS_DIR: TEST_CLINICS_DIR,
        HUB_HOST: '127.0.0.1',
        HUB_PORT: String(first.port),
        HUB_SERVER: server,
        HUB_NODE_ID: `port-second-${server}`,
        LOG_LEVEL: 'warn',
      },
      encoding: 'utf8',
      // Before, the second one started and ran: killed here, it shows as a null status.
      timeout: 20_000,
    });
    expect(second.status, second.stderr).not.toBe(0);
    expect(second.status, second.stderr).not.toBeNull();
    expect(second.stderr).toMatch(new RegExp(`cannot listen on 127\\.0\\.0\\.1:${first.port}|EADDRINUSE`));
    expect(first.process.exitCode).toBeNull();
    expect((await fetch(`${first.url}/healthz`)).status).toBe(200);
  });
});
