import { fail, type Ack, type ProtocolError } from '@clinic-hub/protocol';
import type { ClinicRegistry } from '../clinics/clinic-registry.js';
import type { HttpRequest } from '../http/http-types.js';
import type { RevocationList } from './revocation-list.js';
import { TokenError, type TokenVerifier, type VerifiedToken } from '@clinic-hub/platform/tokens';

/** A token that passed every check, and until when it may be used (ms): its expiry, or earlier for a patient whose ticket ended. */
export interface Authenticated {
  token: VerifiedToken;
  endsAt: number;
}

export type AuthResult = Ack<Authenticated>;

export interface AuthenticatorOptions {
  tokens: TokenVerifier;
  clinics: ClinicRegistry;
  revocations: RevocationList;
  /**
   * Until when a patient may use a token for this ticket (ms; past or 0: no
   * longer), or null while the ticket is active. The queue domain's rule
   * (QueueService.patientAccessUntil).
   */
  patientAccessUntil(clinic: string, ticketId: string): Promise<number | null>;
}

/**
 * Everything a hub token is checked for, in one place, for sockets (at
 * connect) and HTTP requests alike: signature and expiry, revocation (by
 * token, user or clinic), and for patients their ticket (a patient's token
 * ends with their ticket, plus the clinic's grace period).
 */
export class Authenticator {
  constructor(private readonly options: AuthenticatorOptions) {}

  get revocations(): RevocationList {
    return this.options.revocations;
  }

  async check(raw: unknown): Promise<AuthResult> {
    let token: VerifiedToken;
    try {
      token = this.options.tokens.verifySync(raw);
    } catch (error) {
      return fail(error instanceof TokenError ? error.code : 'AUTH_INVALID');
    }
    if (this.options.revocations.covering(token)) return fail('AUTH_REVOKED');
    let endsAt = token.exp * 1000;
    if (token.role === 'patient') {
      if (!token.ticket) return fail('AUTH_INVALID', 'patient token without ticket');
      if (!this.options.clinics.get(token.clinic)) return fail('CLINIC_NOT_FOUND', token.clinic.slice(0, 64));
      const until = await this.options.patientAccessUntil(token.clinic, token.ticket);
      if (until !== null) {
        if (until <= Date.now()) return fail('AUTH_EXPIRED', 'the ticket has ended');
        endsAt = Math.min(endsAt, until);
      }
    }
    return { ok: true, token, endsAt };
  }

  /**
   * `check`, then the clinic the caller acts for: their token's, or for an
   * all-clinics token the one they name. Naming another clinic than the
   * token's is AUTH_WRONG_CLINIC; a clinic this hub does not serve is
   * CLINIC_NOT_FOUND.
   */
  async checkFor(raw: unknown, named: unknown): Promise<({ ok: true; clinic: string } & Authenticated) | { ok: false; error: ProtocolError }> {
    const checked = await this.check(raw);
    if (!checked.ok) return checked;
    const { token } = checked;
    if (token.clinic !== '*' && named !== undefined && named !== null && named !== token.clinic) return fail('AUTH_WRONG_CLINIC');
    const clinic = token.clinic === '*' ? named : token.clinic;
    if (typeof clinic !== 'string' || !this.options.clinics.get(clinic)) {
      return fail('CLINIC_NOT_FOUND', typeof clinic === 'string' ? clinic.slice(0, 64) : undefined);
    }
    return { ...checked, clinic };
  }

  /**
   * What can be checked at once, without Redis: the signature, the expiry
   * and revocations. For refusing a request before reading its body; `check`
   * still runs on what passes.
   */
  refusesAtOnce(raw: unknown): ProtocolError | null {
    let token: VerifiedToken;
    try {
      token = this.options.tokens.verifySync(raw);
    } catch (error) {
      return fail(error instanceof TokenError ? error.code : 'AUTH_INVALID').error;
    }
    return this.options.revocations.covering(token) ? fail('AUTH_REVOKED').error : null;
  }

  /** `check` of an HTTP request's `Authorization: Bearer` token. */
  bearer(request: HttpRequest): Promise<AuthResult> {
    return this.check(bearerToken(request.headers));
  }
}

/** The token of an `Authorization: Bearer` header ('' when there is none). */
export function bearerToken(headers: Record<string, string>): string {
  const header = headers.authorization ?? '';
  return header.startsWith('Bearer ') ? header.slice(7) : '';
}
