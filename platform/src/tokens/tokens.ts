import { randomBytes } from 'node:crypto';
import { TokenClaims, TokenId, type ErrorCode } from '@clinic-hub/protocol';
import { Hs256Key } from './jwt.js';

export interface VerifiedToken extends TokenClaims {
  /** Expiry, seconds since the epoch. */
  exp: number;
  /** Issued at, seconds since the epoch. */
  iat: number;
  /** This token's id (`jti`); tokens made by other issuers may have none. */
  jti?: string;
  /**
   * Its session's id (`sid`): the id of the first token, kept by every token
   * refreshed from it. Revoking a token id revokes every token whose id or
   * session id it is.
   */
  sid?: string;
  /** When the session began (`auth_time`, seconds): the first token's issue time, kept through refreshes. */
  authTime: number;
}

/** What a refreshed token carries over from the one it replaces. */
export interface SessionOf {
  /** Absent for a token that had none (made elsewhere): the new token starts a session id, keeping the start. */
  sid?: string | undefined;
  authTime: number;
}

export interface IssuedToken {
  token: string;
  /** Expiry, ms since the epoch. */
  expiresAt: number;
  /** The token's id, for revocation (`POST /api/tokens/revoke { tokenId }`). */
  id: string;
}

export class TokenError extends Error {
  constructor(readonly code: Extract<ErrorCode, 'AUTH_REQUIRED' | 'AUTH_INVALID' | 'AUTH_EXPIRED'>) {
    super(code);
  }
}

/**
 * Short-lived HS256 JWTs (RFC 7519) carrying role, clinic and, for patients,
 * a ticket, with a token id (`jti`), a session id (`sid`) and the session's
 * start (`auth_time`) for revocation and the session's maximum age. Signed
 * and verified synchronously with node:crypto: a check-in issues a patient
 * token and every connect verifies one, and WebCrypto's asynchronous steps
 * made both wait behind the fan-out under load.
 *
 * The verifier holds the same secret as the issuer (HS256) but offers no way
 * to sign: only the hub issues tokens (token-issuer.ts).
 */
export class TokenVerifier {
  protected readonly key: Hs256Key;

  constructor(secret: string) {
    this.key = new Hs256Key(secret);
  }

  async verify(token: unknown): Promise<VerifiedToken> {
    return this.verifySync(token);
  }

  verifySync(token: unknown): VerifiedToken {
    const verified = this.key.verify(token);
    if (!verified.ok) throw new TokenError(verified.code);
    const { payload } = verified;
    // Room tokens (room-tokens.ts) carry an audience; a hub token never does.
    if ('aud' in payload) throw new TokenError('AUTH_INVALID');
    const claims = TokenClaims.safeParse(payload);
    if (!claims.success) throw new TokenError('AUTH_INVALID');
    if (claims.data.clinic === '*' && claims.data.role !== 'admin' && claims.data.role !== 'service') {
      throw new TokenError('AUTH_INVALID');
    }
    const iat = typeof payload.iat === 'number' ? payload.iat : Math.floor(Date.now() / 1000);
    const jti = TokenId.safeParse(payload.jti).data;
    const sid = TokenId.safeParse(payload.sid).data ?? jti;
    const authTime = typeof payload.auth_time === 'number' && payload.auth_time <= iat ? payload.auth_time : iat;
    return { ...claims.data, exp: payload.exp, iat, ...(jti ? { jti } : {}), ...(sid ? { sid } : {}), authTime };
  }
}

/** The hub's tokens, issued (only the hub does: exported by `@clinic-hub/platform/token-issuer`) and verified. */
export class TokenIssuer extends TokenVerifier {
  async issue(claims: TokenClaims, ttlSeconds: number, session?: SessionOf): Promise<IssuedToken> {
    return this.issueSync(claims, ttlSeconds, session);
  }

  /** A new token; `session` when it refreshes one (same session id and start), else a new session. */
  issueSync(claims: TokenClaims, ttlSeconds: number, session?: SessionOf): IssuedToken {
    const valid = TokenClaims.parse(claims);
    if (valid.clinic === '*' && valid.role !== 'admin' && valid.role !== 'service') {
      throw new Error('clinic "*" is only for admin and service tokens');
    }
    const id = randomBytes(16).toString('base64url');
    const signed = this.key.sign(
      {
        role: valid.role,
        clinic: valid.clinic,
        ...(valid.ticket ? { ticket: valid.ticket } : {}),
        ...(valid.name ? { name: valid.name } : {}),
        sub: valid.sub,
        jti: id,
        sid: session?.sid ?? id,
        auth_time: session?.authTime ?? Math.floor(Date.now() / 1000),
      },
      ttlSeconds,
    );
    return { ...signed, id };
  }
}
