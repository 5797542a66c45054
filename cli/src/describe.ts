import type { AdmitResult, QueueEvent, QueueSnapshot } from '@clinic-hub/protocol';
import { ago, bilingual, clockTime } from './output.js';
import type { TicketRow } from './queue-model.js';

const roomLabel = (snapshot: QueueSnapshot | null, room: string | null) => {
  if (!room) return '?';
  const name = snapshot?.clinic.departments.flatMap((d) => d.rooms).find((r) => r.id === room)?.name;
  return name ? `${room} (${bilingual(name)})` : room;
};

/**
 * What an admission to video did, for people: who was called to which room,
 * that their page now has the join button, and how the clinician gets in.
 */
export function describeAdmission(admitted: AdmitResult, snapshot: QueueSnapshot | null = null, options: { link?: boolean } = {}): string {
  const t = admitted.event.ticket;
  const said = `Admitted ${t.number} to video in ${roomLabel(snapshot, t.room)}${admitted.replayed ? ' (already done: replayed)' : ''}: their page shows the join button.`;
  // A live view has no room for a link of a few hundred characters: there the console is the way in.
  if (options.link === false) return `${said} Join from the staff console ("Join video").`;
  return `${said}\nJoin from the staff console ("Join video"), or with this link until ${clockTime(admitted.pass.expiresAt)}: ${admitted.pass.pageUrl}`;
}

/** One line saying what an event did, for people. */
export function describeEvent(event: QueueEvent, snapshot: QueueSnapshot | null = null): string {
  const t = event.ticket;
  switch (event.type) {
    case 'ticket.issued':
      return `Checked in ${t.number}${t.priority === 'urgent' ? ' (urgent)' : ''}`;
    case 'ticket.called':
      return `Called ${t.number} to ${roomLabel(snapshot, t.room)}`;
    case 'ticket.recalled':
      return `Recalled ${t.number} to ${roomLabel(snapshot, t.room)} (${t.recalls}×)`;
    case 'ticket.no_show':
      return `${t.number} is a no-show: recalled ${t.recalls}× without coming`;
    case 'ticket.started':
      return `${t.number} is in consultation in ${roomLabel(snapshot, t.room)}`;
    case 'ticket.skipped':
      return `Skipped ${t.number}: back in line behind those waiting now`;
    case 'ticket.done':
      return `${t.number} done${event.deptStats ? ` (average consultation now ${event.deptStats.avgConsultMinutes} min)` : ''}`;
    case 'ticket.cancelled':
      return `Cancelled ${t.number}`;
  }
}


export function ticketSince(t: TicketRow, now: number): string {
  if (t.status === 'in_consultation' && t.startedAt) return `started ${ago(t.startedAt, now)}`;
  if (t.status === 'called' && t.calledAt) return `called ${ago(t.calledAt, now)}${t.recalls ? ` (recalled ${t.recalls}×)` : ''}`;
  return `issued ${ago(t.issuedAt, now)}`;
}
