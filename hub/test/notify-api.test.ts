import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WEBHOOK_HEADERS, type DeadLetter, type NotifyOverview, type WebhookPayload } from '@clinic-hub/protocol';
import { verifyWebhook } from '../src/webhooks/webhook-signature.js';
import { startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { connectQueue, expectOk, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import { NotificationService } from '../src/notify/notification-service.js';
import { TEST_CLINIC, WITHOUT_SMS, startNotifyFixture, startWorkerProcess, waitFor, type NotifyFixture, type WorkerProcess } from '@clinic-hub/test-kit/notify-fixture';

/**
 * The hub's notification API (`GET /api/notify`, `POST /api/notify/dead-letters/:id/retry`)
 * against a real hub process, Redis and worker process. The hub has SMS
 * configured, the first worker has not: a patient who chose SMS at check-in
 * gets a "1 ahead" notice that dead-letters at once with NOTIFY_CHANNEL_DISABLED.
 * Once a worker with SMS runs, retrying the dead letter delivers it. The
 * dead letter reaches a webhook endpoint subscribed to notify.failed (the
 * worker process hands it to the hub's dispatcher), signed, without the address.
 */
const PHONE = '+819055501234';

let fixture: NotifyFixture;
let hub: HubNodeProcess;
let worker: WorkerProcess;
let service: NotificationService;
let socket: QueueSocket;
const tokens: Record<'staff' | 'otherStaff' | 'admin' | 'doctor', string> = {} as never;
let receiver: Server;
const hooks: { body: string; signature: string; payload: WebhookPayload }[] = [];
let hookSecret = '';

beforeAll(async () => {
  fixture = await startNotifyFixture();
  hub = await startHubProcess({ redisUrl: fixture.redisUrl, nodeId: 'notify-api', env: fixture.env() });
  worker = await startWorkerProcess(fixture.env(WITHOUT_SMS));
  service = new NotificationService({ config: fixture.config(), clinics: fixture.clinics });
  tokens.staff = await tokenFor('staff');
  tokens.otherStaff = await tokenFor('staff', 'otherclinic');
  tokens.admin = await tokenFor('admin', '*');
  tokens.doctor = await tokenFor('doctor');
  socket = await connectQueue(hub.url, tokens.staff);
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      hooks.push({ body, signature: String(req.headers[WEBHOOK_HEADERS.signature] ?? ''), payload: JSON.parse(body) as WebhookPayload });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const created = await fetch(`${hub.url}/api/clinics/${TEST_CLINIC}/webhooks`, {
    method: 'POST',
    headers: { authorization: `Bearer ${tokens.admin}`, 'content-type': 'application/json' },
    body: JSON.stringify({ url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/notify`, events: ['notify.failed'] }),
  });
  hookSecret = ((await created.json()) as { secret: string }).secret;
});
afterAll(async () => {
  await new Promise((resolve) => receiver?.close(resolve));
  socket?.close();
  await worker?.stop();
  await service?.close();
  await hub?.stop();
  await fixture?.stop();
});

async function call(path: string, options: { token?: string; method?: string } = {}) {
  const res = await fetch(`${hub.url}${path}`, {
    method: options.method ?? 'GET',
    headers: options.token ? { authorization: `Bearer ${options.token}` } : {},
  });
  const text = await res.text();
  return { status: res.status, text, json: JSON.parse(text) };
}

const overview = async (token: string, query = '') => {
  const res = await call(`/api/notify${query}`, { token });
  expect(res.status, res.text).toBe(200);
  return { ...(res.json as NotifyOverview), text: res.text };
};

let letter: DeadLetter;
let ticket: { id: string; number: string };

describe('GET /api/notify', () => {
  it('shows the dead letter of a notice for a channel the worker lacks, without the address', async () => {
    const checkin = expectOk(await request(socket, 'queue:checkin', { dept: 'peds', notify: { channel: 'sms', address: PHONE } }));
    expect(checkin.notify).toEqual({ ok: true });
    ticket = checkin.event.ticket;
    // The contact is stored after the check-in's own queue event, so the watcher sees it on the next change.
    expectOk(await request(socket, 'queue:checkin', { dept: 'gp' }));

    const seen = await waitFor(async () => {
      const view = await overview(tokens.staff);
      return view.deadLetters.length > 0 ? view : null;
    }, 'the dead letter in GET /api/notify', 15_000);
    expect(seen.clinic).toBe(TEST_CLINIC);
    expect(seen.counts).toMatchObject({ failed: 1, active: 0, waiting: 0 });
    expect(seen.completedWithinSeconds).toBe(86400);
    letter = seen.deadLetters[0]!;
    expect(letter).toMatchObject({
      id: `${TEST_CLINIC}.ticket.${ticket.id}.queue_1_ahead`,
      clinic: TEST_CLINIC,
      kind: 'queue_1_ahead',
      channel: 'sms',
      recipient: { type: 'ticket', ticketId: ticket.id },
      ticketNumber: ticket.number,
      code: 'NOTIFY_CHANNEL_DISABLED',
      reason: 'NOTIFY_CHANNEL_DISABLED: sms',
      attempts: 1,
    });
    expect(letter.failedAt).toBeGreaterThanOrEqual(letter.enqueuedAt);
    expect(seen.text).not.toContain(PHONE.slice(1));

    // The clinic's webhook hears it: the dead letter as this API shows it, signed, never the address.
    const hook = await waitFor(async () => hooks.find((h) => h.payload.type === 'notify.failed') ?? null, 'notify.failed at the webhook receiver', 15_000);
    expect(verifyWebhook(hook.body, hook.signature, hookSecret)).toBe(true);
    expect(hook.payload).toMatchObject({ clinic: TEST_CLINIC, data: { notification: { id: letter.id, kind: 'queue_1_ahead', code: 'NOTIFY_CHANNEL_DISABLED', channel: 'sms', ticketNumber: ticket.number } } });
    expect(hook.payload.id).toBe(`${TEST_CLINIC}-n-${letter.id}-${letter.failedAt}`.replaceAll(':', '_'));
    expect(hook.body).not.toContain(PHONE.slice(1));
  });

  it('lists pending reminders soonest first, without the address', async () => {
    const startsAt = Date.now() + 3 * 86400_000;
    const scheduled = await service.scheduleAppointmentReminders({ clinic: TEST_CLINIC, appointmentId: 'appt-api-1', startsAt, contact: { channel: 'sms', address: PHONE } });
    if (!scheduled.ok) throw new Error(scheduled.error.code);
    const view = await overview(tokens.staff);
    expect(view.counts.delayed).toBe(2);
    expect(view.pending.map((p) => p.kind)).toEqual(['reminder_24h', 'reminder_1h']);
    // BullMQ adds the delay to its own clock reading: a millisecond or two either way.
    expect(Math.abs(view.pending[0]!.sendAt - (startsAt - 86400_000))).toBeLessThan(1000);
    expect(Math.abs(view.pending[1]!.sendAt - (startsAt - 3600_000))).toBeLessThan(1000);
    expect(view.pending[0]).toMatchObject({ recipient: { type: 'appointment', appointmentId: 'appt-api-1' }, attempts: 0, lastError: null, channel: null });
    expect(view.text).not.toContain(PHONE.slice(1));
    expect((await overview(tokens.staff, '?count=1')).pending).toHaveLength(1);
  });

  it('shows staff only their own clinic; admins every clinic or the one they name', async () => {
    const other = await overview(tokens.otherStaff);
    expect(other.clinic).toBe('otherclinic');
    expect(other.counts).toMatchObject({ failed: 0, delayed: 0 });
    expect(other.deadLetters).toEqual([]);
    const peek = await call(`/api/notify?clinic=${TEST_CLINIC}`, { token: tokens.otherStaff });
    expect(peek.status).toBe(403);
    expect(peek.json.error.code).toBe('AUTH_WRONG_CLINIC');

    const all = await overview(tokens.admin);
    expect(all.clinic).toBe('*');
    expect(all.deadLetters.map((l) => l.id)).toEqual([letter.id]);
    expect((await overview(tokens.admin, '?clinic=otherclinic')).deadLetters).toEqual([]);
    expect((await overview(tokens.admin, `?clinic=${TEST_CLINIC}`)).counts.failed).toBe(1);
  });

  it('refuses other roles, missing tokens, unknown clinics and bad counts', async () => {
    const doctor = await call('/api/notify', { token: tokens.doctor });
    expect([doctor.status, doctor.json.error.code]).toEqual([403, 'AUTH_FORBIDDEN']);
    const anonymous = await call('/api/notify');
    expect([anonymous.status, anonymous.json.error.code]).toEqual([401, 'AUTH_REQUIRED']);
    const unknown = await call('/api/notify?clinic=nowhere', { token: tokens.admin });
    expect([unknown.status, unknown.json.error.code]).toEqual([404, 'CLINIC_NOT_FOUND']);
    const badCount = await call('/api/notify?count=0', { token: tokens.staff });
    expect([badCount.status, badCount.json.error.code]).toEqual([400, 'INVALID_PAYLOAD']);
    const wrongMethod = await call('/api/notify', { token: tokens.staff, method: 'POST' });
    expect([wrongMethod.status, wrongMethod.json.error.code]).toEqual([405, 'METHOD_NOT_ALLOWED']);
  });
});

describe('POST /api/notify/dead-letters/:id/retry', () => {
  it('refuses another clinic’s staff and unknown ids', async () => {
    const foreign = await call(`/api/notify/dead-letters/${letter.id}/retry`, { token: tokens.otherStaff, method: 'POST' });
    expect([foreign.status, foreign.json.error.code]).toEqual([403, 'AUTH_WRONG_CLINIC']);
    const missing = await call(`/api/notify/dead-letters/${TEST_CLINIC}.no-such-key/retry`, { token: tokens.staff, method: 'POST' });
    expect([missing.status, missing.json.error.code]).toEqual([404, 'NOTIFY_DEAD_LETTER_NOT_FOUND']);
    const doctor = await call(`/api/notify/dead-letters/${letter.id}/retry`, { token: tokens.doctor, method: 'POST' });
    expect(doctor.status).toBe(403);
    expect((await overview(tokens.staff)).counts.failed).toBe(1);
  });

  it('sends the notice once a worker has the channel, and the dead letter is gone', async () => {
    await worker.stop();
    worker = await startWorkerProcess(fixture.env());
    const retried = await call(`/api/notify/dead-letters/${letter.id}/retry`, { token: tokens.staff, method: 'POST' });
    expect(retried.status, retried.text).toBe(200);
    expect(retried.json).toEqual({ ok: true, id: letter.id });

    const sms = await waitFor(() => fixture.sms.accepted.find((m) => m.to === PHONE), 'the SMS after the retry', 15_000);
    expect(sms.body).toContain(ticket.number);
    const view = await waitFor(async () => {
      const current = await overview(tokens.staff);
      return current.counts.failed === 0 && current.counts.completed >= 1 ? current : null;
    }, 'the dead letter to be gone');
    expect(view.deadLetters).toEqual([]);

    const again = await call(`/api/notify/dead-letters/${letter.id}/retry`, { token: tokens.admin, method: 'POST' });
    expect([again.status, again.json.error.code]).toEqual([404, 'NOTIFY_DEAD_LETTER_NOT_FOUND']);
    expect(fixture.sms.accepted.filter((m) => m.to === PHONE)).toHaveLength(1);
  });
});

describe('POST /api/clinics/:id/notify/test', () => {
  const MANAGER = 'manager@clinic.example.jp';
  const send = (token: string, body: unknown, clinic = TEST_CLINIC) =>
    fetch(`${hub.url}/api/clinics/${clinic}/notify/test`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) }).then(
      async (res) => ({ status: res.status, json: (await res.json()) as Record<string, any> }),
    );

  it('sends one test notice to the address given, at once, in the language asked', async () => {
    const sent = await send(tokens.admin, { channel: 'email', address: MANAGER, locale: 'en' });
    expect(sent.status, JSON.stringify(sent.json)).toBe(202);
    expect(sent.json).toEqual({ id: expect.stringMatching(new RegExp(`^${TEST_CLINIC}\\.test\\.`)), channel: 'email' });
    const mail = await waitFor(() => fixture.smtp.received.find((m) => m.envelopeTo.includes(MANAGER)), 'the test mail', 15_000);
    expect(mail.parsed.subject).toContain('test notification');
    // Each send is a new notice.
    expect((await send(tokens.admin, { channel: 'email', address: MANAGER })).json.id).not.toBe(sent.json.id);
    await waitFor(() => (fixture.smtp.received.filter((m) => m.envelopeTo.includes(MANAGER)).length === 2 ? true : null), 'the second test mail', 15_000);
    const audit = (await (await fetch(`${hub.url}/api/clinics/${TEST_CLINIC}/audit?action=notify.test&count=10`, { headers: { authorization: `Bearer ${tokens.admin}` } })).json()) as { entries: { subject: string }[] };
    expect(audit.entries.map((e) => e.subject)).toContain(`email ${sent.json.id}`);
    expect(JSON.stringify(audit.entries)).not.toContain(MANAGER);
  });

  it('shows a failed test send as a dead letter without the address, and refuses bad requests', async () => {
    await worker.stop();
    worker = await startWorkerProcess(fixture.env(WITHOUT_SMS));
    const sent = await send(tokens.admin, { channel: 'sms', address: '+819055509999' });
    expect(sent.status).toBe(202);
    const view = await waitFor(async () => {
      const current = await overview(tokens.staff);
      return current.deadLetters.some((d) => d.id === sent.json.id) ? current : null;
    }, 'the failed test send among the dead letters', 15_000);
    expect(view.deadLetters.find((d) => d.id === sent.json.id)).toMatchObject({ kind: 'test', recipient: { type: 'test' }, channel: 'sms', code: 'NOTIFY_CHANNEL_DISABLED' });
    expect(view.text).not.toContain('9055509999');

    expect((await send(tokens.staff, { channel: 'email', address: MANAGER })).json.error.code).toBe('AUTH_FORBIDDEN');
    expect((await send(tokens.admin, { channel: 'sms', address: '090-1234' })).json.error.code).toBe('NOTIFY_CONTACT_INVALID');
    expect((await send(tokens.admin, { channel: 'fax', address: '1' })).json.error.code).toBe('INVALID_PAYLOAD');
    expect((await send(tokens.admin, { channel: 'email', address: MANAGER }, 'nowhere')).json.error.code).toBe('CLINIC_NOT_FOUND');
  });
});
