/**
 * Webhooks (hub/src/webhooks; docs/webhooks.md) against a local receiver
 * that checks every signature, on two hub processes sharing one test Redis
 * (each node hears every queue event: each is still delivered once per
 * endpoint). The receiver answers, fails, is slow and is down; retries
 * carry the same event id; patient data only to an endpoint that has it on;
 * a rotated secret signs beside the old one. Consultations started and
 * ended (consult.*) go the same way, from the node that made the change,
 * through a receiver that fails twice first.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WEBHOOK_HEADERS, type WebhookDelivery, type WebhookPayload } from '@clinic-hub/protocol';
import { freePort } from '@clinic-hub/platform/redis-server';
import { startTestHubs, stopTestHubs, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { connectQueue, expectOk, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import { CONSULT_HUB_ENV, announceMediaNode, connectConsult, consultRequest } from '@clinic-hub/test-kit/consult-client';
import type { TestRedis } from '@clinic-hub/test-kit/redis';
import { waitFor } from '@clinic-hub/test-kit/wait';
import { cleanEnv, runCli } from '@clinic-hub/test-kit/run-cli';
import { verifyWebhook } from '../src/webhooks/webhook-signature.js';

const CLINIC = 'testclinic';
const TIMEOUT_MS = 800;

interface Received {
  path: string;
  payload: WebhookPayload;
  body: string;
  signature: string;
  attempt: number;
}

let redis: TestRedis;
let nodeA: HubNodeProcess;
let nodeB: HubNodeProcess;
let receiver: Server;
let receiverUrl: string;
let staff: QueueSocket;
const received: Received[] = [];
/** Attempts seen per path and event id (the flaky and slow paths answer according to it). */
const attemptsSeen = new Map<string, number>();
const secrets = new Map<string, string>();

const readBody = (req: IncomingMessage) =>
  new Promise<string>((resolve) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => resolve(body));
  });

beforeAll(async () => {
  const env = { ...CONSULT_HUB_ENV, HUB_WEBHOOK_TIMEOUT_MS: String(TIMEOUT_MS), HUB_WEBHOOK_BACKOFF_MS: '200', HUB_WEBHOOK_ATTEMPTS: '4' };
  ({ redis, nodes: [nodeA, nodeB] } = await startTestHubs(['webhooks-a', 'webhooks-b'], { env }));
  // A media-server node for admissions (consult.*): the hub only reads its announcement.
  const client = new Redis(redis.url);
  await announceMediaNode(client, { id: 'media-webhooks' });
  client.disconnect();
  receiver = createServer((req, res) => {
    void readBody(req).then(async (body) => {
      const path = req.url ?? '/';
      const signature = String(req.headers[WEBHOOK_HEADERS.signature] ?? '');
      const payload = JSON.parse(body) as WebhookPayload;
      const key = `${path}|${payload.id}`;
      const attempt = (attemptsSeen.get(key) ?? 0) + 1;
      attemptsSeen.set(key, attempt);
      received.push({ path, payload, body, signature, attempt: Number(req.headers[WEBHOOK_HEADERS.attempt]) });
      if ((path === '/flaky' || path === '/consult-flaky') && attempt <= 2) {
        res.writeHead(503).end('busy');
        return;
      }
      if (path === '/slow' && attempt === 1) await new Promise((resolve) => setTimeout(resolve, TIMEOUT_MS * 2));
      res.writeHead(204).end();
    });
  });
  const port = await freePort();
  await new Promise<void>((resolve) => receiver.listen(port, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${port}`;
  staff = await connectQueue(nodeA.url, await tokenFor('staff'));
}, 120_000);

afterAll(async () => {
  staff?.close();
  await new Promise((resolve) => receiver?.close(resolve));
  await stopTestHubs(redis, [nodeA, nodeB]);
});

async function api(node: HubNodeProcess, method: string, path: string, token: string, body?: unknown) {
  const response = await fetch(`${node.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

async function subscribe(path: string, events: string[], extra: Record<string, unknown> = {}): Promise<string> {
  const url = path.startsWith('http') ? path : `${receiverUrl}${path}`;
  const created = await api(nodeA, 'POST', `/api/clinics/${CLINIC}/webhooks`, await tokenFor('admin'), { url, events, ...extra });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  secrets.set(created.body.endpoint.id, created.body.secret);
  return created.body.endpoint.id as string;
}

const deliveries = async (): Promise<WebhookDelivery[]> => (await api(nodeB, 'GET', `/api/clinics/${CLINIC}/webhooks/deliveries?count=500`, await tokenFor('admin'))).body.deliveries;

describe('webhooks', () => {
  it('are managed by admins only, with input checked and the secret shown once', async () => {
    const admin = await tokenFor('admin');
    const bad = await api(nodeA, 'POST', `/api/clinics/${CLINIC}/webhooks`, admin, { url: 'ftp://x', events: ['ticket.*'] });
    expect(bad.body.error).toMatchObject({ code: 'INVALID_PAYLOAD', detail: expect.stringContaining('url') });
    const unknown = await api(nodeA, 'POST', `/api/clinics/${CLINIC}/webhooks`, admin, { url: `${receiverUrl}/ok`, events: ['ticket.lost'] });
    expect(unknown.body.error.detail).toContain('events.0');
    expect((await api(nodeA, 'GET', `/api/clinics/${CLINIC}/webhooks`, await tokenFor('staff'))).body.error.code).toBe('AUTH_FORBIDDEN');
    expect((await api(nodeA, 'DELETE', `/api/clinics/${CLINIC}/webhooks/wh_nope`, admin)).body.error.code).toBe('WEBHOOK_NOT_FOUND');
  });

  it('deliver each ticket event once per endpoint, signed, with the event id to dedupe on, and no patient data unless enabled', async () => {
    const plain = await subscribe('/ok', ['ticket.*']);
    const withPatient = await subscribe('/ok-patient', ['ticket.issued'], { includePatientData: true });
    const listed = (await api(nodeB, 'GET', `/api/clinics/${CLINIC}/webhooks`, await tokenFor('admin'))).body.endpoints as Record<string, unknown>[];
    expect(listed.map((e) => e.id)).toEqual([plain, withPatient]);
    expect(JSON.stringify(listed)).not.toContain('whsec_');

    const checkin = expectOk(await request(staff, 'queue:checkin', { dept: 'gp', patient: { name: '山田 花子' } }));
    const called = expectOk(await request(staff, 'queue:call-next', { dept: 'gp', room: 'r1' }));
    await waitFor('ticket.issued and ticket.called at /ok, ticket.issued at /ok-patient', () => received.filter((r) => r.path === '/ok').length >= 2 && received.some((r) => r.path === '/ok-patient'), 15_000);
    await new Promise((resolve) => setTimeout(resolve, 1000)); // any duplicate from the other node would have arrived by now

    // Deliveries run in parallel: their order is not the events' (a receiver orders by data.seq).
    const atOk = received.filter((r) => r.path === '/ok').sort((a, b) => Number(a.payload.data.seq) - Number(b.payload.data.seq));
    expect(atOk.map((r) => r.payload.type)).toEqual(['ticket.issued', 'ticket.called']);
    expect(atOk.map((r) => r.payload.id)).toEqual([`${CLINIC}-q${checkin.event.seq}`, `${CLINIC}-q${called.event.seq}`]);
    for (const r of atOk) {
      expect(verifyWebhook(r.body, r.signature, secrets.get(plain)!), r.signature).toBe(true);
      expect(verifyWebhook(r.body, r.signature, secrets.get(withPatient)!)).toBe(false);
      expect(r.body).not.toContain('山田');
    }
    expect(atOk[0]!.payload).toMatchObject({ clinic: CLINIC, data: { ticket: { id: checkin.event.ticket.id, number: checkin.event.ticket.number } } });
    // A tampered body or an old timestamp does not verify.
    expect(verifyWebhook(atOk[0]!.body.replace('ticket', 'tickets'), atOk[0]!.signature, secrets.get(plain)!)).toBe(false);
    expect(verifyWebhook(atOk[0]!.body, atOk[0]!.signature, secrets.get(plain)!, 300, Math.floor(Date.now() / 1000) + 3600)).toBe(false);

    const atPatient = received.filter((r) => r.path === '/ok-patient');
    expect(atPatient).toHaveLength(1);
    expect(atPatient[0]!.payload.data.patient).toEqual({ name: '山田 花子' });
    const audit = (await api(nodeA, 'GET', `/api/clinics/${CLINIC}/audit?action=patient.read&count=10`, await tokenFor('admin'))).body.entries as Record<string, string>[];
    expect(audit.some((e) => e.actor === `webhook:${withPatient}` && e.subject === checkin.event.ticket.id)).toBe(true);

    const log = (await deliveries()).filter((d) => d.endpoint === plain).sort((a, b) => a.eventId.localeCompare(b.eventId));
    expect(log.map((d) => [d.type, d.status, d.attempt, d.httpStatus]).sort()).toEqual([
      ['ticket.called', 'delivered', 1, 204],
      ['ticket.issued', 'delivered', 1, 204],
    ]);
    for (const id of [plain, withPatient]) expect((await api(nodeA, 'DELETE', `/api/clinics/${CLINIC}/webhooks/${id}`, await tokenFor('admin'))).status).toBe(200);
  });

  it('retry with backoff a receiver that fails, one that is slow, and give up on one that is down', async () => {
    const flaky = await subscribe('/flaky', ['ticket.issued']);
    const slow = await subscribe('/slow', ['ticket.issued']);
    const downPort = await freePort();
    const down = await subscribe(`http://127.0.0.1:${downPort}/hook`, ['ticket.issued']);
    const checkin = expectOk(await request(staff, 'queue:checkin', { dept: 'peds' }));
    const eventId = `${CLINIC}-q${checkin.event.seq}`;

    const outcome = (endpoint: string, status: string) => async () => (await deliveries()).find((d) => d.endpoint === endpoint && d.eventId === eventId && d.status === status);
    await waitFor('the flaky receiver delivered on the third attempt', outcome(flaky, 'delivered'), 20_000);
    await waitFor('the slow receiver delivered on a retry', outcome(slow, 'delivered'), 20_000);
    await waitFor('the receiver that is down given up after 4 attempts', outcome(down, 'failed'), 30_000);

    const log = await deliveries();
    const attemptsOf = (endpoint: string) => log.filter((d) => d.endpoint === endpoint && d.eventId === eventId).map((d) => [d.attempt, d.status, d.httpStatus]).reverse();
    expect(attemptsOf(flaky)).toEqual([
      [1, 'retrying', 503],
      [2, 'retrying', 503],
      [3, 'delivered', 204],
    ]);
    const slowAttempts = log.filter((d) => d.endpoint === slow && d.eventId === eventId).reverse();
    expect(slowAttempts[0]).toMatchObject({ attempt: 1, status: 'retrying', httpStatus: null, error: `no answer within ${TIMEOUT_MS} ms` });
    expect(slowAttempts.at(-1)).toMatchObject({ status: 'delivered' });
    expect(attemptsOf(down)).toEqual([
      [1, 'retrying', null],
      [2, 'retrying', null],
      [3, 'retrying', null],
      [4, 'failed', null],
    ]);
    expect(log.find((d) => d.endpoint === down)!.error).toContain('cannot connect');
    // Every attempt carried the same event id: the receiver dedupes on it (the slow one got it twice).
    const atSlow = received.filter((r) => r.path === '/slow');
    expect(new Set(atSlow.map((r) => r.payload.id))).toEqual(new Set([eventId]));
    expect(atSlow.map((r) => r.attempt)).toEqual([1, 2]);
    for (const r of received.filter((r) => r.path === '/flaky')) expect(verifyWebhook(r.body, r.signature, secrets.get(flaky)!)).toBe(true);
    for (const id of [flaky, slow, down]) await api(nodeA, 'DELETE', `/api/clinics/${CLINIC}/webhooks/${id}`, await tokenFor('admin'));
  });

  it('deliver consult.started and consult.ended once each, through a receiver that fails twice first, with patient data only where enabled', async () => {
    const consults = await subscribe('/consult-flaky', ['consult.*']);
    const withPatient = await subscribe('/consult-patient', ['consult.started'], { includePatientData: true });
    const doctor = await connectConsult(nodeB.url, await tokenFor('doctor', CLINIC, { sub: 'doctor:webhooks' }));
    try {
      const ticket = expectOk(await request(staff, 'queue:checkin', { dept: 'online', patient: { name: '佐藤 一郎' } })).event.ticket;
      const admitted = expectOk(await consultRequest(doctor, 'consult:admit', { dept: 'online', room: 'v1' }));
      const consult = admitted.consultation;
      expectOk(await consultRequest(doctor, 'consult:end', { consult: consult.id }));
      const delivered = (type: string) => async () =>
        (await deliveries()).find((d) => d.endpoint === consults && d.type === type && d.status === 'delivered');
      await waitFor('consult.started delivered on the third attempt', delivered('consult.started'), 20_000);
      await waitFor('consult.ended delivered on the third attempt', delivered('consult.ended'), 20_000);
      await waitFor('consult.started at the endpoint with patient data', () => received.some((r) => r.path === '/consult-patient'), 15_000);
      await new Promise((resolve) => setTimeout(resolve, 1000)); // a duplicate from the other node would have arrived by now

      const log = (await deliveries()).filter((d) => d.endpoint === consults);
      for (const type of ['consult.started', 'consult.ended']) {
        expect(log.filter((d) => d.type === type).map((d) => [d.attempt, d.status]).reverse()).toEqual([
          [1, 'retrying'],
          [2, 'retrying'],
          [3, 'delivered'],
        ]);
      }
      const atConsults = received.filter((r) => r.path === '/consult-flaky');
      for (const r of atConsults) {
        expect(verifyWebhook(r.body, r.signature, secrets.get(consults)!)).toBe(true);
        expect(r.body).not.toContain('佐藤');
      }
      const started = atConsults.find((r) => r.payload.type === 'consult.started')!.payload;
      const ended = atConsults.find((r) => r.payload.type === 'consult.ended')!.payload;
      expect(new Set(atConsults.filter((r) => r.payload.type === 'consult.started').map((r) => r.payload.id))).toEqual(new Set([`${CLINIC}-c-${consult.id}-started`]));
      expect(started.data).toMatchObject({ consult: { id: consult.id, dept: 'online', room: 'v1', ticket: ticket.id, number: ticket.number, status: expect.any(String) } });
      expect(ended).toMatchObject({ id: `${CLINIC}-c-${consult.id}-ended`, data: { reason: 'ended', consult: { id: consult.id, status: 'ended', endedAt: expect.any(Number) } } });
      const atPatient = received.filter((r) => r.path === '/consult-patient');
      expect(atPatient).toHaveLength(1);
      expect(atPatient[0]!.payload.data.patient).toEqual({ name: '佐藤 一郎' });
    } finally {
      doctor.close();
      for (const id of [consults, withPatient]) await api(nodeA, 'DELETE', `/api/clinics/${CLINIC}/webhooks/${id}`, await tokenFor('admin'));
    }
  });

  it('sign with both secrets for a day after a rotation', async () => {
    const endpoint = await subscribe('/rotated', ['ticket.*']);
    const rotated = await api(nodeB, 'POST', `/api/clinics/${CLINIC}/webhooks/${endpoint}/rotate-secret`, await tokenFor('admin'));
    expect(rotated.status).toBe(200);
    const newSecret = rotated.body.secret as string;
    expect(newSecret).not.toBe(secrets.get(endpoint));
    expectOk(await request(staff, 'queue:checkin', { dept: 'gp' }));
    const delivery = await waitFor('a delivery after the rotation', () => received.find((r) => r.path === '/rotated'), 15_000);
    expect(delivery.signature.match(/v1=/g)).toHaveLength(2);
    expect(verifyWebhook(delivery.body, delivery.signature, newSecret)).toBe(true);
    expect(verifyWebhook(delivery.body, delivery.signature, secrets.get(endpoint)!)).toBe(true);
    const audit = (await api(nodeA, 'GET', `/api/clinics/${CLINIC}/audit?subject=${endpoint}&count=10`, await tokenFor('admin'))).body.entries as { action: string }[];
    expect(audit.map((e) => e.action).sort()).toEqual(['webhook.create', 'webhook.rotate-secret']);

    // `clinic webhooks`: the endpoints (no secret) and the attempts with their outcome, as JSON and as a table.
    const env = cleanEnv({ CLINIC_URL: nodeA.url, CLINIC_TOKEN: await tokenFor('admin') });
    const json = await runCli(['webhooks', '--json', '--count', '100'], { env });
    expect(json.code, json.stderr).toBe(0);
    const view = json.json();
    expect(view.endpoints.map((e: { id: string }) => e.id)).toEqual([endpoint]);
    expect(json.stdout).not.toContain('whsec_');
    const statuses = new Set((view.deliveries as WebhookDelivery[]).map((d) => d.status));
    expect(statuses).toEqual(new Set(['delivered', 'retrying', 'failed']));
    const table = await runCli(['webhooks', '--count', '100'], { env: { ...env, NO_COLOR: '1' } });
    expect(table.stdout).toContain(endpoint);
    expect(table.stdout).toMatch(/ticket\.issued\s+testclinic-q\d+\s+wh_\S+\s+4\s+failed/);
  });
});
