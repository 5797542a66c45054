/**
 * The staff side of the waiting room, as the load tests drive it: timed
 * queue actions, and a caller that presses "next patient" at a steady rate
 * the way the Node harness's staff client does — call-next to a free room
 * (timed), start the called ticket when the patient walks in (which frees
 * the room for the next call: a call-next to a room in consultation
 * finishes its patient), and check one more patient in so the line stays
 * as long as it was.
 */
import type { Trend } from 'k6/metrics';
import { clearInterval, setInterval, setTimeout, type IntervalID } from 'k6/timers';
import { QUEUE_CLIENT_EVENTS } from '../../../protocol/src/event-names.ts';
import type { CheckinResult, QueueClientToServer, QueueServerToClient } from '../../../protocol/src/events.ts';
import type { QueueEvent, QueuePayload, QueueSnapshot } from '../../../protocol/src/queue.ts';
import { abortTest, queueOpDuration, queueOpErrors, timedRequest, type Success, type Timed } from './metrics.ts';
import type { PayloadOf, SocketIoClient } from './socket-io.ts';

export type QueueSocket = SocketIoClient<QueueServerToClient, QueueClientToServer>;
type QueueEventName = keyof QueueClientToServer & string;
/** The ack of a queue event that succeeded. */
export type QueueSuccess<Event extends QueueEventName> = Success<QueueClientToServer[Event]>;

/**
 * Sends one queue action and records its ack round trip in
 * queue_op_duration, or its failure in queue_op_errors; null when it failed.
 * Never rejects.
 */
export function queueAction<Event extends QueueEventName>(
  socket: QueueSocket,
  event: Event,
  payload: PayloadOf<QueueClientToServer[Event]>,
): Promise<Timed<QueueSuccess<Event>> | null> {
  return timedRequest(socket, event, payload, { duration: queueOpDuration, errors: queueOpErrors });
}

/** Tickets waiting in one department of a snapshot. */
export function waitingIn(snapshot: QueueSnapshot, dept: string): string[] {
  return snapshot.tickets.filter((t) => t.dept === dept && t.status === 'waiting').map((t) => t.id);
}

export interface CallerOptions {
  dept: string;
  /** Rooms to call patients to; empty: every room of the department. */
  rooms: string[];
  /** Prefix of the requestIds: unique per run and VU, so that a run never replays an earlier run's actions. */
  requestPrefix: string;
  /** The check-in payload, without its requestId. */
  checkinPayload: () => Omit<QueuePayload<'queue:checkin'>, 'requestId'>;
  onCheckedIn?: (result: CheckinResult) => void;
  /** A call-next was acknowledged; `sentAt` is when it was sent (k6's clock). */
  onCalled?: (event: QueueEvent, sentAt: number) => void;
  /** The called patient walks in: the caller starts their consultation when this resolves (default: at once). */
  beforeStart?: (event: QueueEvent) => Promise<void>;
  /** Where to record the least difference between k6's clock and the Redis clock that each call-next ack proves. */
  clockSkew?: Trend;
}

export class QueueCaller {
  private readonly freeRooms: string[];
  /** The ticket each room has now (called or in consultation), for the rooms this caller called to. */
  private readonly roomTicket = new Map<string, string>();
  /** Tickets this caller checked in that nobody has called yet. */
  private readonly waiting = new Set<string>();
  private inFlight = 0;
  private requests = 0;

  private constructor(
    private readonly socket: QueueSocket,
    private readonly options: CallerOptions,
    readonly rooms: string[],
  ) {
    this.freeRooms = [...rooms];
  }

  /**
   * Reads the queue, checks the department and the rooms (stopping the test
   * when they do not exist), and starts any patient left called in those
   * rooms by an earlier run: a room whose patient is called but not started
   * is busy, and every call to it would fail.
   */
  static async prepare(socket: QueueSocket, options: CallerOptions): Promise<{ caller: QueueCaller; snapshot: QueueSnapshot }> {
    const synced = await queueAction(socket, QUEUE_CLIENT_EVENTS.sync, {});
    if (!synced) return abortTest('the staff socket could not read the queue (queue:sync failed: see queue_op_errors)');
    if (synced.result.mode !== 'snapshot') return abortTest('queue:sync without afterSeq answered with events, not a snapshot');
    const { snapshot } = synced.result;
    const dept = snapshot.clinic.departments.find((d) => d.id === options.dept);
    if (!dept) {
      return abortTest(`DEPT=${options.dept} is not a department of clinic ${snapshot.clinic.id} (it has ${snapshot.clinic.departments.map((d) => d.id).join(', ')})`);
    }
    const known = dept.rooms.map((r) => r.id);
    const rooms = options.rooms.length > 0 ? options.rooms : known;
    const unknown = rooms.filter((r) => !known.includes(r));
    if (unknown.length > 0) return abortTest(`ROOMS: ${unknown.join(', ')} not in department ${dept.id} (its rooms: ${known.join(', ')})`);
    const caller = new QueueCaller(socket, options, rooms);
    const leftCalled = snapshot.tickets.filter((t) => t.dept === dept.id && t.status === 'called' && t.room !== null && rooms.includes(t.room));
    await Promise.all(leftCalled.map((t) => queueAction(socket, QUEUE_CLIENT_EVENTS.start, { ticketId: t.id, requestId: caller.requestId() })));
    return { caller, snapshot };
  }

  /** Checks one patient in; null when it failed (counted in queue_op_errors). */
  async checkin(): Promise<CheckinResult | null> {
    this.inFlight++;
    try {
      const done = await queueAction(this.socket, QUEUE_CLIENT_EVENTS.checkin, { ...this.options.checkinPayload(), requestId: this.requestId() });
      if (!done) return null;
      this.waiting.add(done.result.event.ticket.id);
      this.options.onCheckedIn?.(done.result);
      return done.result;
    } finally {
      this.inFlight--;
    }
  }

  /** A patient this caller checked in was called another way (a consultation's admission): no longer the caller's to cancel in finish(). */
  calledElsewhere(ticketId: string): void {
    this.waiting.delete(ticketId);
  }

  /** Presses "next patient" `ratePerSecond` times a second until `untilMs`, then waits for the acks still due. */
  run(ratePerSecond: number, untilMs: number): Promise<void> {
    return new Promise((resolve) => {
      let timer: IntervalID | null = null;
      const tick = () => {
        if (Date.now() < untilMs) {
          this.press();
          return;
        }
        if (timer !== null) clearInterval(timer);
        void this.idle().then(resolve);
      };
      timer = setInterval(tick, 1000 / ratePerSecond);
    });
  }

  /** Resolves when no action of this caller waits for its ack (each gives up after its ack timeout). */
  idle(): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (this.inFlight === 0) resolve();
        else setTimeout(check, 20);
      };
      check();
    });
  }

  /** Leaves the department as it found it: cancels the patients it checked in that are still waiting, finishes the ones it called. */
  async finish(): Promise<void> {
    await this.idle();
    await Promise.all([
      ...[...this.waiting].map((ticketId) => queueAction(this.socket, QUEUE_CLIENT_EVENTS.cancel, { ticketId, requestId: this.requestId() })),
      ...[...this.roomTicket.values()].map((ticketId) => queueAction(this.socket, QUEUE_CLIENT_EVENTS.done, { ticketId, requestId: this.requestId() })),
    ]);
    this.waiting.clear();
    this.roomTicket.clear();
  }

  requestId(): string {
    return `${this.options.requestPrefix}-${++this.requests}`;
  }

  private press(): void {
    const room = this.freeRooms.shift();
    if (room === undefined) {
      // Every room still waits for its start ack: the hub is far behind, and this call is not made.
      queueOpErrors.add(1, { op: 'call-next', code: 'NO_FREE_ROOM' });
      return;
    }
    void this.callInto(room);
    void this.checkin();
  }

  private async callInto(room: string): Promise<void> {
    this.inFlight++;
    try {
      const called = await queueAction(this.socket, QUEUE_CLIENT_EVENTS.callNext, { dept: this.options.dept, room, requestId: this.requestId() });
      if (!called) return;
      const { event } = called.result;
      this.waiting.delete(event.ticket.id);
      this.roomTicket.set(room, event.ticket.id);
      this.recordClockSkew(event.at, called);
      this.options.onCalled?.(event, called.sentAt);
      if (this.options.beforeStart) await this.options.beforeStart(event);
      await queueAction(this.socket, QUEUE_CLIENT_EVENTS.start, { ticketId: event.ticket.id, requestId: this.requestId() });
    } finally {
      this.freeRooms.push(room);
      this.inFlight--;
    }
  }

  /**
   * The call was committed (at `committedAt`, Redis clock) between sending
   * and the ack (k6 clock), so the Redis clock minus k6's lies in
   * [committedAt − ack, committedAt − sent]: its distance from 0 is the
   * least the two clocks differ by (less 1 ms, as both are read in whole ms).
   */
  private recordClockSkew(committedAt: number, call: { sentAt: number; receivedAt: number }): void {
    if (!this.options.clockSkew) return;
    const low = committedAt - call.receivedAt;
    const high = committedAt - call.sentAt;
    const atLeast = low > 0 ? low : high < 0 ? -high : 0;
    this.options.clockSkew.add(Math.max(0, atLeast - 1));
  }
}
