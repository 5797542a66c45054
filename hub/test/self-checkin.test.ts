import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { ClinicConfig, type ActionResult, type QueueEvent, type Ack } from '@clinic-hub/protocol';
import { TokenIssuer } from '@clinic-hub/platform/token-issuer';
import { ClinicRegistry } from '../src/clinics/clinic-registry.js';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { TEST_CLINICS_DIR } from '@clinic-hub/test-kit/hub-node';
import { readAudit } from '../src/audit/audit-log.js';
import { AppointmentStore } from '../src/appointments/appointment-store.js';
import { QueueService, clinicKeys } from '../src/queue/index.js';
import { isOpen, nextOpening } from '../src/self-checkin/opening-hours.js';
import { SelfCheckinService, type SelfCheckinCaller } from '../src/self-checkin/self-checkin-service.js';

/**
 * Self check-in and appointment arrival against a real Redis: the queue's
 * order (appointments at their time, late ones as walk-ins), one ticket per
 * appointment, the clinic's rules (departments, phones, opening hours) and
 * the limits per kiosk, per clinic's phones and per address.
 */
const C = 'testclinic';
const MIN = 60_000;
let redisServer: TestRedis;
let redis: Redis;
let clinics: ClinicRegistry;
let queue: QueueService;
let store: AppointmentStore;

const base = ClinicRegistry.fromDirectory(TEST_CLINICS_DIR).get(C)!;
const kiosk: SelfCheckinCaller = { via: 'kiosk', actor: 'kiosk:entrance', role: 'kiosk', address: '10.0.0.5' };
const phone = (address: string, poster = ''): SelfCheckinCaller => ({ via: poster ? 'mobile' : 'arrival', actor: poster ? `poster:${poster}` : 'arrival', role: 'patient', address });

function ok<T extends object>(result: Ack<T>): T {
  if (!result.ok) throw new Error(`expected ok, got ${result.error.code} ${result.error.detail ?? ''}`);
  return result;
}
const event = (result: Ack<ActionResult>): QueueEvent => ok(result).event;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Deps = ConstructorParameters<typeof SelfCheckinService>[0];
function service(options: { limits?: Partial<Deps['limits']>; now?: () => number; registry?: ClinicRegistry; setTicketContact?: Deps['setTicketContact'] } = {}) {
  const registry = options.registry ?? clinics;
  return new SelfCheckinService({
    queue: new QueueService(redis, registry),
    tokens: new TokenIssuer('test-secret-that-is-long-enough-for-hs256-0123456789'),
    tokenTtlSeconds: () => 3600,
    publicUrl: () => 'https://hub.example.jp',
    setTicketContact: options.setTicketContact ?? (async () => ({ ok: true })),
    redis,
    clinics: registry,
    appointments: store,
    limits: { kioskPerMinute: 100, mobilePerMinute: 100, addressPerHour: 100, wrongCodesPer10Minutes: 100, ...options.limits },
    ...(options.now ? { now: options.now } : {}),
  });
}

async function appointment(id: string, startsAt: number, dept = 'gp') {
  return store.put(C, { id, startsAt, dept, room: null }, startsAt + 24 * 3600_000);
}

beforeAll(async () => {
  redisServer = await startTestRedis();
  redis = new Redis(redisServer.url);
  clinics = ClinicRegistry.fromDirectory(TEST_CLINICS_DIR);
  queue = new QueueService(redis, clinics);
  store = new AppointmentStore(redis);
});
afterAll(async () => {
  redis.disconnect();
  await redisServer.cleanup();
});
beforeEach(async () => {
  await redis.flushall();
});

describe('appointments in the waiting order', () => {
  it('puts an on-time arrival at its scheduled time: after walk-ins who came before it, ahead of those who came after', async () => {
    const before = event(await queue.checkin(C, { dept: 'gp', priority: 'normal' }));
    await sleep(20);
    const record = await appointment('appt-1', Date.now());
    await sleep(20);
    const after = event(await queue.checkin(C, { dept: 'gp', priority: 'normal' }));
    const arrived = event(await queue.checkin(C, { dept: 'gp', priority: 'normal' }, undefined, { id: record.id, startsAt: record.startsAt }));
    expect(arrived.type).toBe('ticket.issued');
    expect(arrived.ticket).toMatchObject({ appointmentAt: record.startsAt, order: record.startsAt, status: 'waiting' });
    const waiting = await redis.zrange(`${clinicKeys(C).prefix}waiting:gp`, 0, -1);
    expect(waiting).toEqual([before.ticket.id, arrived.ticket.id, after.ticket.id]);
    // Called in that order.
    const calls = [];
    for (const room of ['r1', 'r2']) calls.push(event(await queue.callNext(C, { dept: 'gp', room })).ticket.id);
    expect(calls).toEqual([before.ticket.id, arrived.ticket.id]);
    // The seq goes on without a gap and the arrival is marked in the appointment.
    expect([before.seq, after.seq, arrived.seq]).toEqual([1, 2, 3]);
    expect((await store.get(C, 'appt-1'))?.ticket).toBe(arrived.ticket.id);
  });

  it('waits behind everyone who is there when later than appointmentLateMinutes (a walk-in), and says it is an appointment', async () => {
    const record = await appointment('appt-late', Date.now() - 16 * MIN);
    const walkIn = event(await queue.checkin(C, { dept: 'gp', priority: 'normal' }));
    const late = event(await queue.checkin(C, { dept: 'gp', priority: 'normal' }, undefined, { id: record.id, startsAt: record.startsAt }));
    expect(late.ticket.appointmentAt).toBe(record.startsAt);
    expect(late.ticket.order).toBeGreaterThan(walkIn.ticket.order);
    // 14 minutes late is still on time.
    const onTime = await appointment('appt-14', Date.now() - 14 * MIN);
    const arrived = event(await queue.checkin(C, { dept: 'gp', priority: 'normal' }, undefined, { id: onTime.id, startsAt: onTime.startsAt }));
    expect(arrived.ticket.order).toBeLessThan(walkIn.ticket.order);
  });

  it('gives one ticket per appointment: arriving again replays the first, and refuses too early, moved or unknown appointments', async () => {
    const record = await appointment('appt-2', Date.now() + 30 * MIN);
    const first = await queue.checkin(C, { dept: 'gp', priority: 'normal' }, undefined, { id: record.id, startsAt: record.startsAt });
    const again = await queue.checkin(C, { dept: 'gp', priority: 'normal' }, undefined, { id: record.id, startsAt: record.startsAt });
    expect(ok(again).replayed).toBe(true);
    expect(event(again).ticket.id).toBe(event(first).ticket.id);
    expect(await queue.lastSeq(C)).toBe(1);

    const early = await appointment('appt-early', Date.now() + 121 * MIN);
    expect(await queue.checkin(C, { dept: 'gp', priority: 'normal' }, undefined, { id: early.id, startsAt: early.startsAt })).toMatchObject({
      ok: false,
      error: { code: 'APPOINTMENT_TOO_EARLY' },
    });
    expect(await queue.checkin(C, { dept: 'gp', priority: 'normal' }, undefined, { id: record.id + 'x', startsAt: record.startsAt })).toMatchObject({
      ok: false,
      error: { code: 'APPOINTMENT_NOT_FOUND' },
    });
    const moved = await appointment('appt-moved', Date.now() + 10 * MIN);
    expect(await queue.checkin(C, { dept: 'gp', priority: 'normal' }, undefined, { id: moved.id, startsAt: moved.startsAt - 1 })).toMatchObject({
      ok: false,
      error: { code: 'APPOINTMENT_NOT_FOUND' },
    });
    // Nothing refused changed the queue or its sequence.
    expect(await queue.lastSeq(C)).toBe(1);
  });

  it('sends a skipped ticket behind appointments that arrived early and wait at their later time', async () => {
    const record = await appointment('appt-3', Date.now() + 60 * MIN, 'peds');
    const first = event(await queue.checkin(C, { dept: 'peds', priority: 'normal' }));
    const early = event(await queue.checkin(C, { dept: 'peds', priority: 'normal' }, undefined, { id: record.id, startsAt: record.startsAt }));
    const second = event(await queue.checkin(C, { dept: 'peds', priority: 'normal' }));
    const waitingOrder = () => redis.zrange(`${clinicKeys(C).prefix}waiting:peds`, 0, -1);
    expect(await waitingOrder()).toEqual([first.ticket.id, second.ticket.id, early.ticket.id]);
    event(await queue.callNext(C, { dept: 'peds', room: 'r3' }));
    const skipped = event(await queue.skip(C, { ticketId: first.ticket.id }));
    expect(skipped.ticket.order).toBe(record.startsAt + 1);
    expect(await waitingOrder()).toEqual([second.ticket.id, early.ticket.id, first.ticket.id]);
  });

  it('keeps urgent tickets first and walk-ins in arrival order, tickets from before orders were times included', async () => {
    // A ticket issued before this change: order 10^12 + seq.
    await redis.zadd(`${clinicKeys(C).prefix}waiting:gp`, 1_000_000_000_001, 'old-ticket');
    const a = event(await queue.checkin(C, { dept: 'gp', priority: 'normal' }));
    const b = event(await queue.checkin(C, { dept: 'gp', priority: 'normal' }));
    const u = event(await queue.checkin(C, { dept: 'gp', priority: 'urgent' }));
    expect(a.ticket.order).toBeLessThan(b.ticket.order);
    expect(u.ticket.order).toBeLessThan(1_000_000_000_001);
    const waiting = await redis.zrange(`${clinicKeys(C).prefix}waiting:gp`, 0, -1);
    expect(waiting).toEqual([u.ticket.id, 'old-ticket', a.ticket.id, b.ticket.id]);
  });
});

describe('self check-in', () => {
  it('issues the same ticket and event as reception, stores the contact given, audits who checked in and from where', async () => {
    const contacts: unknown[] = [];
    const self = service({
      setTicketContact: async (_clinic, ticketId, contact) => {
        contacts.push({ ticketId, contact });
        return { ok: true };
      },
    });
    const result = ok(await self.checkin(C, { dept: 'gp', phone: '+819012345678', language: 'zh' }, kiosk));
    expect(result.event).toMatchObject({ seq: 1, type: 'ticket.issued', ticket: { number: 'A-001', dept: 'gp', priority: 'normal', status: 'waiting' } });
    expect(result.patientUrl).toBe(`https://hub.example.jp/ticket#token=${result.patientToken}`);
    // gp's two rooms are open (the clinic's settings): (0 + 0.5) × 10 / 2 = 2.5, rounded.
    expect(result).toMatchObject({ appointment: null, line: null, ahead: 0, waitMinutes: 3, notify: { ok: true } });
    // Chinese is not a notice language: the SMS goes in English.
    expect(contacts).toEqual([{ ticketId: result.event.ticket.id, contact: { channel: 'sms', address: '+819012345678', locale: 'en' } }]);
    const [audit] = await readAudit(redis, C, 1);
    expect(audit).toMatchObject({ actor: 'kiosk:entrance', role: 'kiosk', action: 'checkin.kiosk', subject: result.event.ticket.id, from: '10.0.0.5' });
    // The stream holds the same event displays get.
    const entries = await redis.xrange(clinicKeys(C).events, '-', '+');
    expect(entries.map(([, fields]) => JSON.parse(fields[1]!))).toEqual([result.event]);
  });

  it('offers the departments of selfCheckin (by default every one that is not online), reception any', async () => {
    const self = service();
    expect(self.info(C)).toMatchObject({ ok: true, info: { departments: ['gp', 'peds'], languages: ['ja', 'en', 'zh', 'ko'], mobile: { enabled: true, open: true } } });
    expect(await self.checkin(C, { dept: 'online' }, kiosk)).toMatchObject({ ok: false, error: { code: 'CHECKIN_DEPT_NOT_OFFERED' } });
    expect(await self.checkin(C, { dept: 'nope' }, kiosk)).toMatchObject({ ok: false, error: { code: 'QUEUE_DEPT_NOT_FOUND' } });
    ok(await self.checkin(C, { dept: 'online' }, { ...kiosk, via: 'reception', role: 'staff', actor: 'staff:sato' }));
  });

  it('checks an appointment in by its code with its department, says whether it was late, and once only', async () => {
    const self = service();
    const record = await appointment('appt-k', Date.now() - 20 * MIN, 'peds');
    const first = ok(await self.checkin(C, { appointmentCode: record.code }, kiosk));
    expect(first.event.ticket).toMatchObject({ dept: 'peds', appointmentAt: record.startsAt });
    expect(first.appointment).toEqual({ startsAt: record.startsAt, late: true });
    const again = ok(await self.checkin(C, { appointmentCode: record.code }, phone('192.0.2.1')));
    expect(again.replayed).toBe(true);
    expect(again.event.ticket.id).toBe(first.event.ticket.id);
    // Once that visit is over the code is spent.
    ok(await queue.cancel(C, { ticketId: first.event.ticket.id }));
    expect(await self.checkin(C, { appointmentCode: record.code }, kiosk)).toMatchObject({ ok: false, error: { code: 'APPOINTMENT_ALREADY_ARRIVED' } });
  });

  it('says from when an early arrival may come', async () => {
    const self = service();
    const record = await appointment('appt-e', Date.now() + 3 * 60 * MIN);
    const refused = await self.checkin(C, { appointmentCode: record.code }, kiosk);
    expect(refused).toMatchObject({ ok: false, error: { code: 'APPOINTMENT_TOO_EARLY', detail: `from ${new Date(record.startsAt - 120 * MIN).toISOString()}` } });
  });

  it('refuses every code for a while after too many wrong ones from one kiosk or address, not from others', async () => {
    const self = service({ limits: { wrongCodesPer10Minutes: 3 } });
    const record = await appointment('appt-w', Date.now());
    for (let i = 0; i < 3; i++) expect(await self.checkin(C, { appointmentCode: `900000000${i}` }, kiosk)).toMatchObject({ ok: false, error: { code: 'APPOINTMENT_NOT_FOUND' } });
    expect(await self.checkin(C, { appointmentCode: record.code }, kiosk)).toMatchObject({ ok: false, error: { code: 'RATE_LIMITED' } });
    ok(await self.checkin(C, { appointmentCode: record.code }, phone('192.0.2.9')));
  });

  it('limits check-ins per kiosk, per clinic from phones and per address, across services sharing Redis (hub nodes)', async () => {
    const one = service({ limits: { kioskPerMinute: 2, addressPerHour: 2 } });
    const two = service({ limits: { kioskPerMinute: 2, addressPerHour: 2 } });
    ok(await one.checkin(C, { dept: 'gp' }, kiosk));
    ok(await two.checkin(C, { dept: 'gp' }, kiosk));
    const refused = await one.checkin(C, { dept: 'gp' }, kiosk);
    expect(refused).toMatchObject({ ok: false, error: { code: 'RATE_LIMITED' } });
    expect(!refused.ok && refused.error.detail).toMatch(/^kiosk limit; retry in \d+ ms$/);
    ok(await one.checkin(C, { dept: 'gp' }, { ...kiosk, actor: 'kiosk:second' }));

    const poster = await one.posters.create(C, 'entrance', 'staff:sato');
    ok(await one.checkin(C, { dept: 'gp', poster: poster.id }, phone('192.0.2.7', poster.id)));
    ok(await two.checkin(C, { dept: 'gp', poster: poster.id }, phone('192.0.2.7', poster.id)));
    expect(await one.checkin(C, { dept: 'gp', poster: poster.id }, phone('192.0.2.7', poster.id))).toMatchObject({ ok: false, error: { code: 'RATE_LIMITED' } });
    const perClinic = service({ limits: { mobilePerMinute: 1 } });
    await redis.flushall();
    const fresh = await perClinic.posters.create(C, 'entrance', 'staff:sato');
    ok(await perClinic.checkin(C, { dept: 'gp', poster: fresh.id }, phone('192.0.2.20', fresh.id)));
    expect(await perClinic.checkin(C, { dept: 'gp', poster: fresh.id }, phone('192.0.2.21', fresh.id))).toMatchObject({ ok: false, error: { code: 'RATE_LIMITED' } });
  });

  it('takes phones only from a poster that is not withdrawn, when mobile check-in is on and the clinic is open', async () => {
    // Open Monday to Friday 09:00–12:00 and 14:00–18:00 Tokyo time, closed on 2026-12-08.
    const config = ClinicConfig.parse({
      ...base,
      openingHours: { mon: ['09:00-12:00', '14:00-18:00'], tue: ['09:00-12:00'], wed: ['09:00-12:00'], closedDates: ['2026-12-08'] },
    });
    let now = Date.parse('2026-12-07T10:00:00+09:00'); // a Monday
    const self = service({ registry: new ClinicRegistry([config]), now: () => now });
    const poster = await self.posters.create(C, 'entrance', 'staff:sato');
    const at = (address: string) => phone(address, poster.id);
    ok(await self.checkin(C, { dept: 'gp', poster: poster.id }, at('192.0.2.30')));
    now = Date.parse('2026-12-07T12:30:00+09:00');
    expect(await self.checkin(C, { dept: 'gp', poster: poster.id }, at('192.0.2.30'))).toMatchObject({
      ok: false,
      error: { code: 'CHECKIN_CLOSED', detail: 'opens 2026-12-07 14:00 (Asia/Tokyo)' },
    });
    now = Date.parse('2026-12-07T19:00:00+09:00');
    // Tuesday the 8th is a holiday: next is Wednesday.
    expect(await self.checkin(C, { dept: 'gp', poster: poster.id }, at('192.0.2.30'))).toMatchObject({ ok: false, error: { detail: 'opens 2026-12-09 09:00 (Asia/Tokyo)' } });
    // The kiosk is not bound by the hours.
    ok(await self.checkin(C, { dept: 'gp' }, kiosk));
    now = Date.parse('2026-12-09T09:00:00+09:00');
    ok(await self.checkin(C, { dept: 'gp', poster: poster.id }, at('192.0.2.30')));
    await self.posters.withdraw(C, poster.id);
    expect(await self.checkin(C, { dept: 'gp', poster: poster.id }, at('192.0.2.30'))).toMatchObject({ ok: false, error: { code: 'CHECKIN_MOBILE_OFF', detail: 'this poster has been withdrawn' } });
    const off = service({ registry: new ClinicRegistry([ClinicConfig.parse({ ...config, selfCheckin: { mobile: false } })]), now: () => now });
    const other = await off.posters.create(C, 'entrance', 'staff:sato');
    expect(await off.checkin(C, { dept: 'gp', poster: other.id }, at('192.0.2.30'))).toMatchObject({ ok: false, error: { code: 'CHECKIN_MOBILE_OFF' } });
  });
});

describe('opening hours', () => {
  const hours = ClinicConfig.parse({ ...base, openingHours: { sat: ['08:30-12:30'], sun: ['22:00-24:00'] } }).openingHours!;
  it('are read in the clinic timezone, end excluded', () => {
    expect(isOpen(hours, 'Asia/Tokyo', Date.parse('2026-12-12T08:30:00+09:00'))).toBe(true);
    expect(isOpen(hours, 'Asia/Tokyo', Date.parse('2026-12-12T12:30:00+09:00'))).toBe(false);
    expect(isOpen(hours, 'Asia/Tokyo', Date.parse('2026-12-13T23:59:00+09:00'))).toBe(true);
    expect(isOpen(hours, 'America/New_York', Date.parse('2026-12-12T08:30:00-05:00'))).toBe(true);
    expect(nextOpening(hours, 'Asia/Tokyo', Date.parse('2026-12-12T13:00:00+09:00'))).toBe('2026-12-13 22:00');
  });
  it('are checked when the clinic file is read', () => {
    expect(ClinicConfig.safeParse({ ...base, openingHours: { mon: ['12:00-09:00'] } }).success).toBe(false);
    expect(ClinicConfig.safeParse({ ...base, openingHours: undefined, selfCheckin: { mobile: true } }).success).toBe(false);
    expect(ClinicConfig.safeParse({ ...base, selfCheckin: { departments: ['nope'] } }).success).toBe(false);
  });
});
