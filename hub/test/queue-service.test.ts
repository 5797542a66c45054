import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Ack } from '@clinic-hub/protocol';
import { Redis } from 'ioredis';
import type { ActionResult, QueueEvent } from '@clinic-hub/protocol';
import { ClinicRegistry } from '../src/clinics/clinic-registry.js';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { TEST_CLINICS_DIR } from '@clinic-hub/test-kit/hub-node';
import { continueTrace, formatTraceparent, runInTrace } from '@clinic-hub/platform/tracing';
import { QueueService, clinicKeys, rebuildQueue } from '../src/queue/index.js';

const C = 'testclinic';
let redisServer: TestRedis;
let redis: Redis;
let queue: QueueService;

function ok(result: Ack<ActionResult>): QueueEvent {
  if (!result.ok) throw new Error(`expected ok, got ${result.error.code}`);
  return result.event;
}

beforeAll(async () => {
  redisServer = await startTestRedis();
  redis = new Redis(redisServer.url);
  queue = new QueueService(redis, ClinicRegistry.fromDirectory(TEST_CLINICS_DIR));
});
afterAll(async () => {
  redis.disconnect();
  await redisServer.cleanup();
});
beforeEach(async () => {
  await redis.flushall();
});

describe('check-in', () => {
  it('numbers tickets per department with the prefix and three digits', async () => {
    const a1 = ok(await queue.checkin(C, { dept: 'gp', priority: 'normal' }));
    const a2 = ok(await queue.checkin(C, { dept: 'gp', priority: 'normal' }));
    const b1 = ok(await queue.checkin(C, { dept: 'peds', priority: 'normal' }));
    expect([a1.ticket.number, a2.ticket.number, b1.ticket.number]).toEqual(['A-001', 'A-002', 'B-001']);
    expect(a1.ticket.status).toBe('waiting');
    expect([a1.seq, a2.seq, b1.seq]).toEqual([1, 2, 3]);
  });

  it('refuses an unknown department', async () => {
    const result = await queue.checkin(C, { dept: 'nope', priority: 'normal' });
    expect(result).toMatchObject({ ok: false, error: { code: 'QUEUE_DEPT_NOT_FOUND' } });
    expect(await redis.get(clinicKeys(C).seq)).toBeNull();
  });

  it('keeps patient data apart from the public ticket and the event', async () => {
    const event = ok(await queue.checkin(C, { dept: 'gp', priority: 'normal', patient: { name: '山田 太郎', phone: '090-0000-0000' } }));
    expect(JSON.stringify(event)).not.toContain('山田');
    const stream = await redis.xrange(clinicKeys(C).events, '-', '+');
    expect(JSON.stringify(stream)).not.toContain('山田');
    expect(await queue.patientInfo(C, event.ticket.id)).toEqual({ name: '山田 太郎', phone: '090-0000-0000' });
    expect(await redis.ttl(clinicKeys(C).patient(event.ticket.id))).toBeGreaterThan(3600);
  });

  it('does the same check-in once when the requestId is retried', async () => {
    const first = await queue.checkin(C, { dept: 'gp', priority: 'normal', requestId: 'req-checkin-1' });
    const again = await queue.checkin(C, { dept: 'gp', priority: 'normal', requestId: 'req-checkin-1' });
    expect(first.ok && again.ok).toBe(true);
    if (!first.ok || !again.ok) return;
    expect(again.replayed).toBe(true);
    expect(first.replayed).toBe(false);
    expect(again.event).toEqual(first.event);
    expect(await redis.hlen(clinicKeys(C).tickets)).toBe(1);
  });
});

describe('call next', () => {
  it('calls urgent tickets first, then in check-in order', async () => {
    const n1 = ok(await queue.checkin(C, { dept: 'gp', priority: 'normal' }));
    const n2 = ok(await queue.checkin(C, { dept: 'gp', priority: 'normal' }));
    const u1 = ok(await queue.checkin(C, { dept: 'gp', priority: 'urgent' }));
    const first = ok(await queue.callNext(C, { dept: 'gp', room: 'r1' }));
    const second = ok(await queue.callNext(C, { dept: 'gp', room: 'r2' }));
    expect(first.ticket.id).toBe(u1.ticket.id);
    expect(first.ticket).toMatchObject({ status: 'called', room: 'r1' });
    expect(second.ticket.id).toBe(n1.ticket.id);
    const snap = await queue.snapshot(C);
    expect(snap.ok && snap.snapshot.tickets.filter((t) => t.status === 'waiting').map((t) => t.id)).toEqual([n2.ticket.id]);
  });

  it('says QUEUE_EMPTY with nobody waiting, and changes nothing', async () => {
    expect(await queue.callNext(C, { dept: 'gp', room: 'r1' })).toMatchObject({ ok: false, error: { code: 'QUEUE_EMPTY' } });
    expect(await redis.get(clinicKeys(C).seq)).toBeNull();
  });

  it('refuses a room of another department', async () => {
    await queue.checkin(C, { dept: 'gp', priority: 'normal' });
    expect(await queue.callNext(C, { dept: 'gp', room: 'r3' })).toMatchObject({ ok: false, error: { code: 'QUEUE_ROOM_NOT_FOUND' } });
  });

  it('says QUEUE_ROOM_BUSY while the room has a called patient who has not started', async () => {
    await queue.checkin(C, { dept: 'gp', priority: 'normal' });
    await queue.checkin(C, { dept: 'gp', priority: 'normal' });
    ok(await queue.callNext(C, { dept: 'gp', room: 'r1' }));
    expect(await queue.callNext(C, { dept: 'gp', room: 'r1' })).toMatchObject({ ok: false, error: { code: 'QUEUE_ROOM_BUSY' } });
  });

  it('finishes the consultation in the room before calling the next patient', async () => {
    await queue.checkin(C, { dept: 'gp', priority: 'normal' });
    await queue.checkin(C, { dept: 'gp', priority: 'normal' });
    const called = ok(await queue.callNext(C, { dept: 'gp', room: 'r1' }));
    ok(await queue.start(C, { ticketId: called.ticket.id }));
    const next = ok(await queue.callNext(C, { dept: 'gp', room: 'r1' }));
    const events = await queue.eventsAfter(C, called.seq);
    expect(events.map((e) => e.type)).toEqual(['ticket.started', 'ticket.done', 'ticket.called']);
    expect(events[1]!.ticket.id).toBe(called.ticket.id);
    expect(events[1]!.deptStats).toMatchObject({ dept: 'gp', samples: 1 });
    expect(next.seq).toBe(events[2]!.seq);
  });
});

describe('recall, skip, start, done, cancel', () => {
  it('makes a ticket a no-show on the recall after the allowed ones, and frees the room', async () => {
    const t = ok(await queue.checkin(C, { dept: 'gp', priority: 'normal' }));
    ok(await queue.checkin(C, { dept: 'gp', priority: 'normal' }));
    ok(await queue.callNext(C, { dept: 'gp', room: 'r1' }));
    expect(ok(await queue.recall(C, { ticketId: t.ticket.id })).ticket).toMatchObject({ status: 'called', recalls: 1 });
    expect(ok(await queue.recall(C, { ticketId: t.ticket.id })).ticket).toMatchObject({ status: 'called', recalls: 2 });
    const noShow = ok(await queue.recall(C, { ticketId: t.ticket.id }));
    expect(noShow.type).toBe('ticket.no_show');
    expect(await queue.ticket(C, t.ticket.id)).toBeNull();
    expect(ok(await queue.callNext(C, { dept: 'gp', room: 'r1' })).type).toBe('ticket.called');
  });

  it('puts a skipped ticket behind those waiting now', async () => {
    const a = ok(await queue.checkin(C, { dept: 'gp', priority: 'normal' }));
    const b = ok(await queue.checkin(C, { dept: 'gp', priority: 'normal' }));
    ok(await queue.callNext(C, { dept: 'gp', room: 'r1' }));
    const skipped = ok(await queue.skip(C, { ticketId: a.ticket.id }));
    expect(skipped.ticket).toMatchObject({ status: 'waiting', room: null, calledAt: null });
    expect(ok(await queue.callNext(C, { dept: 'gp', room: 'r1' })).ticket.id).toBe(b.ticket.id);
  });

  it('refuses transitions that make no sense, with codes', async () => {
    const t = ok(await queue.checkin(C, { dept: 'gp', priority: 'normal' }));
    expect(await queue.start(C, { ticketId: t.ticket.id })).toMatchObject({ ok: false, error: { code: 'QUEUE_INVALID_TRANSITION' } });
    expect(await queue.recall(C, { ticketId: t.ticket.id })).toMatchObject({ ok: false, error: { code: 'QUEUE_INVALID_TRANSITION' } });
    expect(await queue.done(C, { ticketId: t.ticket.id })).toMatchObject({ ok: false, error: { code: 'QUEUE_INVALID_TRANSITION' } });
    expect(await queue.done(C, { ticketId: 'missing' })).toMatchObject({ ok: false, error: { code: 'QUEUE_TICKET_NOT_FOUND' } });
    ok(await queue.cancel(C, { ticketId: t.ticket.id }));
    expect(await queue.cancel(C, { ticketId: t.ticket.id })).toMatchObject({ ok: false, error: { code: 'QUEUE_TICKET_NOT_FOUND' } });
  });

  it('measures consultation durations into the department mean', async () => {
    await queue.checkin(C, { dept: 'peds', priority: 'normal' });
    const called = ok(await queue.callNext(C, { dept: 'peds', room: 'r3' }));
    ok(await queue.start(C, { ticketId: called.ticket.id }));
    await new Promise((r) => setTimeout(r, 60));
    const done = ok(await queue.done(C, { ticketId: called.ticket.id }));
    expect(done.deptStats).toMatchObject({ dept: 'peds', samples: 1 });
    const [measured] = ((await redis.hget(clinicKeys(C).durations, 'peds')) ?? '').split(',');
    expect(Number(measured)).toBeGreaterThanOrEqual(50);
    const snap = await queue.snapshot(C);
    expect(snap.ok && snap.snapshot.deptStats.peds).toEqual({ avgConsultMinutes: 0, samples: 1 });
    expect(snap.ok && snap.snapshot.deptStats.gp).toEqual({ avgConsultMinutes: 10, samples: 0 });
  });
});

describe('the event stream', () => {
  it('rebuilds the same queue that Redis holds', async () => {
    for (let i = 0; i < 6; i++) ok(await queue.checkin(C, { dept: i % 2 ? 'gp' : 'peds', priority: i === 4 ? 'urgent' : 'normal' }));
    const a = ok(await queue.callNext(C, { dept: 'gp', room: 'r1' }));
    ok(await queue.start(C, { ticketId: a.ticket.id }));
    const b = ok(await queue.callNext(C, { dept: 'gp', room: 'r2' }));
    ok(await queue.skip(C, { ticketId: b.ticket.id }));
    const c = ok(await queue.callNext(C, { dept: 'peds', room: 'r3' }));
    ok(await queue.cancel(C, { ticketId: c.ticket.id }));
    ok(await queue.callNext(C, { dept: 'gp', room: 'r1' }));

    const rebuilt = rebuildQueue(await queue.eventsAfter(C, 0));
    const snap = await queue.snapshot(C);
    if (!snap.ok) throw new Error(snap.error.code);
    expect(rebuilt.seq).toBe(snap.snapshot.seq);
    expect(rebuilt.tickets).toEqual(snap.snapshot.tickets);
    expect(rebuilt.deptStats.gp).toEqual(snap.snapshot.deptStats.gp);
  });

  it('sync replays what came after a sequence number, or gives a snapshot', async () => {
    for (let i = 0; i < 3; i++) ok(await queue.checkin(C, { dept: 'gp', priority: 'normal' }));
    const replay = await queue.sync(C, 1);
    expect(replay.ok && replay.mode === 'events' && replay.events.map((e) => e.seq)).toEqual([2, 3]);
    const upToDate = await queue.sync(C, 3);
    expect(upToDate.ok && upToDate.mode === 'events' && upToDate.events).toEqual([]);
    const fresh = await queue.sync(C, undefined);
    expect(fresh.ok && fresh.mode === 'snapshot' && fresh.snapshot.seq).toBe(3);
    // A client ahead of the hub (Redis was reset under it) gets a snapshot, not silence.
    const ahead = await queue.sync(C, 40);
    expect(ahead.ok && ahead.mode).toBe('snapshot');
  });

  it('keeps the action’s trace beside the event in its stream entry: never in the event, its ack or what sync replays', async () => {
    const trace = continueTrace('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
    const traced = ok(await runInTrace(trace, () => queue.checkin(C, { dept: 'gp', priority: 'normal' })));
    const untraced = ok(await queue.callNext(C, { dept: 'gp', room: 'r1' }));
    expect(await queue.eventTraceparent(C, traced.seq)).toBe(formatTraceparent(trace));
    expect(await queue.eventTraceparent(C, untraced.seq)).toBeNull();
    expect(await queue.eventTraceparent(C, 99)).toBeNull();
    const replay = await queue.sync(C, 0);
    expect(replay.ok && replay.mode === 'events' && replay.events).toEqual([traced, untraced]);
    expect(JSON.stringify([traced, replay])).not.toContain(trace.traceId);
  });
});
