import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HUB_ENVIRONMENT_VARIABLES, loadConfig } from '../src/config.js';
import { configError } from './support/config-error.js';

const GOOD = {
  REDIS_URL: 'redis://127.0.0.1:6379',
  HUB_TOKEN_SECRET: 'a-secret-that-is-long-enough-for-hs256-0123456789',
};

describe('loadConfig', () => {
  it('takes defaults for what is not set', () => {
    const config = loadConfig(GOOD);
    expect(config).toMatchObject({
      port: 8080,
      host: '0.0.0.0',
      server: 'uws',
      redis: { mode: 'single', url: GOOD.REDIS_URL },
      maxPayloadBytes: 16_384,
      publicUrl: null,
      tokenTtlSeconds: { display: 12 * 3600, patient: 12 * 3600, default: 10 * 3600 },
      logLevel: 'info',
    });
    expect(config.nodeId).toMatch(/-\d+$/);
  });

  it('runs on a Redis Cluster (REDIS_CLUSTER_NODES), waiting for one replica per shard by default', () => {
    const config = loadConfig({ HUB_TOKEN_SECRET: GOOD.HUB_TOKEN_SECRET, REDIS_CLUSTER_NODES: 'r1:7000,r2:7000,r3:7000' });
    expect(config.redis).toEqual({ mode: 'cluster', nodes: [{ host: 'r1', port: 7000 }, { host: 'r2', port: 7000 }, { host: 'r3', port: 7000 }] });
    expect(config.redisAck).toEqual({ replicas: 1, timeoutMs: 1000 });
    expect(configError({ HUB_TOKEN_SECRET: GOOD.HUB_TOKEN_SECRET, REDIS_CLUSTER_NODES: 'r1' })).toMatch(/REDIS_CLUSTER_NODES: .*\[REDIS_CLUSTER_NODES_INVALID\]/);
  });

  it('reads every variable it knows', () => {
    const config = loadConfig({
      ...GOOD,
      HUB_PORT: '9000',
      HUB_HOST: '127.0.0.1',
      HUB_PUBLIC_URL: 'https://hub.example.jp',
      HUB_NODE_ID: 'hub-1',
      HUB_SERVER: 'node',
      CLINICS_DIR: '/etc/clinics',
      HUB_MAX_PAYLOAD_BYTES: '2048',
      HUB_DISPLAY_TOKEN_TTL_SECONDS: '600',
      LOG_LEVEL: 'debug',
    });
    expect(config).toMatchObject({
      port: 9000,
      host: '127.0.0.1',
      publicUrl: 'https://hub.example.jp',
      nodeId: 'hub-1',
      server: 'node',
      clinicsDir: '/etc/clinics',
      maxPayloadBytes: 2048,
      tokenTtlSeconds: { display: 600 },
      logLevel: 'debug',
    });
  });

  it.each([
    ['HUB_PORT', 'eighty'],
    ['HUB_PORT', '70000'],
    ['HUB_PORT', '-1'],
    ['HUB_PORT', '80.5'],
    ['REDIS_URL', 'http://127.0.0.1:6379'],
    ['REDIS_URL', '127.0.0.1:6379'],
    ['HUB_SERVER', 'nginx'],
    ['HUB_PUBLIC_URL', 'not a url'],
    ['HUB_NODE_ID', 'has spaces'],
    ['HUB_MAX_PAYLOAD_BYTES', '10'],
    ['HUB_DISPLAY_TOKEN_TTL_SECONDS', '5'],
    ['LOG_LEVEL', 'loud'],
  ])('stops at %s=%s, naming the variable and the value', (variable, value) => {
    const message = configError({ ...GOOD, [variable]: value });
    expect(message).toContain(variable);
    expect(message).toContain(`"${value}"`);
  });

  it('names a required variable that is missing', () => {
    expect(configError({ HUB_TOKEN_SECRET: GOOD.HUB_TOKEN_SECRET })).toContain('REDIS_URL');
    expect(configError({ REDIS_URL: GOOD.REDIS_URL })).toContain('HUB_TOKEN_SECRET');
  });

  it('refuses a short token secret without printing it', () => {
    const message = configError({ ...GOOD, HUB_TOKEN_SECRET: 'hunter2-short' });
    expect(message).toContain('HUB_TOKEN_SECRET');
    expect(message).toContain('32');
    expect(message).not.toContain('hunter2');
  });

  it('lists every bad variable at once', () => {
    const message = configError({ ...GOOD, HUB_PORT: 'x', REDIS_URL: 'nope' });
    expect(message).toContain('HUB_PORT');
    expect(message).toContain('REDIS_URL');
  });
});

describe('hub/src/main.ts started with a bad variable', () => {
  const main = resolve(import.meta.dirname, '../src/main.ts');
  const run = (env: Record<string, string>) =>
    spawnSync(process.execPath, ['--import', 'tsx', main], {
      cwd: resolve(import.meta.dirname, '../..'),
      env: { PATH: process.env.PATH ?? '', ...env },
      encoding: 'utf8',
      timeout: 20_000,
    });

  it('exits non-zero and says which variable is wrong', () => {
    const result = run({ ...GOOD, HUB_PORT: 'eighty' });
    expect(result.status).not.toBe(0);
    expect(result.status).not.toBeNull();
    expect(result.stderr).toContain('HUB_PORT');
    expect(result.stderr).toContain('eighty');
  });

  it('exits non-zero when a required variable is missing, and does not print the secret', () => {
    const result = run({ HUB_TOKEN_SECRET: 'too-short-secret' });
    expect(result.status).not.toBe(0);
    expect(result.status).not.toBeNull();
    expect(result.stderr).toContain('REDIS_URL');
    expect(result.stderr).toContain('HUB_TOKEN_SECRET');
    expect(result.stderr).not.toContain('too-short-secret');
  });

  it('exits non-zero naming CLINICS_DIR when there is no clinic to serve', () => {
    const result = run({ ...GOOD, CLINICS_DIR: '/nonexistent/clinics', HUB_PORT: '0', LOG_LEVEL: 'silent' });
    expect(result.status).not.toBe(0);
    expect(result.status).not.toBeNull();
    expect(result.stderr).toContain('CLINICS_DIR');
  });
});

describe('loadConfig: operations and security settings', () => {
  it('defaults to same-origin sockets, rate limits on, and a drain of 3 s grace and 10 s for acks', () => {
    expect(loadConfig(GOOD)).toMatchObject({
      allowedOrigins: [],
      rateLimits: { socket: { perSecond: 50, burst: 200 }, user: { perSecond: 100, burst: 500 } },
      drain: { graceMs: 3000, timeoutMs: 10_000 },
    });
  });

  it('reads the allowed origins, the limits and the drain timings', () => {
    const config = loadConfig({
      ...GOOD,
      HUB_ALLOWED_ORIGINS: ' https://kiosk.clinic.example.jp , http://localhost:5173/',
      HUB_RATE_LIMIT_SOCKET_PER_SECOND: '0',
      HUB_RATE_LIMIT_SOCKET_BURST: '10',
      HUB_RATE_LIMIT_USER_PER_SECOND: '2.5',
      HUB_RATE_LIMIT_USER_BURST: '20',
      HUB_RATE_LIMIT_ADDRESS_PER_SECOND: '4',
      HUB_DRAIN_GRACE_MS: '0',
      HUB_DRAIN_TIMEOUT_MS: '30000',
    });
    expect(config.allowedOrigins).toEqual(['https://kiosk.clinic.example.jp', 'http://localhost:5173']);
    expect(config.rateLimits).toEqual({ socket: { perSecond: 0, burst: 10 }, user: { perSecond: 2.5, burst: 20 }, address: { perSecond: 4, burst: 100 } });
    expect(config.drain).toEqual({ graceMs: 0, timeoutMs: 30_000 });
    expect(loadConfig({ ...GOOD, HUB_ALLOWED_ORIGINS: 'https://a.example.jp,*' }).allowedOrigins).toBe('*');
  });

  it.each([
    ['HUB_ALLOWED_ORIGINS', 'kiosk.clinic.example.jp'],
    ['HUB_ALLOWED_ORIGINS', 'https://clinic.example.jp/page'],
    ['HUB_ALLOWED_ORIGINS', 'ftp://clinic.example.jp'],
    ['HUB_RATE_LIMIT_SOCKET_PER_SECOND', '-1'],
    ['HUB_RATE_LIMIT_USER_BURST', '0'],
    ['HUB_DRAIN_TIMEOUT_MS', 'soon'],
  ])('stops at %s=%s, naming the variable', (variable, value) => {
    const message = configError({ ...GOOD, [variable]: value });
    expect(message).toContain(variable);
  });

  it('lists every variable it reads, the *_FILE variants of secrets and the notification ones included', () => {
    for (const name of ['HUB_PORT', 'HUB_TOKEN_SECRET', 'HUB_TOKEN_SECRET_FILE', 'HUB_ATTACHMENT_KEY_FILE', 'REDIS_URL_FILE', 'HUB_DRAIN_GRACE_MS', 'NOTIFY_ATTEMPTS', 'NOTIFY_SMS_AUTH_TOKEN_FILE']) {
      expect(HUB_ENVIRONMENT_VARIABLES).toContain(name);
    }
    expect(HUB_ENVIRONMENT_VARIABLES).not.toContain('HUB_PORT_FILE');
  });
});
