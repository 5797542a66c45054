import type { Namespace } from 'socket.io';
import { protocolError, type ActiveSession, type ActiveSessions } from '@clinic-hub/protocol';
import type { ClinicRegistry } from '../clinics/clinic-registry.js';
import { clinicCaller } from '../http/bearer.js';
import type { HttpRequest, HttpResponse } from '../http/http-types.js';
import { errorResponse, json } from '../http/routes.js';
import type { Authenticator } from './authenticator.js';
import type { SocketIdentity } from './socket-auth.js';

const PATH = /^\/api\/clinics\/([A-Za-z0-9_-]{1,32})\/sessions$/;

export interface SessionRouteDeps {
  authenticator: Authenticator;
  clinics: ClinicRegistry;
  /** Every namespace with authenticated sockets. */
  namespaces: Namespace[];
}

/**
 * `GET /api/clinics/:clinic/sessions` (admin): the clinic's sessions with
 * sockets connected now, on every hub node (Socket.IO's fetchSockets through
 * the Redis adapter: each node answers for its own sockets). A node that
 * does not answer in time makes the request fail (STORE_UNAVAILABLE) rather
 * than show a partial list as the whole.
 */
export function createSessionRoutes(deps: SessionRouteDeps): (request: HttpRequest) => Promise<HttpResponse | null> {
  return async (request) => {
    const match = PATH.exec(request.path);
    if (!match) return null;
    const clinic = match[1]!;
    if (request.method !== 'GET') return json(405, { error: protocolError('METHOD_NOT_ALLOWED', 'use GET') }, { allow: 'GET' });
    const caller = await clinicCaller(deps.authenticator, request, clinic, ['admin'], 'only admins see who is connected');
    if (!('role' in caller)) return caller;
    if (!deps.clinics.get(clinic)) return errorResponse('CLINIC_NOT_FOUND', clinic);
    let found: { nsp: string; identity: SocketIdentity }[];
    try {
      const perNamespace = await Promise.all(
        deps.namespaces.map(async (nsp) => (await nsp.fetchSockets()).map((socket) => ({ nsp: nsp.name, identity: socket.data.identity as SocketIdentity | undefined }))),
      );
      found = perNamespace.flat().filter((s): s is { nsp: string; identity: SocketIdentity } => s.identity?.clinic === clinic);
    } catch (error) {
      return errorResponse('STORE_UNAVAILABLE', `a hub node did not answer: ${(error as Error).message}`);
    }
    const sessions = new Map<string, ActiveSession>();
    for (const { nsp, identity } of found) {
      const id = identity.sid ?? identity.jti ?? null;
      const key = id ?? `${identity.sub} ${identity.authTime}`;
      const session = sessions.get(key) ?? {
        id,
        sub: identity.sub,
        role: identity.role,
        tokenClinic: identity.tokenClinic,
        ticket: identity.role === 'patient' ? (identity.ticket ?? null) : null,
        startedAt: identity.authTime * 1000,
        endsAt: 0,
        namespaces: [],
        sockets: 0,
        addresses: [],
      };
      session.sockets++;
      session.endsAt = Math.max(session.endsAt, identity.endsAt);
      if (!session.namespaces.includes(nsp)) session.namespaces.push(nsp);
      if (!session.addresses.includes(identity.address)) session.addresses.push(identity.address);
      sessions.set(key, session);
    }
    const body: ActiveSessions = { clinic, checkedAt: Date.now(), sessions: [...sessions.values()].sort((a, b) => b.startedAt - a.startedAt) };
    return json(200, body);
  };
}
