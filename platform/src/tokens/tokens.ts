import { TokenClaims, type ErrorCode } from '@clinic-hub/protocol';
import { Hs256Key } from './jwt.js';

export interface VerifiedToken extends TokenClaims {
  /** Expiry, seconds since the epoch. */
  exp: number;
}

export class TokenError extends Error {
  constructor(readonly code: Extract<ErrorCode, 'AUTH_REQUIRED' | 'AUTH_INVALID' | 'AUTH_EXPIRED'>) {
    super(code);
  }
}

/**
 * Short-lived HS256 JWTs (RFC 7519) carrying role, clinic and, for patients,
 * a ticket. Signed and verified synchronously with node:crypto: a check-in
 * issues a patient token and every connect verifies one, and WebCrypto's
 * asynchronous steps made both wait behind the fan-out under load.
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
    return { ...claims.data, exp: payload.exp };
  }
}

/** The hub's tokens, issued (only the hub does: exported by `@clinic-hub/platform/token-issuer`) and verified. */
export class TokenIssuer extends TokenVerifier {
  async issue(claims: TokenClaims, ttlSeconds: number): Promise<{ token: string; expiresAt: number }> {
    return this.issueSync(claims, ttlSeconds);
  }

  issueSync(claims: TokenClaims, ttlSeconds: number): { token: string; expiresAt: number } {
    const valid = TokenClaims.parse(claims);
    if (valid.clinic === '*' && valid.role !== 'admin' && valid.role !== 'service') {
      throw new Error('clinic "*" is only for admin and service tokens');
    }
    return this.key.sign(
      { role: valid.role, clinic: valid.clinic, ...(valid.ticket ? { ticket: valid.ticket } : {}), ...(valid.name ? { name: valid.name } : {}), sub: valid.sub },
      ttlSeconds,
    );
  }
}
