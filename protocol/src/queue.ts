import { z } from 'zod';
import type { PublicClinic } from './clinic.js';
import { NotifyContact, NotifyLocale, QuietHours } from './notify.js';
import { SelfCheckinPayload } from './self-checkin.js';

export const TICKET_STATUSES = ['waiting', 'called', 'in_consultation', 'done', 'no_show', 'cancelled'] as const;
export type TicketStatus = (typeof TICKET_STATUSES)[number];
export const ACTIVE_STATUSES: readonly TicketStatus[] = ['waiting', 'called', 'in_consultation'];
/** A ticket in one of these has left the queue for good (Lua: TERMINAL in hub/src/queue/scripts/lib.lua). */
export const TERMINAL_STATUSES: readonly TicketStatus[] = ['done', 'no_show', 'cancelled'];

export const Priority = z.enum(['normal', 'urgent']);
export type Priority = z.infer<typeof Priority>;

/**
 * A ticket as displays, patients and everyone else see it. It has no field for a
 * name or any other patient data, so none can leak through an event.
 */
export interface PublicTicket {
  id: string;
  /** What screens show, e.g. "A-012". */
  number: string;
  dept: string;
  priority: Priority;
  status: TicketStatus;
  /** Room the ticket is called to; null while waiting. */
  room: string | null;
  /** Waiting order within the department: smaller is called first. */
  order: number;
  recalls: number;
  issuedAt: number;
  calledAt: number | null;
  startedAt: number | null;
  endedAt: number | null;
  /**
   * Present on the arrival of an appointment: its scheduled time. Such a
   * ticket waits in the order of that time (ahead of walk-ins who came after
   * it) unless it arrived more than the clinic's `appointmentLateMinutes` late.
   */
  appointmentAt?: number;
}

export const QUEUE_EVENT_TYPES = [
  'ticket.issued',
  'ticket.called',
  'ticket.recalled',
  'ticket.started',
  'ticket.skipped',
  'ticket.done',
  'ticket.cancelled',
  'ticket.no_show',
] as const;
export type QueueEventType = (typeof QUEUE_EVENT_TYPES)[number];

export interface DeptStats {
  /** Rolling mean of the department's recent consultation durations, in minutes. */
  avgConsultMinutes: number;
  /** How many measured consultations the mean is made of (0: the configured default is used). */
  samples: number;
}

/** One change of the queue. `seq` is per clinic, starts at 1 and has no gaps. */
export interface QueueEvent {
  seq: number;
  type: QueueEventType;
  /** Server time (Redis clock) of the change, ms since the epoch. */
  at: number;
  ticket: PublicTicket;
  /** Present when the change updated the department's measured durations (ticket.done). */
  deptStats?: { dept: string } & DeptStats;
}

export interface QueueSnapshot {
  /** The sequence number the snapshot is consistent with. */
  seq: number;
  clinic: PublicClinic;
  /** Active tickets: waiting, called and in consultation. */
  tickets: PublicTicket[];
  deptStats: Record<string, DeptStats>;
}

/** An announcement on the clinic's displays (not a queue change, so no sequence number). */
export interface Announcement {
  id: string;
  text: { ja: string; en: string };
  at: number;
  /** How long displays show it. */
  durationSeconds: number;
}

const RequestId = z.string().min(8).max(64).regex(/^[A-Za-z0-9_-]+$/);
const TicketId = z.string().min(1).max(64).regex(/^[A-Za-z0-9_-]+$/);
const DeptId = z.string().min(1).max(32);
const RoomId = z.string().min(1).max(32);

/** Patient data given at check-in. Stored apart from the queue and never sent to displays. */
export const PatientInfo = z.object({
  name: z.string().min(1).max(100),
  phone: z.string().max(32).optional(),
  note: z.string().max(500).optional(),
});
export type PatientInfo = z.infer<typeof PatientInfo>;

/**
 * At check-in: how the patient wants to hear that their turn is near (3 ahead,
 * 1 ahead, called). In-app needs no address: it goes to the patient's own
 * ticket page (user `patient:<ticketId>`).
 */
export const CheckinNotify = z.union([
  NotifyContact,
  z.object({ channel: z.literal('in_app'), locale: NotifyLocale.default('ja'), quietHours: QuietHours.nullable().optional() }),
]);
export type CheckinNotify = z.input<typeof CheckinNotify>;

/** Payloads of client → server queue events. `requestId` makes a retried action harmless. */
export const QueuePayloads = {
  'queue:checkin': z.object({
    dept: DeptId,
    priority: Priority.default('normal'),
    patient: PatientInfo.optional(),
    notify: CheckinNotify.optional(),
    requestId: RequestId.optional(),
  }),
  /** A check-in by the patient (kiosk) or for them by an appointment code: the same ticket as `queue:checkin`. */
  'queue:self-checkin': SelfCheckinPayload,
  'queue:call-next': z.object({ dept: DeptId, room: RoomId, requestId: RequestId.optional() }),
  'queue:recall': z.object({ ticketId: TicketId, requestId: RequestId.optional() }),
  'queue:start': z.object({ ticketId: TicketId, requestId: RequestId.optional() }),
  'queue:skip': z.object({ ticketId: TicketId, requestId: RequestId.optional() }),
  'queue:done': z.object({ ticketId: TicketId, requestId: RequestId.optional() }),
  'queue:cancel': z.object({ ticketId: TicketId, requestId: RequestId.optional() }),
  'queue:sync': z.object({ afterSeq: z.number().int().min(0).optional() }),
  'queue:patient': z.object({ ticketId: TicketId }),
  'queue:patient-link': z.object({ ticketId: TicketId }),
  'queue:announce': z.object({
    text: z.object({ ja: z.string().min(1).max(200), en: z.string().min(1).max(200) }),
    durationSeconds: z.number().int().min(3).max(600).default(20),
  }),
  'auth:refresh': z.object({}).strict(),
} as const;

export type QueueClientEvent = keyof typeof QueuePayloads;
export type QueuePayload<E extends QueueClientEvent> = z.input<(typeof QueuePayloads)[E]>;

export const QUEUE_ACTIONS = ['checkin', 'call-next', 'recall', 'start', 'skip', 'done', 'cancel'] as const;
export type QueueAction = (typeof QUEUE_ACTIONS)[number];

/** `clinic` in events mode: the clinic as it is now (its settings may have changed while the client was away). */
export type SyncResult = { mode: 'events'; events: QueueEvent[]; clinic?: PublicClinic } | { mode: 'snapshot'; snapshot: QueueSnapshot };
