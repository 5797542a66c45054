import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';
import { TokenClaims, type ErrorCode } from '@clinic-hub/protocol';

const ISSUER = 'clinic-hub';
const ALG = 'HS256';

export interface VerifiedToken extends TokenClaims {
  /** Expiry, seconds since the epoch. */
  exp: number;
}

export class TokenError extends Error {
  constructor(readonly code: Extract<ErrorCode, 'AUTH_REQUIRED' | 'AUTH_INVALID' | 'AUTH_EXPIRED'>) {
    super(code);
  }
}

/** Short-lived HS256 tokens carrying role, clinic and (for patients) a ticket. */
export class TokenIssuer {
  private readonly key: Uint8Array;

  constructor(secret: string) {
    this.key = new TextEncoder().encode(secret);
  }

  async issue(claims: TokenClaims, ttlSeconds: number): Promise<{ token: string; expiresAt: number }> {
    const valid = TokenClaims.parse(claims);
    if (valid.clinic === '*' && valid.role !== 'admin' && valid.role !== 'service') {
      throw new Error('clinic "*" is only for admin and service tokens');
    }
    const expiresAt = Math.floor(Date.now() / 1000) + ttlSeconds;
    const jwt = new SignJWT({ role: valid.role, clinic: valid.clinic, ...(valid.ticket ? { ticket: valid.ticket } : {}) })
      .setProtectedHeader({ alg: ALG })
      .setIssuer(ISSUER)
      .setSubject(valid.sub)
      .setIssuedAt()
      .setExpirationTime(expiresAt);
    return { token: await jwt.sign(this.key), expiresAt: expiresAt * 1000 };
  }

  async verify(token: unknown): Promise<VerifiedToken> {
    if (typeof token !== 'string' || token.length === 0) throw new TokenError('AUTH_REQUIRED');
    if (token.length > 4096) throw new TokenError('AUTH_INVALID');
    try {
      const { payload } = await jwtVerify(token, this.key, { issuer: ISSUER, algorithms: [ALG] });
      const claims = TokenClaims.safeParse(payload);
      if (!claims.success || typeof payload.exp !== 'number') throw new TokenError('AUTH_INVALID');
      if (claims.data.clinic === '*' && claims.data.role !== 'admin' && claims.data.role !== 'service') {
        throw new TokenError('AUTH_INVALID');
      }
      return { ...claims.data, exp: payload.exp };
    } catch (error) {
      if (error instanceof TokenError) throw error;
      if (error instanceof joseErrors.JWTExpired) throw new TokenError('AUTH_EXPIRED');
      throw new TokenError('AUTH_INVALID');
    }
  }
}
