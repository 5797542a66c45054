import { randomBytes } from 'node:crypto';
import {
  toPublicClinic,
  isErrorCode,
  type ActionResult,
  type ClinicConfig,
  type DeptStats,
  type PatientInfo,
  type PublicTicket,
  type QueueEvent,
  type QueuePayload,
  type QueueSnapshot,
  type SyncResult,
  fail,
  type Ack,
} from '@clinic-hub/protocol';
import type { ClinicRegistry } from '../clinics/clinic-registry.js';
import { newOpaqueId } from '@clinic-hub/platform/ids';
import { ReplicaAck, isRedisUnavailable, type RedisClient } from '@clinic-hub/platform/redis';
import { currentTraceparentArg } from '@clinic-hub/platform/tracing';
import { defineScripts, type ScriptRunner } from '@clinic-hub/platform/redis-scripts';
import { clinicKeys } from './queue-keys.js';


/** Events after this many missed ones are cheaper as a snapshot. */
const MAX_REPLAY_EVENTS = 500;

const SCRIPT_NAMES = ['checkin', 'call-next', 'call-ticket', 'recall', 'start', 'skip', 'done', 'cancel'] as const;
type ScriptName = (typeof SCRIPT_NAMES)[number];

const dateFormatters = new Map<string, Intl.DateTimeFormat>();
function clinicDate(timezone: string, at = new Date()): string {
  let format = dateFormatters.get(timezone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-CA', { timeZone: timezone, year: 'numeric', month: '2-digit', day: '2-digit' });
    dateFormatters.set(timezone, format);
  }
  return format.format(at).replaceAll('-', '');
}

/**
 * How long a rewind is remembered (markRewound). The clients that applied a
 * lost change are told at once (their hub node closes their connections) and
 * sync within seconds; meanwhile every sync at or past the mark gets a
 * snapshot, so it is kept no longer than a display might take to come back.
 */
const REWOUND_KEPT_SECONDS = 60 * 60;

/**
 * The waiting room's domain: every change is one Lua script that updates the
 * queue, appends an event with the clinic's next sequence number and
 * publishes it, atomically. Takes plain data, returns plain data.
 */
export class QueueService {
  private readonly scripts: Record<ScriptName, ScriptRunner>;
  private readonly ack: ReplicaAck | null;
  /** Where the scripts run (the ack's connection when there is one), and the reads that name their keys. */
  private readonly writer: RedisClient;

  constructor(
    /** One Redis, Sentinel's master or a Redis Cluster: every command names keys of one clinic (one hash slot). */
    private readonly redis: RedisClient,
    private readonly clinics: ClinicRegistry,
    /**
     * With Sentinel or a Cluster: a change is acknowledged only once this
     * many replicas (of its shard) have it; the scripts then run on the ack's
     * own connection (README, "Several hub nodes").
     */
    options: { ack?: ReplicaAck } = {},
  ) {
    this.ack = options.ack?.enabled ? options.ack : null;
    this.writer = this.ack?.connection ?? redis;
    this.scripts = defineScripts(this.writer, new URL('./scripts/', import.meta.url), 'clinicQueue', SCRIPT_NAMES);
  }

  async checkin(
    clinicId: string,
    input: QueuePayload<'queue:checkin'> & { priority: 'normal' | 'urgent' },
    /** The new ticket's id, when the caller had to know it first (to store a contact before the ticket exists). */
    ticketId = newTicketId(),
    /**
     * The arrival of this appointment (its record in the appointments domain):
     * the ticket waits at its scheduled time unless it is later than the
     * clinic's `appointmentLateMinutes`. One appointment gives one ticket: the
     * action's idempotency key is the appointment's, so arriving again
     * returns the first ticket (`replayed`).
     */
    appointment?: { id: string; startsAt: number },
  ): Promise<Ack<ActionResult>> {
    const clinic = this.clinics.get(clinicId);
    if (!clinic) return fail('CLINIC_NOT_FOUND');
    const dept = clinic.departments.find((d) => d.id === input.dept);
    if (!dept) return fail('QUEUE_DEPT_NOT_FOUND', input.dept);
    const { appointmentLateMinutes, arrivalOpensMinutesBefore } = clinic.selfCheckin;
    const keys = clinicKeys(clinicId);
    const date = clinicDate(clinic.timezone);
    return this.run(clinicId, 'checkin', appointment ? arrivalKey(appointment.id) : input.requestId, dept.id, [keys.counter(dept.id, date), keys.patient(ticketId), keys.appointment(appointment?.id ?? '')], [
      ticketId,
      dept.id,
      dept.prefix,
      input.priority,
      date,
      input.patient ? JSON.stringify(input.patient) : '',
      Math.round(clinic.patientDataRetentionHours * 3600),
      ...(appointment
        ? [appointment.id, appointment.startsAt, Math.round(appointmentLateMinutes * 60_000), Math.round(arrivalOpensMinutesBefore * 60_000)]
        : []),
    ]);
  }

  /**
   * Calls the department's next waiting ticket to a room. An online
   * department's patient is at home and can only come in through the
   * consultation that admission opens (the join button on their page): there
   * it is refused with QUEUE_DEPT_ONLINE, unless the caller is that admission.
   */
  async callNext(clinicId: string, input: QueuePayload<'queue:call-next'>, options: { admission?: boolean } = {}): Promise<Ack<ActionResult>> {
    const clinic = this.clinics.get(clinicId);
    if (!clinic) return fail('CLINIC_NOT_FOUND');
    const dept = clinic.departments.find((d) => d.id === input.dept);
    if (!dept) return fail('QUEUE_DEPT_NOT_FOUND', input.dept);
    if (dept.online && !options.admission) return fail('QUEUE_DEPT_ONLINE', `admit the next patient of ${dept.id} with consult:admit { dept, room }`);
    if (!dept.rooms.some((r) => r.id === input.room)) return fail('QUEUE_ROOM_NOT_FOUND', input.room);
    return this.run(clinicId, 'call-next', input.requestId, dept.id, [], [
      dept.id,
      input.room,
      dept.defaultConsultMinutes,
      clinic.minMeasuredConsultSeconds,
    ]);
  }

  /** Calls one waiting ticket of the department to a free room (consult admission of a named ticket). */
  async callTicket(clinicId: string, input: { ticketId: string; dept: string; room: string; requestId?: string | undefined }): Promise<Ack<ActionResult>> {
    const clinic = this.clinics.get(clinicId);
    if (!clinic) return fail('CLINIC_NOT_FOUND');
    const dept = clinic.departments.find((d) => d.id === input.dept);
    if (!dept) return fail('QUEUE_DEPT_NOT_FOUND', input.dept);
    if (!dept.rooms.some((r) => r.id === input.room)) return fail('QUEUE_ROOM_NOT_FOUND', input.room);
    return this.run(clinicId, 'call-ticket', input.requestId, dept.id, [], [
      input.ticketId,
      dept.id,
      input.room,
      dept.defaultConsultMinutes,
      clinic.minMeasuredConsultSeconds,
    ]);
  }

  async recall(clinicId: string, input: QueuePayload<'queue:recall'>): Promise<Ack<ActionResult>> {
    const clinic = this.clinics.get(clinicId);
    if (!clinic) return fail('CLINIC_NOT_FOUND');
    return this.run(clinicId, 'recall', input.requestId, null, [], [input.ticketId, clinic.noShowAfterRecalls]);
  }

  async start(clinicId: string, input: QueuePayload<'queue:start'>): Promise<Ack<ActionResult>> {
    return this.run(clinicId, 'start', input.requestId, null, [], [input.ticketId]);
  }

  async skip(clinicId: string, input: QueuePayload<'queue:skip'>): Promise<Ack<ActionResult>> {
    return this.runOnTicketDept(clinicId, 'skip', input.requestId, input.ticketId, [input.ticketId]);
  }

  async done(clinicId: string, input: QueuePayload<'queue:done'>): Promise<Ack<ActionResult>> {
    const clinic = this.clinics.get(clinicId);
    if (!clinic) return fail('CLINIC_NOT_FOUND');
    // The script finds the ticket's department itself: every department's default goes along.
    const defaults = JSON.stringify(Object.fromEntries(clinic.departments.map((d) => [d.id, d.defaultConsultMinutes])));
    return this.run(clinicId, 'done', input.requestId, null, [], [input.ticketId, defaults, clinic.minMeasuredConsultSeconds]);
  }

  async cancel(clinicId: string, input: QueuePayload<'queue:cancel'>): Promise<Ack<ActionResult>> {
    return this.runOnTicketDept(clinicId, 'cancel', input.requestId, input.ticketId, [input.ticketId]);
  }

  /** One active ticket, or null. */
  async ticket(clinicId: string, ticketId: string): Promise<PublicTicket | null> {
    const raw = await this.redis.hget(clinicKeys(clinicId).tickets, ticketId);
    return raw ? (JSON.parse(raw) as PublicTicket) : null;
  }

  /**
   * Until when a patient may still use a token for this ticket (ms): null
   * while the ticket is active (no end yet); its end plus the clinic's
   * `patientAccessGraceMinutes` once it has ended; 0 for a ticket that is not
   * in the queue and did not end within the last 25 hours (or never was).
   */
  async patientAccessUntil(clinicId: string, ticketId: string): Promise<number | null> {
    const keys = clinicKeys(clinicId);
    const replies = await this.redis.multi().hexists(keys.tickets, ticketId).zscore(keys.ended, ticketId).exec();
    if (!replies) return 0;
    for (const [error] of replies) if (error) throw error;
    const [[, active], [, endedAt]] = replies as [[null, number], [null, string | null]];
    if (active === 1) return null;
    // The set is trimmed when tickets end: one that ended longer ago may still be in it.
    if (endedAt === null || Number(endedAt) < Date.now() - ENDED_KEPT_MS) return 0;
    return this.accessAfterEnd(clinicId, Number(endedAt));
  }

  /** Until when a patient may use their token after their ticket ended at `endedAt` (ms): the clinic's grace period. */
  accessAfterEnd(clinicId: string, endedAt: number): number {
    const graceMinutes = this.clinics.get(clinicId)?.patientAccessGraceMinutes ?? 0;
    return endedAt + Math.round(graceMinutes * 60_000);
  }

  /** Patient data given at check-in. Callers must write the read to the audit stream. */
  async patientInfo(clinicId: string, ticketId: string): Promise<PatientInfo | null> {
    const raw = await this.redis.get(clinicKeys(clinicId).patient(ticketId));
    return raw ? (JSON.parse(raw) as PatientInfo) : null;
  }

  /** The active queue and the sequence number it is consistent with, read in one transaction. */
  async snapshot(clinicId: string): Promise<Ack<{ snapshot: QueueSnapshot }>> {
    const clinic = this.clinics.get(clinicId);
    if (!clinic) return fail('CLINIC_NOT_FOUND');
    const keys = clinicKeys(clinicId);
    const replies = await this.redis.multi().get(keys.seq).hvals(keys.tickets).hgetall(keys.durations).exec();
    if (!replies) return fail('STORE_UNAVAILABLE');
    for (const [error] of replies) if (error) throw error;
    const [seqReply, ticketsReply, durationsReply] = replies.map(([, value]) => value) as [string | null, string[], Record<string, string>];
    const deptStats: Record<string, DeptStats> = {};
    for (const dept of clinic.departments) {
      deptStats[dept.id] = statsFromDurations(durationsReply[dept.id]?.split(',') ?? [], dept.defaultConsultMinutes);
    }
    const tickets = (ticketsReply as string[]).map((raw) => JSON.parse(raw) as PublicTicket);
    tickets.sort((a, b) => a.order - b.order);
    return {
      ok: true,
      snapshot: { seq: Number(seqReply ?? 0), clinic: toPublicClinic(clinic), tickets, deptStats },
    };
  }

  /**
   * What a client that has applied everything up to `afterSeq` needs: the
   * events after it, or a snapshot when it has none, is ahead of the hub
   * (Redis was reset), has missed more than is worth replaying, or applied a
   * change a failover lost (its seq at or past `rewound`: markRewound).
   */
  async sync(clinicId: string, afterSeq: number | undefined): Promise<Ack<SyncResult>> {
    if (!this.clinics.get(clinicId)) return fail('CLINIC_NOT_FOUND');
    if (afterSeq !== undefined) {
      const keys = clinicKeys(clinicId);
      const [seq, rewound] = await this.redis.mget(keys.seq, keys.rewound);
      // Past a rewind the client's state holds a lost change: no events to read, a snapshot.
      if (rewound !== null && afterSeq >= Number(rewound)) return this.snapshotSync(clinicId);
      const events = await this.eventsAfter(clinicId, afterSeq, MAX_REPLAY_EVENTS + 1);
      const current = Number(seq ?? 0);
      const contiguous = events.length === 0 ? current === afterSeq : events[0]!.seq === afterSeq + 1;
      // With the clinic as it is now: a `queue:clinic` (settings changed) sent while the client was away is not replayed.
      if (contiguous && events.length <= MAX_REPLAY_EVENTS) return { ok: true, mode: 'events', events, clinic: toPublicClinic(this.clinics.get(clinicId)!) };
    }
    return this.snapshotSync(clinicId);
  }

  private async snapshotSync(clinicId: string): Promise<Ack<SyncResult>> {
    const snap = await this.snapshot(clinicId);
    if (!snap.ok) return snap;
    return { ok: true, mode: 'snapshot', snapshot: snap.snapshot };
  }

  /**
   * Says that changes from `fromSeq` on were lost in a failover after they
   * had been published (and their numbers are given again): a client that
   * applied that far is answered with a snapshot, for an hour; the lowest
   * seq marked stands.
   */
  async markRewound(clinicId: string, fromSeq: number): Promise<void> {
    const key = clinicKeys(clinicId).rewound;
    const marked = await this.redis.get(key);
    if (marked !== null && Number(marked) <= fromSeq) return;
    await this.redis.set(key, fromSeq, 'EX', REWOUND_KEPT_SECONDS);
  }

  /** The seq of the clinic's latest change (0 before the first). */
  async lastSeq(clinicId: string): Promise<number> {
    return Number((await this.redis.get(clinicKeys(clinicId).seq)) ?? 0);
  }

  /**
   * The trace of the action that made event `seq` (its stream entry's `t`),
   * for the work it causes elsewhere (the notification worker's notices);
   * null when it had none, or the entry is gone.
   */
  async eventTraceparent(clinicId: string, seq: number): Promise<string | null> {
    const [entry] = await this.redis.xrange(clinicKeys(clinicId).events, `${seq}-0`, `${seq}-0`);
    const fields = entry?.[1] ?? [];
    for (let i = 0; i < fields.length; i += 2) if (fields[i] === 't') return fields[i + 1] ?? null;
    return null;
  }

  /** Events with seq > afterSeq, oldest first. */
  async eventsAfter(clinicId: string, afterSeq: number, count?: number): Promise<QueueEvent[]> {
    const key = clinicKeys(clinicId).events;
    const entries =
      count === undefined
        ? await this.redis.xrange(key, `${afterSeq + 1}-0`, '+')
        : await this.redis.xrange(key, `${afterSeq + 1}-0`, '+', 'COUNT', count);
    return entries.map(([, fields]) => JSON.parse(fields[1]!) as QueueEvent);
  }

  /**
   * A script that changes a named ticket and its department's waiting set
   * (skip, cancel): the ticket's department is read first, so that the
   * script is given that set among its keys; it answers QUEUE_KEYS_STALE,
   * having changed nothing, when the ticket says otherwise by then.
   */
  private async runOnTicketDept(
    clinicId: string,
    script: ScriptName,
    requestId: string | undefined,
    ticketId: string,
    args: (string | number)[],
  ): Promise<Ack<ActionResult>> {
    // The same idempotency key for every try: a try whose reply was lost is replayed, not done again.
    const idempotencyKey = requestId ?? hubIdempotencyKey();
    for (let attempt = 0; ; attempt++) {
      let dept: string;
      try {
        const raw = await this.writer.hget(clinicKeys(clinicId).tickets, ticketId);
        // A ticket that is not active: the script answers (QUEUE_TICKET_NOT_FOUND, or the first result of a retry).
        dept = raw ? (JSON.parse(raw) as PublicTicket).dept : '';
      } catch (error) {
        if (isRedisUnavailable(error)) return fail('STORE_UNAVAILABLE');
        throw error;
      }
      const result = await this.execute(clinicId, script, requestId, dept, [], args, idempotencyKey);
      if (result !== KEYS_STALE) return result;
      if (attempt === 2) return fail('INTERNAL', `${script}: the ticket's department kept changing`);
    }
  }

  /**
   * Runs a queue script with the keys every one of them takes (scripts/lib.lua),
   * the waiting set of `waitingDept` when it takes one, then `extraKeys`.
   */
  private async run(
    clinicId: string,
    script: ScriptName,
    requestId: string | undefined,
    waitingDept: string | null,
    extraKeys: string[],
    args: (string | number)[],
  ): Promise<Ack<ActionResult>> {
    const result = await this.execute(clinicId, script, requestId, waitingDept, extraKeys, args);
    return result === KEYS_STALE ? fail('INTERNAL', `${script}: QUEUE_KEYS_STALE`) : result;
  }

  private async execute(
    clinicId: string,
    script: ScriptName,
    requestId: string | undefined,
    waitingDept: string | null,
    extraKeys: string[],
    args: (string | number)[],
    // ioredis sends a command again when the connection broke before its reply
    // came back, so a script that had already run would run twice. Every action
    // therefore carries an idempotency key: the client's requestId, or one made
    // here (with a ':' no client requestId can contain).
    idempotencyKey = requestId ?? hubIdempotencyKey(),
  ): Promise<Ack<ActionResult> | typeof KEYS_STALE> {
    const keys = clinicKeys(clinicId);
    let reply: { ok: true; event: QueueEvent; replayed?: true } | { ok: false; code: string };
    try {
      const ranOn = await this.ack?.shardOf(keys.seq);
      const scriptKeys = [keys.seq, keys.events, keys.tickets, keys.request(idempotencyKey), keys.rooms, keys.durations, keys.ended, keys.lastOrder];
      if (waitingDept !== null) scriptKeys.push(keys.waiting(waitingDept));
      const raw = await this.scripts[script](
        [...scriptKeys, ...extraKeys],
        [waitingDept ?? '', idempotencyKey, keys.live, currentTraceparentArg(), ...args],
      );
      reply = JSON.parse(raw) as typeof reply;
      // Committed on the master; acknowledged only once the replicas have it too. If they do not
      // in time, the client retries with the same requestId and gets this change, replayed.
      if (reply.ok && this.ack && !(await this.ack.confirm({ key: keys.seq, ranOn, ...(reply.replayed && { fenceKey: keys.ackFence }) }))) {
        return fail('STORE_UNAVAILABLE', 'no replica confirmed the change in time (HUB_REDIS_ACK_REPLICAS)');
      }
    } catch (error) {
      if (isRedisUnavailable(error)) return fail('STORE_UNAVAILABLE');
      throw error;
    }
    if (!reply.ok && reply.code === KEYS_STALE) return KEYS_STALE;
    if (!reply.ok) return fail(isErrorCode(reply.code) ? reply.code : 'INTERNAL', script);
    // A replay of the hub's own key is that resend, not a retry by the client.
    return { ok: true, event: reply.event, replayed: requestId !== undefined && reply.replayed === true };
  }
}

/** An idempotency key the hub makes for an action without a requestId (with a ':' no client requestId can contain). */
function hubIdempotencyKey(): string {
  return `hub:${randomBytes(12).toString('base64url')}`;
}

/** A script's answer, having changed nothing, when the keys it was given are not the ones the data now names. */
const KEYS_STALE = 'QUEUE_KEYS_STALE';

/** How long the queue keeps when a ticket ended (scripts/lib.lua, ENDED_KEPT_MS): 25 h, longer than any grace period. */
const ENDED_KEPT_MS = 90_000_000;

/** The idempotency key of an appointment's arrival (with a ':' no client requestId can contain). */
function arrivalKey(appointmentId: string): string {
  return `arrive:${appointmentId}`;
}

export function newTicketId(): string {
  return newOpaqueId(9);
}


export function statsFromDurations(durationsMs: string[], defaultMinutes: number): DeptStats {
  if (durationsMs.length === 0) return { avgConsultMinutes: defaultMinutes, samples: 0 };
  const mean = durationsMs.reduce((sum, v) => sum + Number(v), 0) / durationsMs.length / 60000;
  return { avgConsultMinutes: Math.round(mean * 10) / 10, samples: durationsMs.length };
}
