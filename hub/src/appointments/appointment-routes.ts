import { AppointmentImportBody, protocolError } from '@clinic-hub/protocol';
import type { Authenticator } from '../auth/authenticator.js';
import { clinicCaller } from '../http/bearer.js';
import type { HttpRequest, HttpResponse } from '../http/http-types.js';
import { errorResponse, json } from '../http/routes.js';
import type { AppointmentService } from './appointment-service.js';

const ONE = /^\/api\/clinics\/([A-Za-z0-9_-]{1,32})\/appointments\/([^/]{1,200})$/;
const LIST = /^\/api\/clinics\/([A-Za-z0-9_-]{1,32})\/appointments$/;
const IMPORT = /^\/api\/clinics\/([A-Za-z0-9_-]{1,32})\/appointments\/import$/;
const DAY_MS = 86_400_000;

/**
 * Appointments over HTTP, for the clinic's booking system or its staff
 * (admin and staff tokens of the clinic):
 *
 * - `PUT /api/clinics/:clinic/appointments/:id` `{ startsAt, dept, room?, contact?, kinds? }`
 *   stores one (its arrival code and link) and schedules its reminders when it has a contact;
 * - `POST /api/clinics/:clinic/appointments/import` `{ appointments: [{ id, …the same }] }`
 *   stores a list, answering row by row;
 * - `GET /api/clinics/:clinic/appointments?from=&to=` lists them (default: the next 24 h);
 * - `DELETE /api/clinics/:clinic/appointments/:id` cancels one and its reminders.
 */
export function createAppointmentRoutes(deps: { authenticator: Authenticator; appointments: AppointmentService }) {
  return async (request: HttpRequest): Promise<HttpResponse | null> => {
    const imported = IMPORT.exec(request.path);
    const one = imported ? null : ONE.exec(request.path);
    const list = LIST.exec(request.path);
    const match = imported ?? one ?? list;
    if (!match) return null;
    const clinic = match[1]!;
    const allowed = imported ? ['POST'] : one ? ['PUT', 'DELETE'] : ['GET'];
    if (!allowed.includes(request.method)) {
      return json(405, { error: protocolError('METHOD_NOT_ALLOWED', `use ${allowed.join(' or ')}`) }, { allow: allowed.join(', ') });
    }
    const caller = await clinicCaller(deps.authenticator, request, clinic, ['admin', 'staff'], 'only admins and staff manage appointments');
    if (!('role' in caller)) return caller;

    if (list) {
      const from = request.query.has('from') ? Date.parse(request.query.get('from')!) || Number(request.query.get('from')) : Date.now();
      const to = request.query.has('to') ? Date.parse(request.query.get('to')!) || Number(request.query.get('to')) : from + DAY_MS;
      if (!Number.isFinite(from) || !Number.isFinite(to) || to < from || to - from > 31 * DAY_MS) {
        return errorResponse('INVALID_PAYLOAD', 'from, to: ISO 8601 times or ms, to after from, at most 31 days apart');
      }
      return json(200, { appointments: await deps.appointments.list(clinic, from, to) });
    }
    if (one && request.method === 'DELETE') {
      const result = await deps.appointments.cancel(clinic, decodeURIComponent(one[2]!));
      return result.ok ? json(200, { ok: true, removedReminders: result.removedReminders }) : errorResponse(result.error.code, result.error.detail);
    }
    let body: unknown;
    try {
      body = JSON.parse(request.body.toString('utf8'));
    } catch {
      return errorResponse('INVALID_PAYLOAD', 'body is not JSON');
    }
    if (imported) {
      const parsed = AppointmentImportBody.safeParse(body);
      if (!parsed.success) return errorResponse('INVALID_PAYLOAD', 'appointments: a list of 1 to 2000 appointments');
      const result = await deps.appointments.import(clinic, parsed.data.appointments);
      if (!result.ok) return errorResponse(result.error.code, result.error.detail);
      const { ok: _ok, ...response } = result;
      return json(200, response);
    }
    const result = await deps.appointments.put(clinic, decodeURIComponent(one![2]!), body);
    if (!result.ok) return errorResponse(result.error.code, result.error.detail);
    return json(200, { ok: true, appointment: result.appointment, reminders: result.reminders });
  };
}
