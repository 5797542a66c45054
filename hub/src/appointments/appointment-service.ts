import type { RedisClient } from '@clinic-hub/platform/redis';
import {
  AppointmentId,
  AppointmentImportRow,
  AppointmentInput,
  protocolError,
  type Appointment,
  type AppointmentImportResponse,
  type AppointmentImportResult,
  fail,
  type Ack,
} from '@clinic-hub/protocol';
import type { ClinicRegistry } from '../clinics/clinic-registry.js';
import type { NotificationService, ReminderKind } from '../notify/index.js';
import { appointmentKeys } from './appointment-keys.js';
import { AppointmentStore, type AppointmentRecord } from './appointment-store.js';

type Reminders = { id: string; kind: ReminderKind; sendAt: number }[];

export interface AppointmentServiceDeps {
  redis: RedisClient;
  clinics: ClinicRegistry;
  /** Schedules and cancels the reminders of appointments that come with a contact. */
  notifications: Pick<NotificationService, 'scheduleAppointmentReminders' | 'cancelAppointmentReminders'>;
  /** Base URL of the links handed to patients: the arrival link. */
  publicUrl: () => string;
  now?: () => number;
}

/** The link that opens the phone check-in page on an appointment's arrival (the reminder carries it). */
export function arrivalUrl(publicUrl: string, clinic: string, code: string): string {
  return `${publicUrl}/checkin#clinic=${encodeURIComponent(clinic)}&code=${code}`;
}

/**
 * Appointments for their arrival: each has a ten-digit arrival code, unique
 * in its clinic, that the kiosk takes and the reminder's link carries; the
 * queue's check-in script marks the arrival in the same step as it issues
 * the ticket. Reminders (when a contact is given) are the notify domain's.
 * Kept until the clinic's patient data retention after the appointment.
 */
export class AppointmentService {
  readonly store: AppointmentStore;
  private readonly now: () => number;

  constructor(private readonly deps: AppointmentServiceDeps) {
    this.store = new AppointmentStore(deps.redis);
    this.now = deps.now ?? Date.now;
  }

  /** Creates or moves one appointment and (re)schedules its reminders when it has a contact. */
  async put(clinicId: string, appointmentId: string, body: unknown): Promise<Ack<{ appointment: Appointment; reminders: Reminders }>> {
    const id = AppointmentId.safeParse(appointmentId);
    if (!id.success) return fail('INVALID_PAYLOAD', 'id: 1–64 of A-Z a-z 0-9 _ -');
    const parsed = AppointmentInput.safeParse(body);
    if (!parsed.success) return fail('INVALID_PAYLOAD', issueText(parsed.error.issues[0]));
    return this.putParsed(clinicId, id.data, parsed.data);
  }

  /**
   * A list of appointments (a day's, from a booking system kept elsewhere):
   * each row is checked and stored on its own, so one bad row refuses that
   * row only; the answer says, row by row (0-based), what was stored and why
   * the others were not.
   */
  async import(clinicId: string, rows: unknown[]): Promise<Ack<AppointmentImportResponse>> {
    if (!this.deps.clinics.get(clinicId)) return fail('CLINIC_NOT_FOUND', clinicId);
    const results: AppointmentImportResult[] = [];
    const seen = new Set<string>();
    for (const [row, raw] of rows.entries()) {
      const rawId = typeof raw === 'object' && raw !== null && typeof (raw as { id?: unknown }).id === 'string' ? (raw as { id: string }).id : null;
      const parsed = AppointmentImportRow.safeParse(raw);
      if (!parsed.success) {
        results.push({ row, id: rawId, ok: false, error: protocolError('INVALID_PAYLOAD', issueText(parsed.error.issues[0])) });
        continue;
      }
      const { id, ...input } = parsed.data;
      if (seen.has(id)) {
        results.push({ row, id, ok: false, error: protocolError('INVALID_PAYLOAD', 'id: appears in an earlier row of this list') });
        continue;
      }
      seen.add(id);
      const stored = await this.putParsed(clinicId, id, input);
      results.push(stored.ok ? { row, id, ok: true, appointment: stored.appointment, reminders: stored.reminders } : { row, id, ok: false, error: stored.error });
    }
    const imported = results.filter((r) => r.ok).length;
    return { ok: true, imported, refused: results.length - imported, results };
  }

  async cancel(clinicId: string, appointmentId: string): Promise<Ack<{ removedReminders: number }>> {
    if (!this.deps.clinics.get(clinicId)) return fail('CLINIC_NOT_FOUND', clinicId);
    const existed = await this.store.delete(clinicId, appointmentId);
    const reminders = await this.deps.notifications.cancelAppointmentReminders(clinicId, appointmentId);
    if (!existed && !reminders.ok) return fail('APPOINTMENT_NOT_FOUND', appointmentId);
    return { ok: true, removedReminders: reminders.ok ? reminders.removed : 0 };
  }

  async get(clinicId: string, appointmentId: string): Promise<Appointment | null> {
    const record = await this.store.get(clinicId, appointmentId);
    return record ? this.toAppointment(clinicId, record) : null;
  }

  async byCode(clinicId: string, code: string): Promise<AppointmentRecord | null> {
    return this.store.byCode(clinicId, code);
  }

  /** The appointments from `from` to `to` (ms), soonest first. */
  async list(clinicId: string, from: number, to: number): Promise<Appointment[]> {
    return (await this.store.between(clinicId, from, to)).map((record) => this.toAppointment(clinicId, record));
  }

  toAppointment(clinicId: string, record: AppointmentRecord): Appointment {
    return {
      id: record.id,
      dept: record.dept,
      room: record.room,
      startsAt: record.startsAt,
      arrivalCode: record.code,
      arrivalUrl: arrivalUrl(this.deps.publicUrl(), clinicId, record.code),
      ticket: record.ticket,
      arrivedAt: record.arrivedAt,
    };
  }

  private async putParsed(
    clinicId: string,
    id: string,
    input: ReturnType<typeof AppointmentInput.parse>,
  ): Promise<Ack<{ appointment: Appointment; reminders: Reminders }>> {
    const clinic = this.deps.clinics.get(clinicId);
    if (!clinic) return fail('CLINIC_NOT_FOUND', clinicId);
    const startsAt = typeof input.startsAt === 'number' ? input.startsAt : Date.parse(input.startsAt);
    if (!clinic.departments.some((d) => d.id === input.dept)) return fail('QUEUE_DEPT_NOT_FOUND', input.dept);
    if (input.room && !clinic.departments.some((d) => d.rooms.some((r) => r.id === input.room))) return fail('QUEUE_ROOM_NOT_FOUND', input.room);
    const now = this.now();
    if (startsAt <= now) return fail('NOTIFY_APPOINTMENT_PAST');
    const previous = await this.store.get(clinicId, id);
    if (previous?.ticket) return fail('APPOINTMENT_ALREADY_ARRIVED', 'the patient has arrived; it cannot be changed');

    let reminders: Reminders = [];
    if (input.contact) {
      const scheduled = await this.deps.notifications.scheduleAppointmentReminders({
        clinic: clinicId,
        appointmentId: id,
        startsAt,
        contact: input.contact,
        dept: input.dept,
        ...(input.room ? { room: input.room } : {}),
        ...(input.kinds ? { kinds: input.kinds } : {}),
      });
      if (!scheduled.ok) return scheduled;
      reminders = scheduled.reminders;
    } else if (previous) {
      // No contact any more: reminders already scheduled for it would go to the old one.
      await this.deps.notifications.cancelAppointmentReminders(clinicId, id);
    }
    const retentionMs = clinic.patientDataRetentionHours * 3600_000;
    await this.deps.redis.zremrangebyscore(appointmentKeys(clinicId).byTime, '-inf', `(${now - retentionMs}`);
    const record = await this.store.put(clinicId, { id, startsAt, dept: input.dept, room: input.room ?? null }, startsAt + retentionMs);
    return { ok: true, appointment: this.toAppointment(clinicId, record), reminders };
  }
}

function issueText(issue: { path: PropertyKey[]; message: string } | undefined): string | undefined {
  return issue ? `${issue.path.map(String).join('.') || '(body)'}: ${issue.message}` : undefined;
}
