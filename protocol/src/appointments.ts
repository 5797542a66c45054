import { z } from 'zod';
import type { ErrorCode } from './errors.js';
import { NotifyContact } from './notify.js';

/**
 * Appointments a clinic's booking system (or its staff) gives the hub: for
 * their reminders, and for their arrival — the reminder carries an arrival
 * link and code, and arriving checks the patient in with the appointment's
 * department at a place decided by its time (docs/protocol.md, "Appointments").
 */

export const AppointmentId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, '1–64 of A-Z a-z 0-9 _ -');

/** Reminder kinds an appointment may ask for (notify). */
export const REMINDER_KINDS = ['reminder_24h', 'reminder_1h'] as const;

/** ISO 8601 with an offset (`2026-12-01T10:30:00+09:00`) or ms since the epoch. */
export const AppointmentTime = z.union([z.number().int().positive(), z.iso.datetime({ offset: true })]);

/** One appointment: `PUT /api/clinics/:clinic/appointments/:id`, and each row of an import. */
export const AppointmentInput = z.object({
  startsAt: AppointmentTime,
  /** The department the patient is checked in to when they arrive. */
  dept: z.string().min(1).max(32),
  room: z.string().min(1).max(32).optional(),
  /** Reminders go here (24 h and 1 h before unless `kinds` says otherwise); none without a contact. */
  contact: NotifyContact.optional(),
  kinds: z.array(z.enum(REMINDER_KINDS)).min(1).optional(),
});
export type AppointmentInput = z.input<typeof AppointmentInput>;

/** `POST /api/clinics/:clinic/appointments/import`: a day's list (or any list) of appointments, each with its id. */
export const AppointmentImportBody = z.object({
  appointments: z.array(z.unknown()).min(1).max(2000),
});
export const AppointmentImportRow = AppointmentInput.extend({ id: AppointmentId });

/** What the hub keeps of an appointment and answers about it: no contact (that stays with the reminders). */
export interface Appointment {
  id: string;
  dept: string;
  room: string | null;
  startsAt: number;
  /** The arrival code (ten digits): typed at the kiosk, carried by the reminder's link. */
  arrivalCode: string;
  /** The link that checks the patient in from their phone (the reminder carries it). */
  arrivalUrl: string;
  /** The ticket its arrival gave, once the patient has arrived. */
  ticket: string | null;
  arrivedAt: number | null;
}

/** One row's outcome in an import: the appointment, or why the row was refused (nothing of it was stored). */
export type AppointmentImportResult =
  | { row: number; id: string; ok: true; appointment: Appointment; reminders: { id: string; kind: string; sendAt: number }[] }
  | { row: number; id: string | null; ok: false; error: { code: ErrorCode; message: string; detail?: string } };

export interface AppointmentImportResponse {
  imported: number;
  refused: number;
  results: AppointmentImportResult[];
}
