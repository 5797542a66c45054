/**
 * The media-server as its own process (`npm run media`'s entry point):
 * configuration errors, metrics, and draining on SIGTERM.
 */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { metricValue } from '@clinic-hub/test-kit/metrics-text';
import { REPO_ROOT } from '@clinic-hub/test-kit/hub-node';
import { MEDIA_TEST_ENGINES, roomToken, startMediaServerProcess, type MediaServerProcess } from '@clinic-hub/test-kit/media-node';
import { NodePeer } from '@clinic-hub/test-kit/node-peer';

let redisServer: TestRedis;
let redis: Redis;

beforeAll(async () => {
  redisServer = await startTestRedis();
  redis = new Redis(redisServer.url);
});

afterAll(async () => {
  redis?.disconnect();
  await redisServer?.cleanup();
});

function runMain(env: Record<string, string>): { status: number | null; stderr: string } {
  const result = spawnSync(process.execPath, ['--import', 'tsx', resolve(import.meta.dirname, '../src/main.ts')], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH, ...env },
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { status: result.status, stderr: result.stderr };
}

describe('configuration', () => {
  it('stops with exit code 78 and names each bad variable, never echoing a secret', () => {
    const { status, stderr } = runMain({
      REDIS_URL: 'http://not-redis',
      MEDIA_TOKEN_SECRET: 'short-secret',
      MEDIA_UDP_PORT_MIN: '50000',
      MEDIA_UDP_PORT_MAX: '40000',
      MEDIA_ANNOUNCED_IP: 'media.example.jp',
      MEDIA_TURN_SERVERS: '{"urls":"turn:x"}',
    });
    expect(status).toBe(78);
    for (const variable of ['REDIS_URL', 'MEDIA_TOKEN_SECRET', 'MEDIA_UDP_PORT_MAX', 'MEDIA_ANNOUNCED_IP', 'MEDIA_TURN_SERVERS']) expect(stderr).toContain(variable);
    expect(stderr).not.toContain('short-secret');
    expect(stderr).not.toContain('turn:x');
  });
});

// Draining and the metrics are the node's, not an engine's: the same on both.
describe.each(MEDIA_TEST_ENGINES)('a running node ($name)', ({ name, env }) => {
  const nodeId = `media-drain-${name}`;
  let node: MediaServerProcess;
  afterAll(async () => {
    await node?.stop();
  });

  it('serves metrics labelled with its node, and drains on SIGTERM', { timeout: 60_000 }, async () => {
    node = await startMediaServerProcess({ ...env, REDIS_URL: redisServer.url, MEDIA_NODE_ID: nodeId, MEDIA_DRAIN_GRACE_MS: '2500', LOG_LEVEL: 'warn' });
    if (node.process.exitCode !== null) throw new Error(`the media-server exited: ${node.logs()}`);
    const consult = `drain-room-${name}`;
    const doctor = await NodePeer.join(node.url, roomToken({ sub: 'doctor-dr', part: 'doctor', consult }));
    const text = await (await fetch(`${node.url}/metrics`)).text();
    const node_ = { node: nodeId };
    expect(metricValue(text, 'clinic_media_rooms', node_)).toBe(1);
    expect(metricValue(text, 'clinic_media_participants', node_)).toBe(1);
    expect(metricValue(text, 'clinic_media_forwarded_streams', node_)).toBe(0);
    expect(metricValue(text, 'clinic_media_joins_total', node_)).toBe(1);
    expect(metricValue(text, 'clinic_media_bitrate_bits_per_second', { ...node_, direction: 'in' })).toBeGreaterThanOrEqual(0);
    expect(metricValue(text, 'clinic_media_keyframe_requests_total', { ...node_, direction: 'sent' })).toBeGreaterThanOrEqual(0);
    // Every series carries the node.
    const samples = text.split('\n').filter((line) => line.startsWith('clinic_media_'));
    expect(samples.length).toBeGreaterThan(20);
    expect(samples.filter((line) => !line.includes(`node="${nodeId}"`))).toEqual([]);
    expect((await fetch(`${node.url}/readyz`)).status).toBe(200);

    const drainStarted = Date.now();
    node.process.kill('SIGTERM');
    // Draining: not ready, marked in the registry, no new rooms; the room here goes on and may still be joined.
    for (let i = 0; i < 50 && (await fetch(`${node.url}/readyz`)).status !== 503; i++) await new Promise((r) => setTimeout(r, 50));
    expect((await fetch(`${node.url}/readyz`)).status).toBe(503);
    expect(await redis.hget(`media:node:${nodeId}`, 'draining')).toBe('1');
    const newcomer = await NodePeer.connect(node.url);
    const refused = await newcomer.request({ type: 'join', token: roomToken({ sub: 'p-new', part: 'patient', consult: `drain-room-new-${name}` }) });
    expect(refused).toMatchObject({ type: 'error', code: 'MEDIA_NODE_UNAVAILABLE' });
    const patient = await NodePeer.join(node.url, roomToken({ sub: 'patient-dr', part: 'patient', consult }));
    expect(patient.joined?.participants.map((p) => p.id)).toEqual(['doctor-dr']);

    // After the grace the room is closed, everyone is told, and the node leaves the registry and exits cleanly.
    await doctor.waitFor((m) => m.type === 'closed' && m.reason === 'draining', 10_000);
    await patient.waitFor((m) => m.type === 'closed' && m.reason === 'draining', 10_000);
    const waited = Date.now() - drainStarted;
    expect(await node.exited).toBe(0);
    process.stdout.write(`drained after ${waited} ms (grace 2500 ms)\n`);
    expect(waited).toBeGreaterThanOrEqual(2400);
    expect(await redis.exists(`media:node:${nodeId}`)).toBe(0);
    expect(await redis.sismember('media:nodes', nodeId)).toBe(0);
    await Promise.all([doctor.close(), patient.close(), newcomer.close()]);
  });

  it('drains at once when no room is left', { timeout: 30_000 }, async () => {
    const idle = await startMediaServerProcess({ ...env, REDIS_URL: redisServer.url, MEDIA_NODE_ID: `media-idle-${name}`, MEDIA_DRAIN_GRACE_MS: '60000', LOG_LEVEL: 'warn' });
    const started = Date.now();
    idle.process.kill('SIGTERM');
    expect(await idle.exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});
