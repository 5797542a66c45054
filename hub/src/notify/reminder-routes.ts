import { z } from 'zod';
import { NotifyContact, protocolError } from '@clinic-hub/protocol';
import type { Authenticator } from '../auth/authenticator.js';
import type { HttpRequest, HttpResponse } from '../http/http-types.js';
import { errorResponse, isResponse, json, readJsonBody } from '../http/routes.js';
import { REMINDER_OFFSETS_MS, type NotificationService, type ReminderKind } from './notification-service.js';

const PATH = /^\/api\/clinics\/([A-Za-z0-9_-]{1,32})\/appointments\/([A-Za-z0-9_-]{1,64})\/reminders$/;

const ScheduleBody = z.object({
  /** ISO 8601 with an offset (`2026-12-01T10:30:00+09:00`) or ms since the epoch. */
  startsAt: z.union([z.number().int().positive(), z.iso.datetime({ offset: true })]),
  contact: NotifyContact,
  dept: z.string().min(1).max(32).optional(),
  room: z.string().min(1).max(32).optional(),
  kinds: z.array(z.enum(Object.keys(REMINDER_OFFSETS_MS) as [ReminderKind, ...ReminderKind[]])).min(1).optional(),
});

/**
 * Appointment reminders for the clinic's booking system or staff:
 *
 * - `PUT /api/clinics/:clinic/appointments/:id/reminders` with `{ startsAt, contact, dept?, room?, kinds? }`
 *   schedules the reminders (24 h and 1 h before by default) as delayed jobs
 *   that survive restarts; sending it again with a new time moves them.
 * - `DELETE` on the same path cancels them.
 *
 * Admin and staff tokens of the clinic.
 */
export function createReminderRoutes(deps: { authenticator: Authenticator; notifications: NotificationService }) {
  return async (request: HttpRequest): Promise<HttpResponse | null> => {
    const match = PATH.exec(request.path);
    if (!match) return null;
    const [, clinic, appointmentId] = match as unknown as [string, string, string];
    if (request.method !== 'PUT' && request.method !== 'DELETE') {
      return json(405, { error: protocolError('METHOD_NOT_ALLOWED', 'use PUT or DELETE') }, { allow: 'PUT, DELETE' });
    }
    const checked = await deps.authenticator.bearer(request);
    if (!checked.ok) return errorResponse(checked.error.code, checked.error.detail);
    const caller = checked.token;
    if (caller.role !== 'admin' && caller.role !== 'staff') return errorResponse('AUTH_FORBIDDEN', 'only admins and staff schedule reminders');
    if (caller.clinic !== '*' && caller.clinic !== clinic) return errorResponse('AUTH_WRONG_CLINIC');

    if (request.method === 'DELETE') {
      const result = await deps.notifications.cancelAppointmentReminders(clinic, appointmentId);
      return result.ok ? json(200, { ok: true, removed: result.removed }) : errorResponse(result.error.code, result.error.detail);
    }
    const body = readJsonBody(request, ScheduleBody);
    if (isResponse(body)) return body;
    const { startsAt, contact, dept, room, kinds } = body;
    const result = await deps.notifications.scheduleAppointmentReminders({
      clinic,
      appointmentId,
      startsAt: typeof startsAt === 'number' ? startsAt : Date.parse(startsAt),
      contact,
      ...(dept ? { dept } : {}),
      ...(room ? { room } : {}),
      ...(kinds ? { kinds } : {}),
    });
    return result.ok ? json(200, { ok: true, reminders: result.reminders }) : errorResponse(result.error.code, result.error.detail);
  };
}
