import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { CONSULT_HUB_ENV, announceMediaNode, connectConsult, consultRequest } from '@clinic-hub/test-kit/consult-client';
import { startTestHubs, stopTestHubs, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { connectQueue, expectOk, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import type { TestRedis } from '@clinic-hub/test-kit/redis';

const PORTAL = 'https://portal.example.jp';
let redis: TestRedis;
/** Behind "the load balancer": 127.0.0.1 is a trusted proxy. */
let behindProxy: HubNodeProcess;
/** Trusts nobody: X-Forwarded-For is just a header anyone can write. */
let direct: HubNodeProcess;
const sockets: QueueSocket[] = [];

beforeAll(async () => {
  ({ redis, nodes: [behindProxy, direct] } = await startTestHubs([
    { nodeId: 'proxied', env: { HUB_TRUSTED_PROXIES: '127.0.0.1,::1', HUB_ALLOWED_ORIGINS: PORTAL, ...CONSULT_HUB_ENV } },
    { nodeId: 'direct', env: { HUB_ALLOWED_ORIGINS: PORTAL, ...CONSULT_HUB_ENV } },
  ]));
});

afterAll(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  await stopTestHubs(redis, [behindProxy, direct]);
});

async function auditEntry(hub: HubNodeProcess, subject: string): Promise<{ action: string; from: string }> {
  const res = await fetch(`${hub.url}/api/clinics/testclinic/audit?count=50`, { headers: { authorization: `Bearer ${await tokenFor('admin')}` } });
  const { entries } = (await res.json()) as { entries: { subject: string; action: string; from: string }[] };
  const entry = entries.find((e) => e.subject === subject);
  if (!entry) throw new Error(`no audit entry for ${subject}`);
  return entry;
}

/** A doctor admits a patient to a video consultation and joins it (audited) through `hub`, behind "a proxy" writing X-Forwarded-For. */
async function auditFromOfConsultJoin(hub: HubNodeProcess, forwardedFor: string): Promise<string> {
  const client = new Redis(redis.url);
  try {
    await announceMediaNode(client, { id: 'media-proxy-test' });
  } finally {
    client.disconnect();
  }
  const staff = await connectQueue(hub.url, await tokenFor('staff'));
  sockets.push(staff);
  expectOk(await request(staff, 'queue:checkin', { dept: 'online' }));
  const doctor = await connectConsult(hub.url, await tokenFor('doctor'), { extraHeaders: { 'x-forwarded-for': forwardedFor } });
  sockets.push(doctor as unknown as QueueSocket);
  const admitted = expectOk(await consultRequest(doctor, 'consult:admit', { dept: 'online', room: hub === behindProxy ? 'v1' : 'v2' }));
  expectOk(await consultRequest(doctor, 'consult:join', { consult: admitted.consultation.id }));
  const entry = await auditEntry(hub, admitted.consultation.id);
  expect(entry.action).toBe('consult.join');
  return entry.from;
}

async function auditFromOfPatientRead(hub: HubNodeProcess, forwardedFor: string): Promise<string> {
  const staff = await connectQueue(hub.url, await tokenFor('staff'), { extraHeaders: { 'x-forwarded-for': forwardedFor } });
  sockets.push(staff);
  const checkin = expectOk(await request(staff, 'queue:checkin', { dept: 'gp', patient: { name: '監査 花子' } }));
  expectOk(await request(staff, 'queue:patient', { ticketId: checkin.event.ticket.id }));
  return (await auditEntry(hub, checkin.event.ticket.id)).from;
}

describe('client address behind a load balancer', () => {
  it('audits the address the trusted proxy names, not the proxy and not what the client wrote', async () => {
    // The client claims 1.1.1.1; the proxy appends the peer it saw.
    expect(await auditFromOfPatientRead(behindProxy, '1.1.1.1, 203.0.113.7')).toBe('203.0.113.7');
  });

  it('ignores X-Forwarded-For from a peer that is not a trusted proxy', async () => {
    expect(await auditFromOfPatientRead(direct, '203.0.113.7')).toMatch(/127\.0\.0\.1/);
  });

  it('does the same for consultations: /consult audits the client, not the load balancer', async () => {
    expect(await auditFromOfConsultJoin(behindProxy, '1.1.1.1, 203.0.113.9')).toBe('203.0.113.9');
    expect(await auditFromOfConsultJoin(direct, '203.0.113.9')).toMatch(/127\.0\.0\.1/);
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
