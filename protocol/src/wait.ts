import type { DeptStats, PublicTicket } from './queue.js';

/**
 * The rooms of a department that are open now: those seeing a patient (a
 * ticket of the department called to the room or in consultation there).
 * A room nobody is working in does not shorten anyone's wait, so only these
 * count as capacity. Read from the public tickets alone, so every client
 * following the queue (displays, patient pages, staff consoles, the CLI)
 * finds the same rooms at the same sequence number.
 */
export function openRoomsOf(dept: string, tickets: Iterable<PublicTicket>): string[] {
  const rooms = new Set<string>();
  for (const ticket of tickets) {
    if (ticket.dept === dept && ticket.room !== null && (ticket.status === 'called' || ticket.status === 'in_consultation')) rooms.add(ticket.room);
  }
  return [...rooms].sort();
}

/**
 * Minutes until a waiting ticket is likely to be called: the one estimate
 * every screen shows (docs/protocol.md, "Estimated wait").
 *
 * Every open room is assumed busy with a consultation that is, on average,
 * half done. The ticket is called when `ahead + 1` consultations have ended,
 * spread over the `openRooms` open rooms; with none open (before the first
 * call of the day, between patients) one is assumed: somebody has to open.
 * `stats.avgConsultMinutes` is the department's measured mean (its
 * configured default until consultations have been measured).
 */
export function estimateWaitMinutes(ahead: number, openRooms: number, stats: DeptStats): number {
  if (ahead < 0) return 0;
  return Math.round(((ahead + 0.5) * stats.avgConsultMinutes) / Math.max(1, openRooms));
}
