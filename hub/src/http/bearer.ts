import type { Role } from '@clinic-hub/protocol';
import { TokenError, type TokenVerifier, type VerifiedToken } from '@clinic-hub/platform/tokens';
import type { HttpRequest, HttpResponse } from './http-types.js';
import { errorResponse } from './routes.js';

/** The caller of an API request by its `Authorization: Bearer` token, or the answer that refuses it. */
export function bearerCaller(tokens: TokenVerifier, request: HttpRequest): VerifiedToken | HttpResponse {
  const header = request.headers.authorization ?? '';
  try {
    return tokens.verifySync(header.startsWith('Bearer ') ? header.slice(7) : '');
  } catch (error) {
    return errorResponse(error instanceof TokenError ? error.code : 'AUTH_INVALID');
  }
}

/** A caller of one of these roles acting for `clinic` (an all-clinics token acts for any), or the answer that refuses it. */
export function clinicCaller(tokens: TokenVerifier, request: HttpRequest, clinic: string, roles: readonly Role[], refusal: string): VerifiedToken | HttpResponse {
  const caller = bearerCaller(tokens, request);
  if (!('role' in caller)) return caller;
  if (!roles.includes(caller.role)) return errorResponse('AUTH_FORBIDDEN', refusal);
  if (caller.clinic !== '*' && caller.clinic !== clinic) return errorResponse('AUTH_WRONG_CLINIC');
  return caller;
}
