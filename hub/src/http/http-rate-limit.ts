import type { TokenIssuer } from '@clinic-hub/platform/token-issuer';
import { EventRateLimiter, type RateLimit } from '../socket/rate-limiter.js';
import type { HttpRequest, HttpResponse } from './http-types.js';
import { errorResponse } from './routes.js';

/**
 * Rate limits on the API (`/api/…`), as on socket events: a request with a
 * user's token takes a token from that user's bucket, the one their sockets'
 * events take from (HUB_RATE_LIMIT_USER_*); any other request (no token, a
 * bad one, a display's or a kiosk's, often shared by many devices) from its
 * client address's bucket (HUB_RATE_LIMIT_ADDRESS_*). Past a limit: 429
 * RATE_LIMITED with Retry-After. Health checks, metrics and the web pages are
 * not limited.
 */
export function apiRateLimit(options: { users: EventRateLimiter; address: RateLimit; tokens: TokenIssuer }): (request: HttpRequest) => HttpResponse | null {
  const addresses = new EventRateLimiter({ socket: { perSecond: 0, burst: 1 }, user: options.address });
  return (request) => {
    if (!request.path.startsWith('/api/')) return null;
    const user = userOf(options.tokens, request.headers.authorization);
    const decision = user ? options.users.takeFor(user) : addresses.takeFor(`address:${request.remoteAddress}`);
    if (decision.ok) return null;
    const response = errorResponse('RATE_LIMITED', `${user ? 'user' : 'address'} limit; retry in ${decision.retryAfterMs} ms`);
    return { ...response, headers: { ...response.headers, 'retry-after': String(Math.max(1, Math.ceil(decision.retryAfterMs / 1000))) } };
  };
}

/** `<clinic>/<sub>` of a valid token of a person or service (the key of their socket events' bucket), else null. */
function userOf(tokens: TokenIssuer, authorization: string | undefined): string | null {
  if (!authorization?.startsWith('Bearer ')) return null;
  try {
    const token = tokens.verifySync(authorization.slice(7));
    return token.role === 'display' || token.role === 'kiosk' ? null : `${token.clinic}/${token.sub}`;
  } catch {
    return null;
  }
}
