import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import type { PublicTicket } from '@clinic-hub/protocol';
import { QueueService, clinicKeys } from '../src/queue/index.js';
import { NotificationService } from '../src/notify/notification-service.js';
import { startNotificationWorker, type RunningNotificationWorker } from '../src/notify/notification-worker.js';
import { TEST_CLINIC, lineUserId, sleep, startNotifyFixture, waitFor, type NotifyFixture } from '@clinic-hub/test-kit/notify-fixture';

const C = TEST_CLINIC;
let fixture: NotifyFixture;
let worker: RunningNotificationWorker;
let service: NotificationService;
let redis: Redis;
let queue: QueueService;

beforeAll(async () => {
  fixture = await startNotifyFixture();
  redis = new Redis(fixture.redisUrl);
  queue = new QueueService(redis, fixture.clinics);
  worker = await startNotificationWorker(fixture.config(), { clinics: fixture.clinics });
  service = new NotificationService({ config: fixture.config(), clinics: fixture.clinics });
});
afterAll(async () => {
  await service?.close();
  await worker?.close();
  redis?.disconnect();
  await fixture?.stop();
});
beforeEach(async () => {
  // Each test starts with an empty queue; the watcher's memory of keys is per ticket id, which are new each time.
  for (const ticket of (await redis.hvals(clinicKeys(C).tickets)).map((raw) => JSON.parse(raw) as PublicTicket)) {
    await queue.cancel(C, { ticketId: ticket.id });
  }
});

async function checkin(dept = 'gp'): Promise<PublicTicket> {
  const result = await queue.checkin(C, { dept, priority: 'normal' });
  if (!result.ok) throw new Error(result.error.code);
  return result.event.ticket;
}

/** Staff press "call next" in room r1; the ticket in consultation there is finished first. */
async function callNext(room = 'r1', dept = 'gp'): Promise<PublicTicket> {
  const result = await queue.callNext(C, { dept, room });
  if (!result.ok) throw new Error(result.error.code);
  await queue.start(C, { ticketId: result.event.ticket.id });
  return result.event.ticket;
}

describe('queue-driven notices', () => {
  it('sends 3 ahead, 1 ahead and called once each as real queue changes happen', async () => {
    const to = '+819033330000';
    const tickets: PublicTicket[] = [];
    for (let i = 0; i < 6; i++) tickets.push(await checkin());
    const mine = tickets[5]!;
    expect(await service.setTicketContact(C, mine.id, { channel: 'sms', address: to, locale: 'ja' })).toEqual({ ok: true });
    const texts = () => fixture.sms.accepted.filter((m) => m.to === to).map((m) => m.body);

    await callNext(); // 4 ahead
    await callNext(); // 3 ahead
    await waitFor(() => texts().length === 1, 'the 3-ahead notice');
    expect(texts()[0]).toBe(`【テストクリニック】受付番号 ${mine.number}：あと3人でお呼びします。`);

    await callNext(); // 2 ahead: nothing new
    await callNext(); // 1 ahead
    await waitFor(() => texts().length === 2, 'the 1-ahead notice');
    expect(texts()[1]).toBe(`【テストクリニック】受付番号 ${mine.number}：あと1人でお呼びします。`);

    await callNext(); // next: "1 ahead" was already sent
    const called = await queue.callNext(C, { dept: 'gp', room: 'r2' });
    expect(called.ok && called.event.ticket.id).toBe(mine.id);
    await waitFor(() => texts().length === 3, 'the called notice');
    expect(texts()[2]).toBe(`【テストクリニック】受付番号 ${mine.number} の方、第2診察室へお入りください。`);

    // The same event delivered again (a replay on the live channel) and more changes send nothing new.
    if (called.ok) await redis.spublish(clinicKeys(C).live, JSON.stringify(called.event));
    await checkin();
    await sleep(600);
    expect(texts()).toHaveLength(3);
  });

  it('notifies each patient on their own channel and in their language, and a recall calls again', async () => {
    const line = lineUserId(0xbeef);
    const first = await checkin('peds');
    const second = await checkin('peds');
    await service.setTicketContact(C, first.id, { channel: 'line', address: line, locale: 'en' });
    await service.setTicketContact(C, second.id, { channel: 'sms', address: '+819044440000' });
    const pushes = () => fixture.line.accepted.filter((p) => p.to === line).map((p) => p.messages[0]!.text);
    const texts = () => fixture.sms.accepted.filter((m) => m.to === '+819044440000').map((m) => m.body);

    // Contacts were set after check-in: the next change of the department sends what applies now.
    await checkin('peds');
    await waitFor(() => pushes().length === 1 && texts().length === 1, 'both 1-ahead notices');
    expect(pushes()[0]).toBe(`Test Clinic: almost your turn\nTicket ${first.number}: you are next. Please wait in the waiting room.`);
    expect(texts()[0]).toContain(`受付番号 ${second.number}：あと1人でお呼びします`);

    const called = await queue.callNext(C, { dept: 'peds', room: 'r3' });
    expect(called.ok && called.event.ticket.id).toBe(first.id);
    await waitFor(() => pushes().length === 2, 'the called notice');
    expect(pushes()[1]).toContain(`Ticket ${first.number}: thank you for waiting, please go to Room 3.`);

    await queue.recall(C, { ticketId: first.id });
    await waitFor(() => pushes().length === 3, 'the recall notice');
    await sleep(400);
    expect(pushes()).toHaveLength(3);
    expect(texts()).toHaveLength(1);
  });

  it('does not send "3 ahead" after "1 ahead" when an urgent check-in pushes a ticket back', async () => {
    const to = '+819066660000';
    const ahead = await checkin('gp');
    const mine = await checkin('gp');
    await service.setTicketContact(C, mine.id, { channel: 'sms', address: to });
    await checkin('gp');
    const texts = () => fixture.sms.accepted.filter((m) => m.to === to).map((m) => m.body);
    await waitFor(() => texts().length === 1, 'the 1-ahead notice');
    for (let i = 0; i < 2; i++) {
      const urgent = await queue.checkin(C, { dept: 'gp', priority: 'urgent' });
      expect(urgent.ok).toBe(true);
    }
    // Now 3 ahead of it again (2 urgent + 1).
    await sleep(600);
    expect(texts()).toHaveLength(1);
    expect(await service.hasNotification(C, `ticket.${mine.id}.queue_3_ahead`)).toBe(false);
    expect(ahead.number).not.toBe(mine.number);
  });

  it('catches up on start: a worker that was down sends what applies now, once', async () => {
    await worker.close();
    const to = '+819055550000';
    const ticket = await checkin('gp');
    await service.setTicketContact(C, ticket.id, { channel: 'sms', address: to });
    const called = await queue.callNext(C, { dept: 'gp', room: 'r1' });
    expect(called.ok && called.event.ticket.id).toBe(ticket.id);
    // No worker was listening to that change.
    worker = await startNotificationWorker(fixture.config(), { clinics: fixture.clinics });
    const texts = () => fixture.sms.accepted.filter((m) => m.to === to).map((m) => m.body);
    await waitFor(() => texts().length === 1, 'the called notice after start');
    expect(texts()[0]).toContain('第1診察室へお入りください');
    await sleep(400);
    expect(texts()).toHaveLength(1);
  });
});
