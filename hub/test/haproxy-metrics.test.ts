import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHaproxy, type Haproxy } from './support/haproxy.js';
import { startHubProcess, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';

/**
 * deploy/haproxy/haproxy.cfg, run by Debian's haproxy in front of a hub:
 * the hub's /metrics is for Prometheus on the internal network, never for
 * whoever reaches the load balancer.
 */
let redis: TestRedis;
let hub: HubNodeProcess;
let lb: Haproxy;

beforeAll(async () => {
  redis = await startTestRedis();
  hub = await startHubProcess({ redisUrl: redis.url, nodeId: 'hub-metrics' });
  lb = await startHaproxy({ 'hub-1': hub.port, 'hub-2': hub.port });
}, 60_000);

afterAll(async () => {
  await lb?.stop();
  await hub?.stop();
  await redis?.cleanup();
});

/** Sends the path as written (fetch would normalise it). */
async function rawGet(base: string, path: string): Promise<{ status: number; body: string }> {
  const { request } = await import('node:http');
  const { port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET' }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('/metrics behind the load balancer', () => {
  it('is served by the hub itself, on the internal network', async () => {
    const direct = await rawGet(hub.url, '/metrics');
    expect(direct.status).toBe(200);
    expect(direct.body).toContain('clinic_hub_connected_clients');
  });

  it('is answered 404 NOT_FOUND through the load balancer, however the path is spelled', async () => {
    for (const path of ['/metrics', '/metrics?format=text', '/metrics/', '//metrics', '/%6Detrics', '/%6d%65trics', '/METRICS', '/Metrics?x=1']) {
      const res = await rawGet(lb.url, path);
      expect(res.status, path).toBe(404);
      expect(res.body, path).not.toContain('clinic_hub');
      expect(JSON.parse(res.body), path).toEqual({ error: { code: 'NOT_FOUND', message: 'No such route.' } });
    }
  });

  it('still passes everything else through', async () => {
    expect((await rawGet(lb.url, '/healthz')).status).toBe(200);
    expect((await rawGet(lb.url, '/readyz')).status).toBe(200);
    expect((await rawGet(lb.url, '/socket.io/?EIO=4&transport=polling')).status).toBe(200);
  });
});
