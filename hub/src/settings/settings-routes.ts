import { RoomStateRequest, SettingsUpdateRequest, protocolError, type Role } from '@clinic-hub/protocol';
import type { Authenticator } from '../auth/authenticator.js';
import { clinicCaller } from '../http/bearer.js';
import type { HttpRequest, HttpResponse } from '../http/http-types.js';
import { errorResponse, isResponse, json, readJsonBody } from '../http/routes.js';
import type { ClinicSettings } from './clinic-settings.js';

/** Who reads a clinic's settings: its manager (admin) and its staff (the staff console shows rooms and hours). */
const READ_ROLES: readonly Role[] = ['admin', 'staff'];
/** Who opens and closes rooms: staff at the desk and the manager. */
const ROOM_ROLES: readonly Role[] = ['admin', 'staff'];

const SETTINGS_PATH = /^\/api\/clinics\/([A-Za-z0-9_-]{1,32})\/settings$/;
const ROOM_PATH = /^\/api\/clinics\/([A-Za-z0-9_-]{1,32})\/rooms\/([A-Za-z0-9_-]{1,32})$/;

export interface SettingsRouteDeps {
  authenticator: Authenticator;
  settings: ClinicSettings;
}

/**
 * A clinic's settings over HTTP (bearer token; docs/protocol.md, "Clinic settings"):
 *
 * - `GET /api/clinics/:clinic/settings` → ClinicSettingsRecord (admin, staff).
 * - `PUT /api/clinics/:clinic/settings` `{ settings, ifVersion? }` → ClinicSettingsRecord (admin):
 *   validated with the clinic file's schema, applied on every hub node within a second, audited
 *   (`settings.update`, before and after).
 * - `PUT /api/clinics/:clinic/rooms/:room` `{ open }` → RoomStateResult (admin, staff): audited
 *   (`room.open` / `room.close`).
 */
export function createSettingsRoutes(deps: SettingsRouteDeps): (request: HttpRequest) => Promise<HttpResponse | null> {
  const actorOf = (caller: { sub: string; role: Role }, request: HttpRequest) => ({ sub: caller.sub, role: caller.role, from: request.remoteAddress });

  return async (request) => {
    const settingsMatch = SETTINGS_PATH.exec(request.path);
    if (settingsMatch) {
      const clinic = settingsMatch[1]!;
      if (request.method === 'GET') {
        const caller = await clinicCaller(deps.authenticator, request, clinic, READ_ROLES, 'only admins and staff read the settings');
        if (!('role' in caller)) return caller;
        const record = deps.settings.current(clinic);
        return record ? json(200, record) : errorResponse('CLINIC_NOT_FOUND', clinic);
      }
      if (request.method !== 'PUT') return json(405, { error: protocolError('METHOD_NOT_ALLOWED', 'use GET or PUT') }, { allow: 'GET, PUT' });
      const caller = await clinicCaller(deps.authenticator, request, clinic, ['admin'], 'only admins change the settings');
      if (!('role' in caller)) return caller;
      if (!deps.settings.current(clinic)) return errorResponse('CLINIC_NOT_FOUND', clinic);
      const body = readJsonBody(request, SettingsUpdateRequest);
      if (isResponse(body)) return body;
      if (body.settings.id !== clinic) return errorResponse('INVALID_PAYLOAD', `settings.id: must be "${clinic}" (a clinic's id does not change)`);
      const result = await deps.settings.update(clinic, body.settings, actorOf(caller, request), body.ifVersion);
      return result.ok ? json(200, { ...result.record, changed: result.changed }) : errorResponse(result.error.code, result.error.detail);
    }

    const roomMatch = ROOM_PATH.exec(request.path);
    if (roomMatch) {
      const [, clinic, room] = roomMatch as unknown as [string, string, string];
      if (request.method !== 'PUT') return json(405, { error: protocolError('METHOD_NOT_ALLOWED', 'use PUT') }, { allow: 'PUT' });
      const caller = await clinicCaller(deps.authenticator, request, clinic, ROOM_ROLES, 'only admins and staff open or close rooms');
      if (!('role' in caller)) return caller;
      if (!deps.settings.current(clinic)) return errorResponse('CLINIC_NOT_FOUND', clinic);
      const body = readJsonBody(request, RoomStateRequest, 'give { "open": true } or { "open": false }');
      if (isResponse(body)) return body;
      const result = await deps.settings.setRoomOpen(clinic, room, body.open, actorOf(caller, request));
      return result.ok ? json(200, result.result) : errorResponse(result.error.code, result.error.detail);
    }
    return null;
  };
}
