import type { DeptStats, PublicTicket, QueueEvent } from '@clinic-hub/protocol';

const TERMINAL = new Set(['done', 'no_show', 'cancelled']);

export interface RebuiltQueue {
  seq: number;
  /** Active tickets in waiting order. */
  tickets: PublicTicket[];
  deptStats: Record<string, DeptStats>;
}

/**
 * The queue as the events say it is. Each event carries the ticket's whole
 * state after the change, so replaying them in order gives the active queue;
 * used to check (and if need be restore) what Redis holds.
 */
export function rebuildQueue(events: Iterable<QueueEvent>): RebuiltQueue {
  const tickets = new Map<string, PublicTicket>();
  const deptStats: Record<string, DeptStats> = {};
  let seq = 0;
  for (const event of events) {
    if (event.seq !== seq + 1) throw new Error(`event stream has a gap: ${seq} then ${event.seq}`);
    seq = event.seq;
    if (TERMINAL.has(event.ticket.status)) tickets.delete(event.ticket.id);
    else tickets.set(event.ticket.id, event.ticket);
    if (event.deptStats) {
      const { dept, ...stats } = event.deptStats;
      deptStats[dept] = stats;
    }
  }
  return { seq, tickets: [...tickets.values()].sort((a, b) => a.order - b.order), deptStats };
}
