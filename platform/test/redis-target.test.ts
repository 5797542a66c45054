import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeRedisTarget, readRedisTarget, redisTargetForService } from '../src/redis/connect.js';

const codes = (env: NodeJS.ProcessEnv) => {
  const read = readRedisTarget(env);
  return read.ok ? [] : read.problems.map((p) => `${p.variable}:${p.code}`);
};

describe('readRedisTarget: one Redis, Sentinel or Cluster from the environment', () => {
  it('reads each of the three ways', () => {
    expect(readRedisTarget({ REDIS_URL: 'redis://:pw@redis:6379/2' })).toEqual({ ok: true, target: { mode: 'single', url: 'redis://:pw@redis:6379/2' } });
    expect(readRedisTarget({ REDIS_SENTINELS: 's1:26379, s2:26380,[::1]:26381', REDIS_SENTINEL_NAME: 'clinic-hub', REDIS_PASSWORD: 'pw', REDIS_SENTINEL_PASSWORD: 'spw' })).toEqual({
      ok: true,
      target: {
        mode: 'sentinel',
        name: 'clinic-hub',
        sentinels: [
          { host: 's1', port: 26379 },
          { host: 's2', port: 26380 },
          { host: '::1', port: 26381 },
        ],
        password: 'pw',
        sentinelPassword: 'spw',
      },
    });
    expect(readRedisTarget({ REDIS_CLUSTER_NODES: 'r1:7000,r2:7001', REDIS_USERNAME: 'hub' })).toEqual({
      ok: true,
      target: { mode: 'cluster', nodes: [{ host: 'r1', port: 7000 }, { host: 'r2', port: 7001 }], username: 'hub' },
    });
  });

  it('names the variable and a code for each mistake', () => {
    expect(codes({})).toEqual(['REDIS_URL:REDIS_CONFIG_MISSING']);
    expect(codes({ REDIS_URL: 'redis://a:1', REDIS_SENTINELS: 's:1' })).toEqual(['REDIS_URL / REDIS_SENTINELS:REDIS_CONFIG_CONFLICT']);
    expect(codes({ REDIS_URL: 'http://a:1' })).toEqual(['REDIS_URL:REDIS_URL_INVALID']);
    expect(codes({ REDIS_URL: 'redis://a:1', REDIS_PASSWORD: 'x' })).toEqual(['REDIS_PASSWORD:REDIS_PASSWORD_UNUSED']);
    expect(codes({ REDIS_SENTINELS: 's1:26379' })).toEqual(['REDIS_SENTINEL_NAME:REDIS_SENTINEL_NAME_MISSING']);
    expect(codes({ REDIS_SENTINELS: 's1', REDIS_SENTINEL_NAME: 'm' })).toEqual(['REDIS_SENTINELS:REDIS_SENTINELS_INVALID']);
    expect(codes({ REDIS_SENTINELS: 's1:99999', REDIS_SENTINEL_NAME: 'm' })).toEqual(['REDIS_SENTINELS:REDIS_SENTINELS_INVALID']);
    expect(codes({ REDIS_CLUSTER_NODES: ',', REDIS_SENTINEL_NAME: 'm' })).toEqual(['REDIS_CLUSTER_NODES:REDIS_CLUSTER_NODES_INVALID', 'REDIS_SENTINEL_NAME:REDIS_PASSWORD_UNUSED']);
  });

  it('reads the passwords from their _FILE twins, and never shows them', () => {
    const dir = mkdtempSync(join(tmpdir(), 'redis-target-'));
    writeFileSync(join(dir, 'pw'), 's3cret\n');
    const read = readRedisTarget({ REDIS_SENTINELS: 's1:26379', REDIS_SENTINEL_NAME: 'm', REDIS_PASSWORD_FILE: join(dir, 'pw') }, { readSecretFiles: true });
    expect(read.ok && read.target.mode === 'sentinel' && read.target.password).toBe('s3cret');
    expect(describeRedisTarget({ mode: 'single', url: 'redis://:s3cret@redis:6379/1' })).toBe('redis://redis:6379/1');
    expect(describeRedisTarget(read.ok ? read.target : { mode: 'single', url: '' })).toBe('sentinel m via s1:26379');
  });

  it('a service refuses Cluster with its own code unless it accepts one (the hub does)', () => {
    const service = redisTargetForService({ REDIS_CLUSTER_NODES: 'r1:7000' });
    expect(service.target).toBeNull();
    expect(service.lines.join('\n')).toMatch(/REDIS_CLUSTER_NODES: .*\[REDIS_CLUSTER_UNSUPPORTED\]/);
    expect(redisTargetForService({ REDIS_CLUSTER_NODES: 'r1:7000,r2:7001', REDIS_PASSWORD: 'pw' }, { acceptsCluster: true })).toEqual({
      target: { mode: 'cluster', nodes: [{ host: 'r1', port: 7000 }, { host: 'r2', port: 7001 }], password: 'pw' },
      lines: [],
    });
  });
});
