import type { Role } from '@clinic-hub/protocol';
import type { VerifiedToken } from '@clinic-hub/platform/tokens';
import type { Authenticator } from '../auth/authenticator.js';
import type { HttpRequest, HttpResponse } from './http-types.js';
import { errorResponse } from './routes.js';

/** The caller of an API request by its `Authorization: Bearer` token (every check of the Authenticator), or the answer that refuses it. */
export async function bearerCaller(authenticator: Authenticator, request: HttpRequest): Promise<VerifiedToken | HttpResponse> {
  const checked = await authenticator.bearer(request);
  return checked.ok ? checked.token : errorResponse(checked.error.code, checked.error.detail);
}

/** A caller of one of these roles acting for `clinic` (an all-clinics token acts for any), or the answer that refuses it. */
export async function clinicCaller(authenticator: Authenticator, request: HttpRequest, clinic: string, roles: readonly Role[], refusal: string): Promise<VerifiedToken | HttpResponse> {
  const caller = await bearerCaller(authenticator, request);
  if (!('role' in caller)) return caller;
  if (!roles.includes(caller.role)) return errorResponse('AUTH_FORBIDDEN', refusal);
  if (caller.clinic !== '*' && caller.clinic !== clinic) return errorResponse('AUTH_WRONG_CLINIC');
  return caller;
}
