import type { PublicClinic } from './clinic.js';
import type { DeptStats, PublicTicket, QueueEvent, QueueSnapshot, SyncResult } from './queue.js';
import { estimateWaitMinutes, openRoomsOf } from './wait.js';

const TERMINAL = new Set(['done', 'no_show', 'cancelled']);

export interface QueueFollowerOptions {
  /** Asks the hub for what happened after `afterSeq` (null: a snapshot). Rejects on error. */
  sync(afterSeq: number | null): Promise<SyncResult>;
  /** Called once per applied event, in sequence order, live or replayed: never twice for one seq. */
  onEvent?(event: QueueEvent): void;
  /** Called when the clinic's settings changed (`queue:clinic`). */
  onClinic?(clinic: PublicClinic): void;
  /** Called when the whole state was replaced by a snapshot. */
  onSnapshot?(snapshot: QueueSnapshot): void;
  /** Called after every change of state. */
  onChange?(): void;
  onSyncError?(error: unknown): void;
}

/**
 * The client side of the resume rule (docs/protocol.md): keeps a clinic's
 * queue in step with the hub from live events, filling any gap with
 * `queue:sync` and dropping anything already applied. Displays, patient pages,
 * the CLI and tests all use it, so none of them can miss or double a call.
 */
export class QueueFollower {
  seq: number | null = null;
  clinic: PublicClinic | null = null;
  readonly tickets = new Map<string, PublicTicket>();
  readonly deptStats = new Map<string, DeptStats>();

  private readonly pending = new Map<number, QueueEvent>();
  private syncing: Promise<void> | null = null;
  private resyncRequested = false;
  private gapPersisted = false;

  constructor(private readonly options: QueueFollowerOptions) {}

  /** Call on every (re)connect: fetches what was missed since the last applied event. */
  resync(): Promise<void> {
    this.resyncRequested = true;
    if (!this.syncing) {
      this.syncing = this.runSyncLoop().finally(() => {
        this.syncing = null;
      });
    }
    return this.syncing;
  }

  /** Feed every live `queue:event` here. */
  handleEvent(event: QueueEvent): void {
    if (this.seq !== null && event.seq <= this.seq) return;
    if (this.syncing || this.seq === null || event.seq !== this.seq + 1) {
      this.pending.set(event.seq, event);
      if (!this.syncing && this.seq !== null) void this.resync().catch(() => undefined);
      return;
    }
    this.apply(event);
    this.options.onChange?.();
  }

  /** Waiting tickets of a department in the order they will be called. */
  waiting(dept: string): PublicTicket[] {
    return [...this.tickets.values()]
      .filter((t) => t.dept === dept && t.status === 'waiting')
      .sort((a, b) => a.order - b.order);
  }

  /** Called tickets, most recent call first. */
  calls(): PublicTicket[] {
    return [...this.tickets.values()]
      .filter((t) => t.status === 'called')
      .sort((a, b) => (b.calledAt ?? 0) - (a.calledAt ?? 0));
  }

  inConsultation(): PublicTicket[] {
    return [...this.tickets.values()].filter((t) => t.status === 'in_consultation');
  }

  statsFor(dept: string): DeptStats {
    const stats = this.deptStats.get(dept);
    if (stats) return stats;
    return { avgConsultMinutes: 10, samples: 0 };
  }

  /** The department's open rooms (the clinic's settings): the capacity estimates count (openRoomsOf). */
  openRooms(dept: string): string[] {
    return openRoomsOf(dept, this.clinic);
  }

  /**
   * Feed every live `queue:clinic` here: the clinic's settings changed (a room opened or closed, a
   * department renamed). Not a queue change, so it has no sequence number: the newest one wins.
   */
  handleClinic(clinic: PublicClinic): void {
    this.clinic = clinic;
    this.options.onClinic?.(clinic);
    this.options.onChange?.();
  }

  /** Tickets ahead and estimated minutes for one waiting ticket; null when it is not waiting. */
  positionOf(ticketId: string): { ahead: number; waitMinutes: number } | null {
    const ticket = this.tickets.get(ticketId);
    if (!ticket || ticket.status !== 'waiting') return null;
    const ahead = this.waiting(ticket.dept).findIndex((t) => t.id === ticketId);
    return { ahead, waitMinutes: estimateWaitMinutes(ahead, this.openRooms(ticket.dept).length, this.statsFor(ticket.dept)) };
  }

  /** What a patient checking in now would wait in this department: the estimate for the place behind the last. */
  typicalWaitMinutes(dept: string): number {
    return estimateWaitMinutes(this.waiting(dept).length, this.openRooms(dept).length, this.statsFor(dept));
  }

  roomName(roomId: string): { ja: string; en: string } | null {
    for (const dept of this.clinic?.departments ?? []) {
      const room = dept.rooms.find((r) => r.id === roomId);
      if (room) return room.name;
    }
    return null;
  }

  private async runSyncLoop(): Promise<void> {
    let gapRounds = 0;
    while (this.resyncRequested) {
      this.resyncRequested = false;
      if (this.gapPersisted) {
        // The hub had nothing to fill the gap yet: ask again, but not in a tight loop.
        await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** gapRounds++, 5000)));
      } else {
        gapRounds = 0;
      }
      this.gapPersisted = false;
      let result: SyncResult;
      try {
        result = await this.options.sync(this.seq);
      } catch (error) {
        this.options.onSyncError?.(error);
        throw error;
      }
      if (result.mode === 'snapshot') this.applySnapshot(result.snapshot);
      else if (result.clinic) this.clinic = result.clinic;
      if (result.mode === 'events') for (const event of result.events) if (this.seq === null || event.seq === this.seq + 1) this.apply(event);
      this.drainPending();
      this.options.onChange?.();
    }
  }

  private drainPending(): void {
    const seqs = [...this.pending.keys()].sort((a, b) => a - b);
    for (const seq of seqs) {
      const event = this.pending.get(seq)!;
      this.pending.delete(seq);
      if (this.seq !== null && seq <= this.seq) continue;
      if (this.seq !== null && seq === this.seq + 1) {
        this.apply(event);
        continue;
      }
      // Still a gap: keep the rest and go round the sync loop again.
      this.pending.set(seq, event);
      this.resyncRequested = true;
      this.gapPersisted = true;
      return;
    }
  }

  private applySnapshot(snapshot: QueueSnapshot): void {
    this.seq = snapshot.seq;
    this.clinic = snapshot.clinic;
    this.tickets.clear();
    for (const ticket of snapshot.tickets) this.tickets.set(ticket.id, ticket);
    this.deptStats.clear();
    for (const [dept, stats] of Object.entries(snapshot.deptStats)) this.deptStats.set(dept, stats);
    this.options.onSnapshot?.(snapshot);
  }

  private apply(event: QueueEvent): void {
    this.seq = event.seq;
    if (TERMINAL.has(event.ticket.status)) this.tickets.delete(event.ticket.id);
    else this.tickets.set(event.ticket.id, event.ticket);
    if (event.deptStats) {
      const { dept, ...stats } = event.deptStats;
      this.deptStats.set(dept, stats);
    }
    this.options.onEvent?.(event);
  }
}
