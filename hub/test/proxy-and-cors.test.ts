import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHubProcess, tokenFor, type HubNodeProcess } from './support/hub-node.js';
import { connectQueue, expectOk, request, type QueueSocket } from './support/queue-client.js';
import { startTestRedis } from './support/redis.js';

const PORTAL = 'https://portal.example.jp';
let redis: Awaited<ReturnType<typeof startTestRedis>>;
/** Behind "the load balancer": 127.0.0.1 is a trusted proxy. */
let behindProxy: HubNodeProcess;
/** Trusts nobody: X-Forwarded-For is just a header anyone can write. */
let direct: HubNodeProcess;
const sockets: QueueSocket[] = [];

beforeAll(async () => {
  redis = await startTestRedis();
  [behindProxy, direct] = await Promise.all([
    startHubProcess({ redisUrl: redis.url, nodeId: 'proxied', env: { HUB_TRUSTED_PROXIES: '127.0.0.1,::1', HUB_ALLOWED_ORIGINS: PORTAL } }),
    startHubProcess({ redisUrl: redis.url, nodeId: 'direct', env: { HUB_ALLOWED_ORIGINS: PORTAL } }),
  ]);
});

afterAll(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  await Promise.all([behindProxy?.stop(), direct?.stop()]);
  await redis?.cleanup();
});

async function auditFromOfPatientRead(hub: HubNodeProcess, forwardedFor: string): Promise<string> {
  const staff = await connectQueue(hub.url, await tokenFor('staff'), { extraHeaders: { 'x-forwarded-for': forwardedFor } });
  sockets.push(staff);
  const checkin = expectOk(await request(staff, 'queue:checkin', { dept: 'gp', patient: { name: '監査 花子' } }));
  expectOk(await request(staff, 'queue:patient', { ticketId: checkin.event.ticket.id }));
  const res = await fetch(`${hub.url}/api/clinics/testclinic/audit?count=20`, { headers: { authorization: `Bearer ${await tokenFor('admin')}` } });
  const { entries } = (await res.json()) as { entries: { subject: string; from: string }[] };
  const entry = entries.find((e) => e.subject === checkin.event.ticket.id);
  if (!entry) throw new Error('no audit entry for the read');
  return entry.from;
}

describe('client address behind a load balancer', () => {
  it('audits the address the trusted proxy names, not the proxy and not what the client wrote', async () => {
    // The client claims 1.1.1.1; the proxy appends the peer it saw.
    expect(await auditFromOfPatientRead(behindProxy, '1.1.1.1, 203.0.113.7')).toBe('203.0.113.7');
  });

  it('ignores X-Forwarded-For from a peer that is not a trusted proxy', async () => {
    expect(await auditFromOfPatientRead(direct, '203.0.113.7')).toMatch(/127\.0\.0\.1/);
  });
});

describe('CORS on /api', () => {
  it('answers a preflight from an allowed origin and labels its responses', async () => {
    const preflight = await fetch(`${behindProxy.url}/api/clinics/testclinic/queue`, {
      method: 'OPTIONS',
      headers: { origin: PORTAL, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe(PORTAL);
    expect(preflight.headers.get('access-control-allow-headers')).toContain('authorization');
    expect(preflight.headers.get('access-control-allow-credentials')).toBeNull();

    const res = await fetch(`${behindProxy.url}/api/clinics/testclinic/queue`, {
      headers: { origin: PORTAL, authorization: `Bearer ${await tokenFor('staff')}` },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe(PORTAL);
  });

  it('refuses a preflight from another origin with ORIGIN_NOT_ALLOWED, and gives its requests no CORS headers', async () => {
    const preflight = await fetch(`${behindProxy.url}/api/clinics/testclinic/queue`, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET' },
    });
    expect(preflight.status).toBe(403);
    expect(((await preflight.json()) as { error: { code: string } }).error.code).toBe('ORIGIN_NOT_ALLOWED');

    const res = await fetch(`${behindProxy.url}/api/clinics/testclinic/queue`, {
      headers: { origin: 'https://evil.example', authorization: `Bearer ${await tokenFor('staff')}` },
    });
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('keeps pages and health checks out of CORS', async () => {
    const res = await fetch(`${behindProxy.url}/healthz`, { headers: { origin: PORTAL } });
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });
});
