/**
 * What the limit server and the brokers are fed: the queue events of the
 * hub's own calls, made before the phase by the hub's real queue scripts
 * (QueueService) against the benchmark's Redis, in the staff's cycle of
 * `npm run bench:queue` (call next in the least recently used room, start
 * the called ticket, check one more patient in). Every server then carries
 * the same events as the hub, with the same fields and sizes; only the
 * timestamps and ticket ids differ.
 */
import { Redis } from 'ioredis';
import { ClinicRegistry, QueueService } from '@clinic-hub/hub';
import { redisCommand } from './redis-command.js';
import type { TrackSpec } from './worker-protocol.js';

/** The clinic of harness/clinics/bench.json. */
export const BENCH_CLINIC_ID = 'bench';

/**
 * What every display records, whatever server it listens to: each queue
 * event counted by type, each ticket.called timed by its seq; an event
 * without a ticket number is malformed.
 */
export const DISPLAY_TRACK: TrackSpec = { event: 'queue:event', keyField: 'seq', typeField: 'type', timedType: 'ticket.called', requireField: 'number' };

export interface FeedCall {
  /** The `seq` of the call's ticket.called event: what the displays' arrivals are keyed by. */
  calledSeq: number;
  /**
   * The call's queue events as the hub's displays receive them (the JSON
   * Socket.IO writes of the event it parsed from the live channel), in
   * commit order: ticket.done (not in a room's first call), ticket.called,
   * ticket.started, ticket.issued.
   */
  events: string[];
}

/**
 * Flushes the Redis on `port`, checks in the patients already waiting, and
 * makes `calls` calls of the staff's cycle in `dept` of `clinicId`.
 */
export async function recordCallFeed(options: { port: number; clinicsDir: string; clinicId: string; calls: number }): Promise<FeedCall[]> {
  const { port, clinicId } = options;
  await redisCommand(port, ['FLUSHALL']);
  const clinics = ClinicRegistry.fromDirectory(options.clinicsDir);
  const clinic = clinics.get(clinicId);
  if (!clinic) throw new Error(`clinic ${clinicId} not found in ${options.clinicsDir}`);
  const dept = clinic.departments[0]!;
  const rooms = dept.rooms.map((r) => r.id);
  const redis = new Redis(`redis://127.0.0.1:${port}`, { maxRetriesPerRequest: 1 });
  try {
    const queue = new QueueService(redis, clinics);
    const must = async <T>(what: string, result: Promise<{ ok: true; event: T } | { ok: false; error: { code: string } }>): Promise<T> => {
      const r = await result;
      if (!r.ok) throw new Error(`recording the call feed: ${what} failed with ${r.error.code}`);
      return r.event;
    };
    for (let i = 0; i < Math.min(rooms.length, 10); i++) await must('checkin', queue.checkin(clinicId, { dept: dept.id, priority: 'normal' }));
    const feed: FeedCall[] = [];
    for (let i = 0; i < options.calls; i++) {
      const before = await queue.lastSeq(clinicId);
      const called = await must('call-next', queue.callNext(clinicId, { dept: dept.id, room: rooms[i % rooms.length]! }));
      await must('start', queue.start(clinicId, { ticketId: called.ticket.id }));
      await must('checkin', queue.checkin(clinicId, { dept: dept.id, priority: 'normal' }));
      const events = await queue.eventsAfter(clinicId, before);
      feed.push({ calledSeq: called.seq, events: events.map((e) => JSON.stringify(e)) });
    }
    return feed;
  } finally {
    redis.disconnect();
    await redisCommand(port, ['FLUSHALL']);
  }
}
