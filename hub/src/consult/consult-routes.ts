import type { RedisClient } from '@clinic-hub/platform/redis';
import { protocolError, type Role } from '@clinic-hub/protocol';
import type { Authenticator } from '../auth/authenticator.js';
import type { ClinicRegistry } from '../clinics/clinic-registry.js';
import type { HttpRequest, HttpResponse } from '../http/http-types.js';
import { errorResponse, json } from '../http/routes.js';
import type { ConsultService } from './consult-service.js';
import { listMediaNodes } from './media-nodes.js';

const ROUTE = /^\/api\/clinics\/([A-Za-z0-9_-]{1,32})\/consultations$/;
/** Who may list consultations: operations and clinicians (ids and times only, never a name). */
const LIST_ROLES: readonly Role[] = ['admin', 'staff', 'doctor', 'service'];
const DEFAULT_RECENT = 20;
const MAX_RECENT = 200;

export interface ConsultRouteDeps {
  redis: RedisClient;
  authenticator: Authenticator;
  clinics: ClinicRegistry;
  consult: ConsultService;
}

/**
 * `GET /api/clinics/:clinic/consultations?count=N` → `{ clinic, checkedAt,
 * consultations, mediaNodes }`: the open consultations and the latest N
 * (default 20, at most 200), newest first, and the live media-server nodes.
 */
export function createConsultRoutes(deps: ConsultRouteDeps): (request: HttpRequest) => Promise<HttpResponse | null> {
  return async (request) => {
    const match = ROUTE.exec(request.path);
    if (!match) return null;
    if (request.method !== 'GET') return json(405, { error: protocolError('METHOD_NOT_ALLOWED', 'use GET') }, { allow: 'GET' });
    const clinic = match[1]!;
    const checked = await deps.authenticator.bearer(request);
    if (!checked.ok) return errorResponse(checked.error.code, checked.error.detail);
    const caller = checked.token;
    if (caller.clinic !== '*' && caller.clinic !== clinic) return errorResponse('AUTH_WRONG_CLINIC');
    if (!LIST_ROLES.includes(caller.role)) return errorResponse('AUTH_FORBIDDEN', `${caller.role} tokens cannot list consultations`);
    if (!deps.clinics.get(clinic)) return errorResponse('CLINIC_NOT_FOUND', clinic);
    const count = Number(request.query.get('count') ?? DEFAULT_RECENT);
    if (!Number.isInteger(count) || count < 1 || count > MAX_RECENT) return errorResponse('INVALID_PAYLOAD', `count: a whole number from 1 to ${MAX_RECENT}`);
    const [consultations, mediaNodes] = await Promise.all([deps.consult.list(clinic, count), listMediaNodes(deps.redis)]);
    return json(200, { clinic, checkedAt: Date.now(), consultations, mediaNodes });
  };
}
