import { QueueFollower, type LocalizedText, type PublicTicket, type QueueSnapshot } from '@clinic-hub/protocol';
import { CliError } from './cli-error.js';

/** One ticket as the CLI shows it: the public ticket plus its place in the line. */
export interface TicketRow extends PublicTicket {
  /** Tickets in front of it in its department (waiting tickets only). */
  ahead: number | null;
  /** estimateWaitMinutes for a waiting ticket (protocol/src/wait.ts). */
  waitMinutes: number | null;
}

export interface RoomRow {
  id: string;
  name: LocalizedText;
  /** Marked open in the clinic's settings (closed rooms do not count in wait estimates). */
  open: boolean;
  /** The ticket called to or in consultation in this room. */
  ticket: { id: string; number: string; status: PublicTicket['status'] } | null;
}

export interface DepartmentView {
  id: string;
  name: LocalizedText;
  prefix: string;
  rooms: RoomRow[];
  waiting: number;
  called: number;
  inConsultation: number;
  /** What a patient checking in now would wait. */
  typicalWaitMinutes: number;
  /** Rooms marked open in the clinic's settings: the capacity the estimates count (openRoomsOf, protocol/src/wait.ts). */
  openRooms: string[];
  avgConsultMinutes: number;
  /** 0: the department's configured default is in use. */
  measuredSamples: number;
  /** Tickets in rooms (in room order), then waiting tickets in calling order. */
  tickets: TicketRow[];
}

export interface QueueView {
  clinic: { id: string; name: LocalizedText; timezone: string };
  seq: number;
  departments: DepartmentView[];
}

/** A follower holding one snapshot: the same waits and order the live views compute. */
export async function followerFromSnapshot(snapshot: QueueSnapshot): Promise<QueueFollower> {
  const follower = new QueueFollower({ sync: async () => ({ mode: 'snapshot', snapshot }) });
  await follower.resync();
  return follower;
}

export function queueView(follower: QueueFollower): QueueView | null {
  const clinic = follower.clinic;
  if (!clinic || follower.seq === null) return null;
  const departments = clinic.departments.map((dept): DepartmentView => {
    const inRooms = [...follower.tickets.values()].filter((t) => t.dept === dept.id && t.status !== 'waiting');
    const roomIndex = (room: string | null) => dept.rooms.findIndex((r) => r.id === room);
    inRooms.sort((a, b) => roomIndex(a.room) - roomIndex(b.room) || (a.calledAt ?? 0) - (b.calledAt ?? 0));
    const waiting = follower.waiting(dept.id);
    const stats = follower.statsFor(dept.id);
    const rows: TicketRow[] = [
      ...inRooms.map((t) => ({ ...t, ahead: null, waitMinutes: null })),
      ...waiting.map((t) => {
        const position = follower.positionOf(t.id);
        return { ...t, ahead: position?.ahead ?? null, waitMinutes: position?.waitMinutes ?? null };
      }),
    ];
    return {
      id: dept.id,
      name: dept.name,
      prefix: dept.prefix,
      rooms: dept.rooms.map((room) => {
        const occupant = inRooms.find((t) => t.room === room.id);
        return { id: room.id, name: room.name, open: room.open !== false, ticket: occupant ? { id: occupant.id, number: occupant.number, status: occupant.status } : null };
      }),
      waiting: waiting.length,
      called: inRooms.filter((t) => t.status === 'called').length,
      inConsultation: inRooms.filter((t) => t.status === 'in_consultation').length,
      typicalWaitMinutes: follower.typicalWaitMinutes(dept.id),
      openRooms: follower.openRooms(dept.id),
      avgConsultMinutes: stats.avgConsultMinutes,
      measuredSamples: stats.samples,
      tickets: rows,
    };
  });
  return { clinic: { id: clinic.id, name: clinic.name, timezone: clinic.timezone }, seq: follower.seq, departments };
}

/** The first room of the department with nobody called to it or in consultation. */
export function firstFreeRoom(dept: DepartmentView): string | null {
  return dept.rooms.find((r) => r.ticket === null)?.id ?? null;
}

/** "a12", "A-12" and "A-012" all mean A-012; longer numbers keep their digits. */
export function normalizeTicketNumber(input: string): string | null {
  const match = /^([A-Za-z]{1,2})-?(\d{1,6})$/.exec(input.trim());
  if (!match) return null;
  return `${match[1]!.toUpperCase()}-${String(Number(match[2])).padStart(3, '0')}`;
}

/** A ticket id, or a number like A-012 among the active tickets. */
export function resolveTicket(tickets: Iterable<PublicTicket>, reference: string): PublicTicket {
  const all = [...tickets];
  const byId = all.find((t) => t.id === reference);
  if (byId) return byId;
  const number = normalizeTicketNumber(reference);
  const matches = number ? all.filter((t) => t.number === number) : [];
  if (matches.length === 1) return matches[0]!;
  if (matches.length > 1) {
    throw new CliError('TICKET_AMBIGUOUS', { detail: `${number}: ${matches.map((t) => t.id).join(', ')}` });
  }
  throw new CliError('QUEUE_TICKET_NOT_FOUND', { message: `No active ticket ${number ?? reference}.` });
}
