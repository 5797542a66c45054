import { protocolError } from '@clinic-hub/protocol';
import type { HttpHandler, HttpResponse } from './http-types.js';
import { originAllowed } from './origin-policy.js';

const API_PREFIX = '/api/';
const ALLOWED_METHODS = 'GET, POST, PUT, DELETE';
const ALLOWED_HEADERS = 'authorization, content-type, traceparent';

/**
 * CORS for the JSON API: a page on an origin the socket policy allows
 * (origin-policy.ts: the hub's own, HUB_PUBLIC_URL's, HUB_ALLOWED_ORIGINS)
 * may call `/api/…` with a bearer token; every other origin gets no CORS
 * headers, so browsers keep its pages from reading the answers. Preflights
 * are answered here, before any route sees them. Credentials are bearer
 * tokens, never cookies, so `allow-credentials` is never sent.
 */
export function withCors(handler: HttpHandler, policy: Parameters<typeof originAllowed>[0]): HttpHandler {
  return async (request) => {
    if (!request.path.startsWith(API_PREFIX)) return handler(request);
    const origin = request.headers.origin;
    // No Origin: not a cross-origin browser request (the CLI, curl, a same-origin GET).
    if (origin === undefined || origin === '') return handler(request);
    const allowed = originAllowed(policy, origin, request.headers.host);
    if (request.method === 'OPTIONS' && request.headers['access-control-request-method'] !== undefined) {
      if (!allowed) return refused(origin);
      return {
        status: 204,
        headers: {
          'access-control-allow-origin': origin,
          'access-control-allow-methods': ALLOWED_METHODS,
          'access-control-allow-headers': ALLOWED_HEADERS,
          'access-control-max-age': '600',
          vary: 'origin',
        },
        body: '',
      };
    }
    const response = await handler(request);
    if (!allowed) return response;
    return {
      ...response,
      headers: { ...response.headers, 'access-control-allow-origin': origin, 'access-control-expose-headers': 'content-disposition', vary: 'origin' },
    };
  };
}

function refused(origin: string): HttpResponse {
  return {
    status: 403,
    headers: { 'content-type': 'application/json; charset=utf-8', vary: 'origin' },
    body: JSON.stringify({ error: protocolError('ORIGIN_NOT_ALLOWED', `${origin} is not in HUB_ALLOWED_ORIGINS`) }),
  };
}
