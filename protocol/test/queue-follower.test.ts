import { describe, expect, it } from 'vitest';
import type { PublicClinic } from '../src/clinic.js';
import type { PublicTicket, QueueEvent, QueueEventType, QueueSnapshot, SyncResult, TicketStatus } from '../src/queue.js';
import { QueueFollower } from '../src/queue-follower.js';

const CLINIC: PublicClinic = {
  id: 'c1',
  name: { ja: 'テスト', en: 'Test' },
  timezone: 'Asia/Tokyo',
  spokenCallLanguages: ['ja', 'en'],
  departments: [
    {
      id: 'gp',
      name: { ja: '内科', en: 'General' },
      prefix: 'A',
      rooms: [
        { id: 'r1', name: { ja: '第1診察室', en: 'Room 1' }, open: true },
        { id: 'r2', name: { ja: '第2診察室', en: 'Room 2' }, open: true },
      ],
    },
  ],
};

const TYPE_OF: Record<TicketStatus, QueueEventType> = {
  waiting: 'ticket.issued',
  called: 'ticket.called',
  in_consultation: 'ticket.started',
  done: 'ticket.done',
  no_show: 'ticket.no_show',
  cancelled: 'ticket.cancelled',
};

function ticket(id: string, status: TicketStatus, order: number): PublicTicket {
  return {
    id,
    number: `A-${id}`,
    dept: 'gp',
    priority: 'normal',
    status,
    room: status === 'waiting' ? null : 'r1',
    order,
    recalls: 0,
    issuedAt: 1000,
    calledAt: status === 'waiting' ? null : 2000 + order,
    startedAt: null,
    endedAt: null,
  };
}

/** A hub as the follower sees it: an event log, sync answers, and sync calls the test can hold back. */
class FakeHub {
  readonly log: QueueEvent[] = [];
  readonly syncCalls: (number | null)[] = [];
  /** Answer the next syncs with a snapshot even when afterSeq is given (client too far behind). */
  snapshotOnly = false;
  failNext = false;
  /**
   * For each coming sync, the seq the hub answers as of: the events after it
   * were committed just after the hub read the stream. Default: everything.
   */
  readonly answerUpTo: number[] = [];
  private held: (() => void)[] = [];
  holdSyncs = false;

  /** Appends the next event (seq = log length + 1) and returns it, as the hub would publish it. */
  change(id: string, status: TicketStatus, extra: Partial<QueueEvent> = {}): QueueEvent {
    const seq = this.log.length + 1;
    const event: QueueEvent = { seq, type: TYPE_OF[status], at: 5000 + seq, ticket: ticket(id, status, seq), ...extra };
    this.log.push(event);
    return event;
  }

  snapshot(upTo = this.log.length): QueueSnapshot {
    const tickets = new Map<string, PublicTicket>();
    for (const e of this.log.slice(0, upTo)) {
      if (['done', 'no_show', 'cancelled'].includes(e.ticket.status)) tickets.delete(e.ticket.id);
      else tickets.set(e.ticket.id, e.ticket);
    }
    return { seq: upTo, clinic: CLINIC, tickets: [...tickets.values()], deptStats: { gp: { avgConsultMinutes: 10, samples: 0 } } };
  }

  readonly sync = async (afterSeq: number | null): Promise<SyncResult> => {
    this.syncCalls.push(afterSeq);
    if (this.holdSyncs) await new Promise<void>((resolve) => this.held.push(resolve));
    if (this.failNext) {
      this.failNext = false;
      throw new Error('STORE_UNAVAILABLE');
    }
    const upTo = this.answerUpTo.shift() ?? this.log.length;
    if (afterSeq === null || this.snapshotOnly || afterSeq > upTo) return { mode: 'snapshot', snapshot: this.snapshot(upTo) };
    return { mode: 'events', events: this.log.slice(afterSeq, upTo) };
  };

  /** Lets held syncs answer. */
  release(): void {
    this.holdSyncs = false;
    for (const resolve of this.held.splice(0)) resolve();
  }
}

function follow(hub: FakeHub) {
  const applied: number[] = [];
  const snapshots: number[] = [];
  const syncErrors: unknown[] = [];
  let changes = 0;
  const follower = new QueueFollower({
    sync: hub.sync,
    onEvent: (e) => applied.push(e.seq),
    onSnapshot: (s) => snapshots.push(s.seq),
    onChange: () => changes++,
    onSyncError: (e) => syncErrors.push(e),
  });
  return { follower, applied, snapshots, syncErrors, changes: () => changes };
}

/** Lets pending promise callbacks (the follower's sync loop) run. */
const settle = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

describe('QueueFollower', () => {
  it('starts from a snapshot: state replaced, no per-event callbacks', async () => {
    const hub = new FakeHub();
    hub.change('t1', 'waiting');
    hub.change('t2', 'waiting');
    hub.change('t1', 'called');
    const f = follow(hub);
    await f.follower.resync();
    expect(hub.syncCalls).toEqual([null]);
    expect(f.follower.seq).toBe(3);
    expect(f.snapshots).toEqual([3]);
    expect(f.applied).toEqual([]);
    expect(f.follower.clinic?.id).toBe('c1');
    expect(f.follower.calls().map((t) => t.id)).toEqual(['t1']);
    expect(f.follower.waiting('gp').map((t) => t.id)).toEqual(['t2']);
    expect(f.changes()).toBe(1);
  });

  it('applies live events in order and drops duplicates', async () => {
    const hub = new FakeHub();
    const f = follow(hub);
    await f.follower.resync();
    const e1 = hub.change('t1', 'waiting');
    const e2 = hub.change('t1', 'called');
    f.follower.handleEvent(e1);
    f.follower.handleEvent(e1);
    f.follower.handleEvent(e2);
    f.follower.handleEvent(e1);
    f.follower.handleEvent(e2);
    await settle();
    expect(f.applied).toEqual([1, 2]);
    expect(hub.syncCalls).toEqual([null]);
    expect(f.follower.tickets.get('t1')?.status).toBe('called');
  });

  it('fills a gap with queue:sync after the last applied seq, applying each event once', async () => {
    const hub = new FakeHub();
    const f = follow(hub);
    await f.follower.resync();
    const e1 = hub.change('t1', 'waiting');
    hub.change('t2', 'waiting'); // missed by this client
    const e3 = hub.change('t3', 'waiting');
    f.follower.handleEvent(e1);
    f.follower.handleEvent(e3);
    await settle();
    expect(hub.syncCalls).toEqual([null, 1]);
    expect(f.applied).toEqual([1, 2, 3]);
    expect([...f.follower.tickets.keys()].sort()).toEqual(['t1', 't2', 't3']);
    // The gap's live event arriving late changes nothing.
    f.follower.handleEvent(hub.log[1]!);
    expect(f.applied).toEqual([1, 2, 3]);
  });

  it('puts events that arrive out of order back in order', async () => {
    const hub = new FakeHub();
    const f = follow(hub);
    await f.follower.resync();
    const [e1, e2, e3] = [hub.change('t1', 'waiting'), hub.change('t2', 'waiting'), hub.change('t1', 'called')];
    hub.holdSyncs = true;
    hub.answerUpTo.push(0);
    f.follower.handleEvent(e3!); // a gap: sync after seq 0, answered before anything was committed
    f.follower.handleEvent(e2!);
    f.follower.handleEvent(e1!);
    f.follower.handleEvent(e2!);
    expect(f.applied).toEqual([]);
    hub.release();
    await f.follower.resync();
    expect(hub.syncCalls[1]).toBe(0);
    expect(f.applied).toEqual([1, 2, 3]);
    expect(f.follower.seq).toBe(3);
    expect(f.follower.tickets.get('t1')?.status).toBe('called');
  });

  it('keeps events that arrive while a sync is in flight and applies them after it, once', async () => {
    const hub = new FakeHub();
    const f = follow(hub);
    await f.follower.resync();
    f.follower.handleEvent(hub.change('t1', 'waiting'));
    hub.change('t2', 'waiting'); // committed while the client was away

    hub.holdSyncs = true;
    const reconnect = f.follower.resync(); // after seq 1, held
    // While the sync is in flight seq 3 and 4 are committed and arrive live;
    // the hub's answer covers up to seq 3 only.
    hub.answerUpTo.push(3);
    const e3 = hub.change('t1', 'called');
    const e4 = hub.change('t2', 'called', { ticket: { ...ticket('t2', 'called', 4), room: 'r2' } });
    f.follower.handleEvent(e3);
    f.follower.handleEvent(e4);
    f.follower.handleEvent(e3);
    expect(f.applied).toEqual([1]);

    hub.release();
    await reconnect;
    expect(hub.syncCalls).toEqual([null, 1]);
    expect(f.applied).toEqual([1, 2, 3, 4]);
    expect(f.follower.calls().map((t) => t.room).sort()).toEqual(['r1', 'r2']);
  });

  it('goes round again when the pending events still leave a gap after a sync', async () => {
    const hub = new FakeHub();
    const f = follow(hub);
    await f.follower.resync();
    hub.change('t1', 'waiting');
    hub.change('t2', 'waiting');
    const e3 = hub.change('t3', 'waiting');
    hub.answerUpTo.push(1); // the first answer has seq 1 only; 2 and 3 were committed just after
    f.follower.handleEvent(e3); // live 1 and 2 were lost
    await f.follower.resync();
    expect(hub.syncCalls).toEqual([null, 0, 1]);
    expect(f.applied).toEqual([1, 2, 3]);
    expect(f.follower.seq).toBe(3);
  });

  it('takes a snapshot when the hub sends one instead of events, dropping what it covers', async () => {
    const hub = new FakeHub();
    const f = follow(hub);
    await f.follower.resync();
    f.follower.handleEvent(hub.change('t1', 'waiting'));
    for (let i = 2; i <= 6; i++) hub.change(`t${i}`, 'waiting');
    hub.snapshotOnly = true; // e.g. the client missed more than the hub replays
    hub.holdSyncs = true;
    hub.answerUpTo.push(6);
    const reconnect = f.follower.resync();
    f.follower.handleEvent(hub.log[4]!); // seq 5: covered by the snapshot
    f.follower.handleEvent(hub.change('t7', 'waiting')); // seq 7: newer than the snapshot
    hub.release();
    await reconnect;
    expect(f.snapshots).toEqual([0, 6]);
    expect(f.follower.seq).toBe(7);
    expect(f.follower.tickets.size).toBe(7);
    // Events covered by a snapshot are not replayed one by one; the newer one is applied.
    expect(f.applied).toEqual([1, 7]);
  });

  it('buffers events that arrive before the first sync and applies only those newer than the snapshot', async () => {
    const hub = new FakeHub();
    const e1 = hub.change('t1', 'waiting');
    const e2 = hub.change('t2', 'waiting');
    const f = follow(hub);
    f.follower.handleEvent(e1);
    f.follower.handleEvent(e2);
    expect(hub.syncCalls).toEqual([]);
    expect(f.follower.seq).toBeNull();
    hub.answerUpTo.push(1);
    await f.follower.resync(); // snapshot as of seq 1
    expect(f.snapshots).toEqual([1]);
    expect(f.applied).toEqual([2]);
    expect(f.follower.seq).toBe(2);
  });

  it('removes tickets that end and takes department stats from events', async () => {
    const hub = new FakeHub();
    const f = follow(hub);
    await f.follower.resync();
    f.follower.handleEvent(hub.change('t1', 'waiting'));
    f.follower.handleEvent(hub.change('t1', 'called'));
    f.follower.handleEvent(hub.change('t1', 'done', { deptStats: { dept: 'gp', avgConsultMinutes: 7.5, samples: 1 } }));
    f.follower.handleEvent(hub.change('t2', 'waiting'));
    f.follower.handleEvent(hub.change('t2', 'cancelled'));
    expect(f.follower.tickets.size).toBe(0);
    expect(f.follower.statsFor('gp')).toEqual({ avgConsultMinutes: 7.5, samples: 1 });
    expect(f.applied).toEqual([1, 2, 3, 4, 5]);
  });

  it('reports a failed sync, keeps what it had, and recovers on the next resync', async () => {
    const hub = new FakeHub();
    const f = follow(hub);
    await f.follower.resync();
    f.follower.handleEvent(hub.change('t1', 'waiting'));
    hub.change('t2', 'waiting');
    hub.failNext = true;
    await expect(f.follower.resync()).rejects.toThrow('STORE_UNAVAILABLE');
    expect(f.syncErrors).toHaveLength(1);
    expect(f.follower.seq).toBe(1);
    await f.follower.resync();
    expect(f.applied).toEqual([1, 2]);
  });

  it('shares one sync loop between concurrent resyncs and does one more round for the later call', async () => {
    const hub = new FakeHub();
    const f = follow(hub);
    await f.follower.resync();
    hub.holdSyncs = true;
    const a = f.follower.resync();
    const b = f.follower.resync();
    expect(a).toBe(b);
    hub.change('t1', 'waiting');
    hub.release();
    await settle();
    hub.release();
    await a;
    expect(hub.syncCalls).toEqual([null, 0, 1]);
    expect(f.applied).toEqual([1]);
  });

  it('estimates the wait of a waiting ticket from its position and the rooms open in the clinic settings', async () => {
    const hub = new FakeHub();
    for (let i = 1; i <= 4; i++) hub.change(`t${i}`, 'waiting');
    const f = follow(hub);
    await f.follower.resync();
    // Both rooms open: 10 minutes a consultation, ahead 2 → round(2.5 × 10 / 2) = 13.
    expect(f.follower.openRooms('gp')).toEqual(['r1', 'r2']);
    expect(f.follower.positionOf('t3')).toEqual({ ahead: 2, waitMinutes: 13 });
    expect(f.follower.positionOf('nope')).toBeNull();
    expect(f.follower.typicalWaitMinutes('gp')).toBe(23);
    expect(f.follower.roomName('r2')).toEqual({ ja: '第2診察室', en: 'Room 2' });

    // Who is called where does not change the capacity: only the settings do.
    f.follower.handleEvent(hub.change('t1', 'called'));
    expect(f.follower.openRooms('gp')).toEqual(['r1', 'r2']);
    expect(f.follower.positionOf('t4')).toEqual({ ahead: 2, waitMinutes: 13 }); // 2.5 × 10 / 2

    // r2 is closed (queue:clinic): one room counts. ahead 2 → 2.5 × 10 / 1 = 25.
    const closed = { ...CLINIC, departments: CLINIC.departments.map((d) => ({ ...d, rooms: d.rooms.map((r) => ({ ...r, open: r.id !== 'r2' })) })) };
    f.follower.handleClinic(closed);
    expect(f.follower.openRooms('gp')).toEqual(['r1']);
    expect(f.follower.positionOf('t4')).toEqual({ ahead: 2, waitMinutes: 25 });
    // Every room closed: one is assumed (somebody has to open).
    f.follower.handleClinic({ ...closed, departments: closed.departments.map((d) => ({ ...d, rooms: d.rooms.map((r) => ({ ...r, open: false })) })) });
    expect(f.follower.openRooms('gp')).toEqual([]);
    expect(f.follower.positionOf('t4')).toEqual({ ahead: 2, waitMinutes: 25 });
  });

  it('takes the clinic an events-mode sync carries (settings changed while it was away)', async () => {
    const hub = new FakeHub();
    hub.change('t1', 'waiting');
    const f = follow(hub);
    await f.follower.resync();
    const reopened = { ...CLINIC, name: { ja: '新しい名前', en: 'New name' } };
    const follower = new QueueFollower({
      sync: async (afterSeq) => (afterSeq === null ? hub.sync(null) : { mode: 'events', events: [], clinic: reopened }),
    });
    await follower.resync();
    expect(follower.clinic?.name.en).toBe('Test');
    await follower.resync();
    expect(follower.clinic?.name.en).toBe('New name');
  });
});
