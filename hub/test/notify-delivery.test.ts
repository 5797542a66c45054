import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import type { PublicTicket } from '@clinic-hub/protocol';
import { QueueService } from '../src/queue/index.js';
import { NotificationService } from '../src/notify/notification-service.js';
import { startNotificationWorker, type RunningNotificationWorker } from '../src/notify/notification-worker.js';
import { sendRecordKey } from '../src/notify/notify-keys.js';
import { TEST_CLINIC, lineUserId, sleep, startNotifyFixture, waitFor, type NotifyFixture } from '@clinic-hub/test-kit/notify-fixture';

const C = TEST_CLINIC;
/** The worker's and service's clock; null is the real one. Jobs' delays still run on real time. */
let fakeNow: number | null = null;
const now = () => fakeNow ?? Date.now();
const tokyo = (iso: string) => Date.parse(`${iso}+09:00`);

let fixture: NotifyFixture;
let worker: RunningNotificationWorker;
let service: NotificationService;
let redis: Redis;
let queue: QueueService;
let appointments = 0;

beforeAll(async () => {
  fixture = await startNotifyFixture();
  // This worker (and hub) has no SMTP configured: e-mail is off.
  const config = fixture.config({ NOTIFY_SMTP_URL: undefined, NOTIFY_SMTP_FROM: undefined });
  worker = await startNotificationWorker(config, { clinics: fixture.clinics, watchQueues: false, now });
  service = new NotificationService({ config, clinics: fixture.clinics, now });
  redis = new Redis(fixture.redisUrl);
  queue = new QueueService(redis, fixture.clinics);
});
afterAll(async () => {
  await service?.close();
  await worker?.close();
  redis?.disconnect();
  await fixture?.stop();
});
afterEach(() => {
  fakeNow = null;
});

const smsTo = (to: string) => fixture.sms.accepted.filter((m) => m.to === to);

async function stateOf(id: string) {
  return service.queue.getJobState(id);
}

async function finished(id: string, state: 'completed' | 'failed' = 'completed') {
  await waitFor(async () => (await stateOf(id)) === state, `job ${id} to be ${state}`);
  return (await service.queue.getJob(id))!;
}

async function waitingTicket(dept = 'peds'): Promise<PublicTicket> {
  const result = await queue.checkin(C, { dept, priority: 'normal' });
  if (!result.ok) throw new Error(result.error.code);
  return result.event.ticket;
}

/** A "n ahead of you" notice for the ticket, as the queue enqueues it (at `at`, or now); throws when it is refused. */
async function enqueueAhead(ticket: PublicTicket, ahead: 1 | 3, at?: number) {
  const kind = ahead === 1 ? 'queue_1_ahead' : 'queue_3_ahead';
  const result = await service.enqueue({
    clinic: C,
    kind,
    recipient: { type: 'ticket', ticketId: ticket.id },
    vars: { ticketNumber: ticket.number, ahead },
    idempotencyKey: `ticket.${ticket.id}.${kind}`,
    ...(at === undefined ? {} : { at }),
  });
  if (!result.ok) throw new Error(result.error.code);
  return result;
}

async function remindSoon(address: string, options: { channel?: 'sms' | 'line'; inMs?: number } = {}) {
  const startsAt = now() + 3600_000 + (options.inMs ?? 100);
  const appointmentId = `appt-${++appointments}`;
  const result = await service.scheduleAppointmentReminders({
    clinic: C,
    appointmentId,
    startsAt,
    contact: { channel: options.channel ?? 'sms', address },
    kinds: ['reminder_1h'],
  });
  if (!result.ok) throw new Error(result.error.code);
  return { appointmentId, startsAt, id: result.reminders[0]!.id };
}

describe('idempotency', () => {
  it('delivers a notice enqueued twice with the same key once, and never again once sent', async () => {
    const to = '+819000000001';
    const ticket = await waitingTicket();
    expect(await service.setTicketContact(C, ticket.id, { channel: 'sms', address: to })).toEqual({ ok: true });
    const notice = {
      clinic: C,
      kind: 'queue_3_ahead' as const,
      recipient: { type: 'ticket' as const, ticketId: ticket.id },
      vars: { ticketNumber: ticket.number, ahead: 3 },
      idempotencyKey: `ticket.${ticket.id}.queue_3_ahead`,
    };
    const [first, second] = await Promise.all([service.enqueue(notice), service.enqueue(notice)]);
    expect(first.ok && second.ok && first.id === second.id).toBe(true);
    const id = first.ok ? first.id : '';
    await finished(id);
    await service.enqueue(notice);
    // Even with the job itself gone (completed jobs are pruned after a day), the send record stops a second send.
    await service.queue.remove(id);
    await service.enqueue(notice);
    const again = await finished(id);
    expect(again.returnvalue).toMatchObject({ outcome: 'already_sent' });
    await sleep(200);
    expect(smsTo(to)).toHaveLength(1);
    expect(smsTo(to)[0]!.body).toContain(`受付番号 ${ticket.number}：あと3人でお呼びします`);
    expect(JSON.parse((await redis.get(sendRecordKey(id)))!)).toMatchObject({ state: 'sent', providerId: smsTo(to)[0]!.sid });
  });

  it('schedules the same appointment twice as one set of reminders', async () => {
    const to = '+819000000002';
    const startsAt = Date.now() + 3600_000 + 150;
    const schedule = () =>
      service.scheduleAppointmentReminders({ clinic: C, appointmentId: 'twice', startsAt, contact: { channel: 'sms', address: to } });
    const [a, b] = await Promise.all([schedule(), schedule()]);
    if (!a.ok || !b.ok) throw new Error('not scheduled');
    // The 24 h reminder's time has passed: only the 1 h one is due.
    expect(a.reminders.map((r) => r.kind)).toEqual(['reminder_1h']);
    expect(b.reminders[0]!.id).toBe(a.reminders[0]!.id);
    await finished(a.reminders[0]!.id);
    await sleep(200);
    expect(smsTo(to)).toHaveLength(1);
  });

  it('refuses a bad key, a bad contact and an unknown clinic with codes', async () => {
    const ticket = await waitingTicket();
    const bad = await service.enqueue({ clinic: C, kind: 'queue_called', recipient: { type: 'ticket', ticketId: ticket.id }, idempotencyKey: 'has space' });
    expect(bad).toMatchObject({ ok: false, error: { code: 'NOTIFY_KEY_INVALID' } });
    expect(await service.setTicketContact(C, ticket.id, { channel: 'sms', address: '090-1234-5678' })).toMatchObject({
      ok: false,
      error: { code: 'NOTIFY_CONTACT_INVALID', detail: 'address' },
    });
    expect(await service.setTicketContact('nowhere', ticket.id, { channel: 'sms', address: '+819000000000' })).toMatchObject({
      ok: false,
      error: { code: 'CLINIC_NOT_FOUND' },
    });
    const past = await service.scheduleAppointmentReminders({ clinic: C, appointmentId: 'past', startsAt: Date.now() - 1000, contact: { channel: 'sms', address: '+819000000000' } });
    expect(past).toMatchObject({ ok: false, error: { code: 'NOTIFY_APPOINTMENT_PAST' } });
  });
});

describe('reminders', () => {
  it('schedules 24 h and 1 h reminders as delayed jobs in Redis', async () => {
    const startsAt = Date.now() + 3 * 86400_000;
    const result = await service.scheduleAppointmentReminders({
      clinic: C,
      appointmentId: 'three-days',
      startsAt,
      contact: { channel: 'line', address: lineUserId(7), quietHours: null },
      dept: 'gp',
    });
    if (!result.ok) throw new Error(result.error.code);
    expect(result.reminders.map((r) => [r.kind, r.sendAt])).toEqual([
      ['reminder_24h', startsAt - 86400_000],
      ['reminder_1h', startsAt - 3600_000],
    ]);
    for (const r of result.reminders) expect(await stateOf(r.id)).toBe('delayed');
    expect(await service.cancelAppointmentReminders(C, 'three-days')).toEqual({ ok: true, removed: 2 });
  });

  it('does not deliver a cancelled reminder', async () => {
    const to = '+819000000003';
    const { appointmentId, id } = await remindSoon(to, { inMs: 800 });
    expect(await stateOf(id)).toBe('delayed');
    expect(await service.cancelAppointmentReminders(C, appointmentId)).toEqual({ ok: true, removed: 1 });
    expect(await service.cancelAppointmentReminders(C, appointmentId)).toMatchObject({ ok: false, error: { code: 'NOTIFY_APPOINTMENT_NOT_FOUND' } });
    await sleep(1300);
    expect(await stateOf(id)).toBe('unknown');
    expect(smsTo(to)).toHaveLength(0);
  });

  it('drops a reminder that could not be removed (already running) once it finds the appointment gone', async () => {
    const to = '+819000000004';
    const { appointmentId, id } = await remindSoon(to, { inMs: 400 });
    // What cancel does when the job is locked by a worker: the record goes, the job stays.
    await service.contacts.deleteAppointment(C, appointmentId);
    const job = await finished(id);
    expect(job.returnvalue).toEqual({ outcome: 'skipped', reason: 'cancelled' });
    expect(smsTo(to)).toHaveLength(0);
  });

  it('replaces the reminders of an appointment that moved', async () => {
    const to = '+819000000005';
    const contact = { channel: 'sms' as const, address: to };
    const first = await service.scheduleAppointmentReminders({ clinic: C, appointmentId: 'moved', startsAt: Date.now() + 5 * 3600_000, contact, kinds: ['reminder_1h'] });
    const moved = await service.scheduleAppointmentReminders({ clinic: C, appointmentId: 'moved', startsAt: Date.now() + 3600_000 + 100, contact, kinds: ['reminder_1h'] });
    if (!first.ok || !moved.ok) throw new Error('not scheduled');
    expect(moved.reminders[0]!.id).not.toBe(first.reminders[0]!.id);
    expect(await stateOf(first.reminders[0]!.id)).toBe('unknown');
    await finished(moved.reminders[0]!.id);
    expect(smsTo(to)).toHaveLength(1);
  });
});

describe('quiet hours', () => {
  const quiet = { start: '21:00', end: '08:00' };

  it('delays a non-urgent notice to the end of quiet hours in the clinic timezone, then delivers it', async () => {
    const to = '+819000000010';
    fakeNow = tokyo('2036-03-10T23:00:00');
    const startsAt = tokyo('2036-03-12T01:00:00');
    const result = await service.scheduleAppointmentReminders({
      clinic: C,
      appointmentId: 'night',
      startsAt,
      contact: { channel: 'sms', address: to, quietHours: quiet },
      kinds: ['reminder_24h'],
    });
    if (!result.ok) throw new Error(result.error.code);
    // Due at 01:00 on the 11th, inside quiet hours: moved to 08:00.
    expect(result.reminders[0]!.sendAt).toBe(tokyo('2036-03-11T08:00:00'));
    const id = result.reminders[0]!.id;
    expect(await stateOf(id)).toBe('delayed');
    expect((await service.queue.getJob(id))!.delay).toBe(9 * 3600_000);

    fakeNow = tokyo('2036-03-11T08:00:01');
    await (await service.queue.getJob(id))!.promote();
    await finished(id);
    expect(smsTo(to)).toHaveLength(1);
    expect(smsTo(to)[0]!.body).toContain('3月12日(水) 01:00');
  });

  it('makes the worker hold back a non-urgent notice that comes due inside quiet hours', async () => {
    const to = '+819000000011';
    const daytime = new NotificationService({ config: fixture.config({ NOTIFY_SMTP_URL: undefined, NOTIFY_SMTP_FROM: undefined }), clinics: fixture.clinics, now: () => tokyo('2036-03-10T12:00:00') });
    try {
      const result = await daytime.scheduleAppointmentReminders({
        clinic: C,
        appointmentId: 'late-night',
        startsAt: tokyo('2036-03-11T12:00:00') + 100,
        contact: { channel: 'sms', address: to, quietHours: quiet },
        kinds: ['reminder_24h'],
      });
      if (!result.ok) throw new Error(result.error.code);
      const id = result.reminders[0]!.id;
      // The worker's clock says 23:00.
      fakeNow = tokyo('2036-03-10T23:00:00');
      await waitFor(async () => (await stateOf(id)) === 'delayed' && (await service.queue.getJob(id))!.processedOn, 'the worker to delay the job');
      await sleep(300);
      expect(smsTo(to)).toHaveLength(0);
      fakeNow = tokyo('2036-03-11T08:00:01');
      await (await service.queue.getJob(id))!.promote();
      await finished(id);
      expect(smsTo(to)).toHaveLength(1);
    } finally {
      await daytime.close();
    }
  });

  it('never delays a "called" notice', async () => {
    const to = '+819000000012';
    fakeNow = tokyo('2036-03-10T23:30:00');
    // Department gp has nobody else waiting in this file.
    const ticket = await waitingTicket('gp');
    await service.setTicketContact(C, ticket.id, { channel: 'sms', address: to, quietHours: quiet });
    const called = await queue.callNext(C, { dept: 'gp', room: 'r1' });
    expect(called.ok && called.event.ticket.id).toBe(ticket.id);
    const result = await service.enqueue({
      clinic: C,
      kind: 'queue_called',
      recipient: { type: 'ticket', ticketId: ticket.id },
      vars: { ticketNumber: ticket.number, room: 'r1' },
      idempotencyKey: `ticket.${ticket.id}.queue_called.0`,
      urgent: true,
    });
    if (!result.ok) throw new Error(result.error.code);
    expect(result.sendAt).toBe(fakeNow);
    await finished(result.id);
    expect(smsTo(to)[0]!.body).toBe(`【テストクリニック】受付番号 ${ticket.number} の方、第1診察室へお入りください。`);
    await queue.done(C, { ticketId: ticket.id });
  });

  it('sends a reminder on time when quiet hours would push it past the appointment', async () => {
    const to = '+819000000013';
    fakeNow = tokyo('2036-03-10T22:00:00');
    const { id } = await remindSoon(to);
    await finished(id);
    expect(smsTo(to)).toHaveLength(1);
  });
});

describe('retries and dead letters', () => {
  it('retries with exponential backoff, dead-letters after the last attempt, and delivers on retryDeadLetter', async () => {
    const to = '+819000000020';
    const requestsTo = () => fixture.sms.requests.filter((r) => new URLSearchParams(r.body).get('To') === to);
    fixture.sms.failNext(3, 503);
    const { id } = await remindSoon(to);
    const failed = await finished(id, 'failed');
    expect(failed.attemptsMade).toBe(3);
    const times = requestsTo().map((r) => r.at);
    expect(times).toHaveLength(3);
    const [g1, g2] = [times[1]! - times[0]!, times[2]! - times[1]!];
    expect(g1).toBeGreaterThanOrEqual(90);
    expect(g2).toBeGreaterThanOrEqual(190);
    expect(smsTo(to)).toHaveLength(0);

    const letters = await service.listDeadLetters();
    const letter = letters.find((l) => l.id === id);
    expect(letter).toMatchObject({ clinic: C, kind: 'reminder_1h', code: 'NOTIFY_PROVIDER_FAILED', reason: 'NOTIFY_PROVIDER_FAILED: sms 503', attempts: 3 });
    expect(JSON.stringify(letters)).not.toContain(to.slice(1));

    expect(await service.retryDeadLetter(id)).toEqual({ ok: true });
    await finished(id);
    expect(smsTo(to)).toHaveLength(1);
    expect((await service.listDeadLetters()).some((l) => l.id === id)).toBe(false);
    expect(await service.retryDeadLetter(id)).toMatchObject({ ok: false, error: { code: 'NOTIFY_DEAD_LETTER_NOT_FOUND' } });
  });

  it('dead-letters a permanent rejection at once, without retrying', async () => {
    const to = lineUserId(20);
    fixture.line.failNext(1, 400);
    const { id } = await remindSoon(to, { channel: 'line' });
    const failed = await finished(id, 'failed');
    expect(failed.attemptsMade).toBe(1);
    expect((await service.listDeadLetters()).find((l) => l.id === id)).toMatchObject({ code: 'NOTIFY_PROVIDER_REJECTED', reason: 'NOTIFY_PROVIDER_REJECTED: line 400' });
    expect(fixture.line.accepted.filter((p) => p.to === to)).toHaveLength(0);
  });

  it('fails a notice for a channel that is not configured with NOTIFY_CHANNEL_DISABLED', async () => {
    const ticket = await waitingTicket();
    expect(await service.setTicketContact(C, ticket.id, { channel: 'email', address: 'a@example.jp' })).toMatchObject({
      ok: false,
      error: { code: 'NOTIFY_CHANNEL_DISABLED', detail: 'email' },
    });
    // A contact stored while e-mail was on (here written straight to the store) meets a worker where it is off.
    await service.contacts.setTicketContact(C, ticket.id, { channel: 'email', address: 'a@example.jp', locale: 'ja' }, 600);
    const result = await enqueueAhead(ticket, 1);
    const failed = await finished(result.id, 'failed');
    expect(failed.attemptsMade).toBe(1);
    expect((await service.listDeadLetters()).find((l) => l.id === result.id)).toMatchObject({
      code: 'NOTIFY_CHANNEL_DISABLED',
      recipient: { type: 'ticket', ticketId: ticket.id },
      ticketNumber: ticket.number,
    });
  });

  it('drops a queue notice whose ticket has moved on by the time it is sent', async () => {
    const to = '+819000000030';
    const ticket = await waitingTicket();
    await service.setTicketContact(C, ticket.id, { channel: 'sms', address: to });
    const result = await enqueueAhead(ticket, 3, Date.now() + 300);
    await queue.cancel(C, { ticketId: ticket.id });
    const job = await finished(result.id);
    expect(job.returnvalue).toEqual({ outcome: 'skipped', reason: 'stale' });
    expect(smsTo(to)).toHaveLength(0);
  });
});
