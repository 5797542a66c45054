import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHAT_NAMESPACE } from '@clinic-hub/protocol';
import { startTestHubs, stopTestHubs, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { connectNamespace, connectQueue, expectOk, followQueue, request, requestRaw, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import type { TestRedis } from '@clinic-hub/test-kit/redis';
import { waitFor } from '@clinic-hub/test-kit/wait';

let redis: TestRedis;
const hubs: Record<'uws' | 'node', HubNodeProcess> = {} as never;
const sockets: QueueSocket[] = [];

beforeAll(async () => {
  ({ redis, nodes: [hubs.uws, hubs.node] } = await startTestHubs([{ nodeId: 'http-uws', server: 'uws' }, { nodeId: 'http-node', server: 'node' }]));
});

afterAll(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  await stopTestHubs(redis, Object.values(hubs));
});

async function open(url: string, role: Parameters<typeof tokenFor>[0], transports: ('websocket' | 'polling')[] = ['websocket']) {
  const socket = await connectQueue(url, await tokenFor(role), { transports });
  sockets.push(socket);
  return socket;
}

async function call(url: string, path: string, options: { method?: string; token?: string; body?: string } = {}) {
  const res = await fetch(`${url}${path}`, {
    method: options.method ?? 'GET',
    headers: {
      ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
      ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(options.body === undefined ? {} : { body: options.body }),
  });
  const text = await res.text();
  let json: any = null;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON (metrics, pages)
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** One sample of a Prometheus metric with exactly these labels (in any order), or undefined. */
function metricValue(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+)\{([^}]*)\} (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const got = Object.fromEntries([...match[2]!.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.keys(got).length === Object.keys(labels).length && Object.entries(labels).every(([k, v]) => got[k] === v)) {
      return Number(match[3]);
    }
  }
  return undefined;
}

describe.each(['uws', 'node'] as const)('a hub on %s', (kind) => {
  const url = () => hubs[kind].url;
  const nodeId = () => hubs[kind].nodeId;

  it('/healthz says who it is and that Redis is up; /readyz is ready', async () => {
    const health = await call(url(), '/healthz');
    expect(health.status).toBe(200);
    expect(health.json).toMatchObject({ status: 'ok', node: nodeId(), server: kind, redis: 'up' });
    expect(health.headers.get('x-content-type-options')).toBe('nosniff');
    const ready = await call(url(), '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.json).toMatchObject({ ready: true, node: nodeId() });
    const missing = await call(url(), '/no/such/route');
    expect(missing.status).toBe(404);
    expect(missing.json).toMatchObject({ error: { code: 'NOT_FOUND' } });
  });

  it('delivers a call to displays on WebSocket and on long-polling', async () => {
    const ws = await open(url(), 'display', ['websocket']);
    const polling = await open(url(), 'display', ['polling']);
    expect(polling.io.engine.transport.name).toBe('polling');
    const followers = [followQueue(ws), followQueue(polling)];
    await Promise.all(followers.map((f) => f.resync()));
    const staff = await open(url(), 'staff', ['polling']);
    expectOk(await request(staff, 'queue:checkin', { dept: 'peds' }));
    const called = expectOk(await request(staff, 'queue:call-next', { dept: 'peds', room: 'r3' }));
    for (const follower of followers) {
      await waitFor('the call', () => follower.events.find((e) => e.seq === called.event.seq));
      expect(follower.events.filter((e) => e.type === 'ticket.called')).toEqual([called.event]);
    }
    expectOk(await request(staff, 'queue:done', { ticketId: called.event.ticket.id }));
    expect(polling.io.engine.transport.name).toBe('polling');
  });

  it('/metrics counts connected clients by role, fanned-out events and their latency, and errors', async () => {
    const before = await call(url(), '/metrics');
    expect(before.status).toBe(200);
    expect(before.headers.get('content-type')).toMatch(/^text\/plain/);
    const displaysBefore = metricValue(before.text, 'clinic_hub_connected_clients', { role: 'display', namespace: '/queue', node: nodeId() })!;
    expect(displaysBefore).toBeGreaterThanOrEqual(0);

    const displays = [await open(url(), 'display'), await open(url(), 'display'), await open(url(), 'display')];
    const staff = await open(url(), 'staff');
    const during = await call(url(), '/metrics');
    expect(metricValue(during.text, 'clinic_hub_connected_clients', { role: 'display', namespace: '/queue', node: nodeId() })).toBe(displaysBefore + 3);
    expect(metricValue(during.text, 'clinic_hub_connected_clients', { role: 'staff', namespace: '/queue', node: nodeId() })).toBeGreaterThanOrEqual(1);

    const issuedBefore = metricValue(during.text, 'clinic_hub_events_total', { type: 'ticket.issued', node: nodeId() }) ?? 0;
    const checkin = expectOk(await request(staff, 'queue:checkin', { dept: 'gp' }));
    const follower = followQueue(displays[0]!);
    await follower.resync();
    expect(await requestRaw(displays[0]!, 'queue:checkin', { dept: 'gp' })).toMatchObject({ ok: false });
    expectOk(await request(staff, 'queue:cancel', { ticketId: checkin.event.ticket.id }));
    await waitFor('the cancel on the display', () => follower.events.some((e) => e.type === 'ticket.cancelled'));

    displays[1]!.close();
    displays[2]!.close();
    const after = await waitFor('the closed displays to be counted out', async () => {
      const m = await call(url(), '/metrics');
      return metricValue(m.text, 'clinic_hub_connected_clients', { role: 'display', namespace: '/queue', node: nodeId() }) === displaysBefore + 1 && m;
    });
    // Every node fans out every event of the clinic to its own sockets.
    expect(metricValue(after.text, 'clinic_hub_events_total', { type: 'ticket.issued', node: nodeId() })).toBeGreaterThanOrEqual(issuedBefore + 1);
    expect(metricValue(after.text, 'clinic_hub_events_total', { type: 'ticket.cancelled', node: nodeId() })).toBeGreaterThanOrEqual(1);
    expect(metricValue(after.text, 'clinic_hub_event_latency_seconds_bucket', { le: '+Inf', node: nodeId() })).toBeGreaterThanOrEqual(2);
    expect(after.text).toMatch(/^clinic_hub_event_latency_seconds_bucket\{le="0.1",node="[^"]+"\} \d+$/m);
    expect(metricValue(after.text, 'clinic_hub_errors_total', { code: 'AUTH_FORBIDDEN', node: nodeId() })).toBeGreaterThanOrEqual(1);
    expect(metricValue(after.text, 'clinic_hub_action_duration_seconds_count', { action: 'queue:checkin', outcome: 'ok', node: nodeId() })).toBeGreaterThanOrEqual(1);
    expect(after.text).toContain('clinic_hub_events_per_second');

    // Every namespace's clients are counted: a patient on /chat too.
    const patientToken = expectOk(await request(staff, 'queue:checkin', { dept: 'gp' })).patientToken;
    const patientChat = await connectNamespace<QueueSocket>(url(), CHAT_NAMESPACE, patientToken);
    sockets.push(patientChat);
    const withPatient = await call(url(), '/metrics');
    expect(metricValue(withPatient.text, 'clinic_hub_connected_clients', { role: 'patient', namespace: '/chat', node: nodeId() })).toBe(1);
    expect(metricValue(withPatient.text, 'clinic_hub_connected_clients', { role: 'patient', namespace: '/consult', node: nodeId() })).toBe(0);
  });

  it('POST /api/tokens issues tokens to admins only, and the token connects', async () => {
    const admin = await tokenFor('admin');
    const issued = await call(url(), '/api/tokens', { method: 'POST', token: admin, body: JSON.stringify({ role: 'display', clinic: 'testclinic' }) });
    expect(issued.status).toBe(201);
    expect(issued.json).toMatchObject({ role: 'display', clinic: 'testclinic', token: expect.any(String), sub: expect.any(String) });
    // The display default: 12 hours.
    expect(issued.json.expiresAt).toBeGreaterThan(Date.now() + 11 * 3600_000);
    const display = await connectQueue(url(), issued.json.token);
    sockets.push(display);
    expect(await request(display, 'queue:sync', {})).toMatchObject({ ok: true, mode: 'snapshot' });

    const allClinics = await tokenFor('admin', '*');
    const forOther = await call(url(), '/api/tokens', {
      method: 'POST',
      token: allClinics,
      body: JSON.stringify({ role: 'staff', clinic: 'otherclinic', sub: 'reception-1', ttlSeconds: 600 }),
    });
    expect(forOther.status).toBe(201);
    expect(forOther.json).toMatchObject({ role: 'staff', clinic: 'otherclinic', sub: 'reception-1' });
    expect(forOther.json.expiresAt).toBeLessThanOrEqual(Date.now() + 601_000);

    const refused: [string | undefined, unknown, number, string][] = [
      [await tokenFor('staff'), { role: 'display', clinic: 'testclinic' }, 403, 'AUTH_FORBIDDEN'],
      [await tokenFor('display'), { role: 'admin', clinic: 'testclinic' }, 403, 'AUTH_FORBIDDEN'],
      [undefined, { role: 'display', clinic: 'testclinic' }, 401, 'AUTH_REQUIRED'],
      ['not-a-token', { role: 'display', clinic: 'testclinic' }, 401, 'AUTH_INVALID'],
      [admin, { role: 'display', clinic: 'otherclinic' }, 403, 'AUTH_WRONG_CLINIC'],
      [allClinics, { role: 'display', clinic: 'ghostclinic' }, 404, 'CLINIC_NOT_FOUND'],
      [admin, { role: 'king', clinic: 'testclinic' }, 400, 'INVALID_PAYLOAD'],
      [admin, { role: 'display' }, 400, 'INVALID_PAYLOAD'],
      [admin, { role: 'display', clinic: 'testclinic', ttlSeconds: 5 }, 400, 'INVALID_PAYLOAD'],
      [admin, { role: 'patient', clinic: 'testclinic' }, 400, 'INVALID_PAYLOAD'],
      [allClinics, { role: 'staff', clinic: '*' }, 400, 'INVALID_PAYLOAD'],
      [admin, 'not json at all', 400, 'INVALID_PAYLOAD'],
      [admin, ['display'], 400, 'INVALID_PAYLOAD'],
    ];
    for (const [token, body, status, code] of refused) {
      const res = await call(url(), '/api/tokens', { method: 'POST', ...(token ? { token } : {}), body: typeof body === 'string' ? body : JSON.stringify(body) });
      expect({ status: res.status, code: res.json?.error?.code }, JSON.stringify(body)).toEqual({ status, code });
    }
    expect((await call(url(), '/api/tokens', { token: admin })).status).toBe(405);
    const tooBig = await call(url(), '/api/tokens', { method: 'POST', token: admin, body: JSON.stringify({ role: 'display', clinic: 'testclinic', pad: 'x'.repeat(70_000) }) });
    expect(tooBig.status).toBe(413);
    // Still serving.
    expect((await call(url(), '/healthz')).status).toBe(200);
  });

  it('GET /api/clinics/:id/queue gives clinicians the snapshot', async () => {
    const staff = await open(url(), 'staff');
    const checkin = expectOk(await request(staff, 'queue:checkin', { dept: 'gp', patient: { name: '鈴木 一郎' } }));
    const res = await call(url(), '/api/clinics/testclinic/queue', { token: await tokenFor('doctor') });
    expect(res.status).toBe(200);
    expect(res.json.clinic.id).toBe('testclinic');
    expect(res.json.seq).toBeGreaterThanOrEqual(checkin.event.seq);
    expect(res.json.tickets.map((t: { id: string }) => t.id)).toContain(checkin.event.ticket.id);
    expect(res.text).not.toContain('鈴木');

    expect((await call(url(), '/api/clinics/testclinic/queue')).status).toBe(401);
    expect((await call(url(), '/api/clinics/testclinic/queue', { token: await tokenFor('display') })).json).toMatchObject({ error: { code: 'AUTH_FORBIDDEN' } });
    const wrong = await call(url(), '/api/clinics/testclinic/queue', { token: await tokenFor('staff', 'otherclinic') });
    expect(wrong.status).toBe(403);
    expect(wrong.json).toMatchObject({ error: { code: 'AUTH_WRONG_CLINIC' } });
    const ghost = await call(url(), '/api/clinics/ghostclinic/queue', { token: await tokenFor('admin', '*') });
    expect(ghost.status).toBe(404);
    expect(ghost.json).toMatchObject({ error: { code: 'CLINIC_NOT_FOUND' } });
    expectOk(await request(staff, 'queue:cancel', { ticketId: checkin.event.ticket.id }));
  });

  it('GET /api/clinics/:id/audit shows who read patient data, what and from where, without the data', async () => {
    const staff = await open(url(), 'staff');
    const patient = { name: '山田 太郎', phone: '090-1234-5678', note: '持病あり' };
    const checkin = expectOk(await request(staff, 'queue:checkin', { dept: 'gp', patient }));
    const before = Date.now();
    const read = expectOk(await request(staff, 'queue:patient', { ticketId: checkin.event.ticket.id }));
    expect(read.patient).toEqual(patient);

    const res = await call(url(), '/api/clinics/testclinic/audit', { token: await tokenFor('admin') });
    expect(res.status).toBe(200);
    const entry = res.json.entries.find((e: { subject: string }) => e.subject === checkin.event.ticket.id);
    expect(entry).toMatchObject({ actor: 'staff:test', role: 'staff', action: 'patient.read', subject: checkin.event.ticket.id });
    expect(entry.from).toMatch(/127\.0\.0\.1/);
    expect(entry.at).toBeGreaterThanOrEqual(before - 1000);
    for (const secret of ['山田', '090-1234-5678', '持病']) expect(res.text).not.toContain(secret);

    const latest = await call(url(), '/api/clinics/testclinic/audit?count=1', { token: await tokenFor('admin') });
    expect(latest.json.entries).toHaveLength(1);
    for (const count of ['abc', '0', '-5', '1.5', '99999999']) {
      const bad = await call(url(), `/api/clinics/testclinic/audit?count=${count}`, { token: await tokenFor('admin') });
      expect({ status: bad.status, code: bad.json?.error?.code }, `count=${count}`).toEqual({ status: 400, code: 'INVALID_PAYLOAD' });
    }
    expect((await call(url(), '/api/clinics/testclinic/audit', { token: await tokenFor('staff') })).json).toMatchObject({
      error: { code: 'AUTH_FORBIDDEN' },
    });
    expect((await call(url(), '/api/clinics/testclinic/audit', { token: await tokenFor('admin', 'otherclinic') })).status).toBe(403);
    expectOk(await request(staff, 'queue:cancel', { ticketId: checkin.event.ticket.id }));
  });
});
