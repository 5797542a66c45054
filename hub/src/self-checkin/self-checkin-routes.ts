import { z } from 'zod';
import { ArrivalCode, PosterId, SelfCheckinBody, protocolError, type Role } from '@clinic-hub/protocol';
import type { VerifiedToken } from '@clinic-hub/platform/tokens';
import type { Authenticator } from '../auth/authenticator.js';
import { bearerCaller, clinicCaller } from '../http/bearer.js';
import type { HttpRequest, HttpResponse } from '../http/http-types.js';
import { errorResponse, json } from '../http/routes.js';
import type { SelfCheckinCaller, SelfCheckinService } from './self-checkin-service.js';

const INFO = /^\/api\/clinics\/([A-Za-z0-9_-]{1,32})\/self-checkin$/;
const POSTERS = /^\/api\/clinics\/([A-Za-z0-9_-]{1,32})\/posters$/;
const POSTER = /^\/api\/clinics\/([A-Za-z0-9_-]{1,32})\/posters\/([^/]{1,64})$/;

const PosterBody = z.object({ label: z.string().min(1).max(100).default('') });

/** Posters, the link their QR code carries: the phone check-in page of the clinic with the poster's id. */
export function posterUrl(publicUrl: string, clinic: string, poster: string): string {
  return `${publicUrl}/checkin#clinic=${encodeURIComponent(clinic)}&poster=${poster}`;
}

/**
 * Self check-in over HTTP (docs/protocol.md, "Self check-in"):
 *
 * - `GET  /api/clinics/:clinic/self-checkin` — what the kiosk and phone pages
 *   show: departments, languages, whether phones may check in now. A kiosk,
 *   staff or admin token, or `?poster=ID`, or `?code=ARRIVAL` (then also the
 *   appointment's time and department).
 * - `POST /api/clinics/:clinic/self-checkin` — a check-in: with a kiosk token
 *   (the kiosk), or without a token with `poster` (a phone at the poster) or
 *   `appointmentCode` alone (a phone following the reminder's link).
 * - `GET|POST /api/clinics/:clinic/posters`, `DELETE …/posters/:id` — the
 *   clinic's posters (admin, staff).
 */
export function createSelfCheckinRoutes(deps: { authenticator: Authenticator; selfCheckin: SelfCheckinService; publicUrl: () => string }) {
  /** Phones come without a token: null then. */
  const bearer = async (request: HttpRequest): Promise<VerifiedToken | HttpResponse | null> => (request.headers.authorization ? bearerCaller(deps.authenticator, request) : null);
  const mayActFor = (token: VerifiedToken, clinic: string) => token.clinic === '*' || token.clinic === clinic;
  const SELF_CHECKIN_ROLES: readonly Role[] = ['kiosk', 'staff', 'admin'];

  return async (request: HttpRequest): Promise<HttpResponse | null> => {
    const info = INFO.exec(request.path);
    if (info) {
      const clinic = info[1]!;
      if (request.method !== 'GET' && request.method !== 'POST') return json(405, { error: protocolError('METHOD_NOT_ALLOWED', 'use GET or POST') }, { allow: 'GET, POST' });
      const token = await bearer(request);
      if (token && !('role' in token)) return token;
      if (token) {
        if (!SELF_CHECKIN_ROLES.includes(token.role)) return errorResponse('AUTH_FORBIDDEN', 'kiosk, staff and admin tokens check patients in');
        if (!mayActFor(token, clinic)) return errorResponse('AUTH_WRONG_CLINIC');
      }
      return request.method === 'GET' ? getInfo(request, clinic, token) : postCheckin(request, clinic, token);
    }
    const posters = POSTERS.exec(request.path) ?? POSTER.exec(request.path);
    if (posters) return postersRoute(request, posters[1]!, posters[2] ? decodeURIComponent(posters[2]) : null);
    return null;
  };

  async function getInfo(request: HttpRequest, clinic: string, token: VerifiedToken | null): Promise<HttpResponse> {
    const result = deps.selfCheckin.info(clinic);
    if (!result.ok) return errorResponse(result.error.code, result.error.detail);
    if (token) return json(200, result.info);
    const poster = request.query.get('poster');
    const code = request.query.get('code');
    if (poster !== null) {
      if (!PosterId.safeParse(poster).success) return errorResponse('INVALID_PAYLOAD', 'poster: a poster id');
      const refusal = await deps.selfCheckin.mobileRefusal(clinic, poster);
      // The page shows a closed clinic's hours; only a withdrawn poster or mobile check-in off is refused outright.
      if (refusal && refusal.code !== 'CHECKIN_CLOSED') return errorResponse(refusal.code, refusal.detail);
      return json(200, result.info);
    }
    if (code !== null) {
      if (!ArrivalCode.safeParse(code).success) return errorResponse('INVALID_PAYLOAD', 'code: ten digits');
      const appointment = await deps.selfCheckin.appointmentOf(clinic, code, `address:${request.remoteAddress}`);
      if (!appointment.ok) return errorResponse(appointment.error.code, appointment.error.detail);
      return json(200, { ...result.info, appointment: appointment.appointment });
    }
    return errorResponse('AUTH_REQUIRED', 'a kiosk token, a poster id or an arrival code');
  }

  async function postCheckin(request: HttpRequest, clinic: string, token: VerifiedToken | null): Promise<HttpResponse> {
    let body: unknown;
    try {
      body = JSON.parse(request.body.toString('utf8'));
    } catch {
      return errorResponse('INVALID_PAYLOAD', 'body is not JSON');
    }
    const parsed = SelfCheckinBody.safeParse(body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return errorResponse('INVALID_PAYLOAD', issue ? `${issue.path.join('.') || '(body)'}: ${issue.message}` : undefined);
    }
    let caller: SelfCheckinCaller;
    if (token) caller = { via: token.role === 'kiosk' ? 'kiosk' : 'reception', actor: token.sub, role: token.role, address: request.remoteAddress };
    else if (parsed.data.poster) caller = { via: 'mobile', actor: `poster:${parsed.data.poster}`, role: 'patient', address: request.remoteAddress };
    else if (parsed.data.appointmentCode) caller = { via: 'arrival', actor: 'arrival', role: 'patient', address: request.remoteAddress };
    else return errorResponse('AUTH_REQUIRED', 'a kiosk token, a poster id or an arrival code');
    const result = await deps.selfCheckin.checkin(clinic, parsed.data, caller);
    if (!result.ok) return errorResponse(result.error.code, result.error.detail);
    const { ok: _ok, ...reply } = result;
    return json(reply.replayed ? 200 : 201, reply);
  }

  async function postersRoute(request: HttpRequest, clinic: string, posterId: string | null): Promise<HttpResponse> {
    const allowed = posterId ? ['DELETE'] : ['GET', 'POST'];
    if (!allowed.includes(request.method)) return json(405, { error: protocolError('METHOD_NOT_ALLOWED', `use ${allowed.join(' or ')}`) }, { allow: allowed.join(', ') });
    const token = await clinicCaller(deps.authenticator, request, clinic, ['admin', 'staff'], 'only admins and staff manage posters');
    if (!('role' in token)) return token;
    const info = deps.selfCheckin.info(clinic);
    if (!info.ok) return errorResponse(info.error.code, info.error.detail);
    const withUrl = <P extends { id: string }>(poster: P) => ({ ...poster, url: posterUrl(deps.publicUrl(), clinic, poster.id) });
    if (posterId) {
      const removed = await deps.selfCheckin.posters.withdraw(clinic, posterId);
      return removed ? json(200, { ok: true, id: posterId }) : errorResponse('NOT_FOUND', `no poster ${posterId}`);
    }
    if (request.method === 'GET') return json(200, { mobile: info.info.mobile, posters: (await deps.selfCheckin.posters.list(clinic)).map(withUrl) });
    let body: unknown = {};
    if (request.body.length > 0) {
      try {
        body = JSON.parse(request.body.toString('utf8'));
      } catch {
        return errorResponse('INVALID_PAYLOAD', 'body is not JSON');
      }
    }
    const parsed = PosterBody.safeParse(body);
    if (!parsed.success) return errorResponse('INVALID_PAYLOAD', 'label: 1–100 characters');
    const poster = await deps.selfCheckin.posters.create(clinic, parsed.data.label, token.sub);
    return json(201, { poster: withUrl(poster), mobile: info.info.mobile });
  }
}
