import { createHmac, timingSafeEqual } from 'node:crypto';
import { TokenClaims, type ErrorCode } from '@clinic-hub/protocol';

const ISSUER = 'clinic-hub';
/** The only header we issue and the only algorithm we accept. */
const HEADER = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
const BASE64URL = /^[A-Za-z0-9_-]+$/;

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
 */
export class TokenIssuer {
  private readonly key: Buffer;

  constructor(secret: string) {
    this.key = Buffer.from(secret, 'utf8');
  }

  async issue(claims: TokenClaims, ttlSeconds: number): Promise<{ token: string; expiresAt: number }> {
    return this.issueSync(claims, ttlSeconds);
  }

  issueSync(claims: TokenClaims, ttlSeconds: number): { token: string; expiresAt: number } {
    const valid = TokenClaims.parse(claims);
    if (valid.clinic === '*' && valid.role !== 'admin' && valid.role !== 'service') {
      throw new Error('clinic "*" is only for admin and service tokens');
    }
    const now = Math.floor(Date.now() / 1000);
    const expiresAt = now + ttlSeconds;
    const payload = {
      role: valid.role,
      clinic: valid.clinic,
      ...(valid.ticket ? { ticket: valid.ticket } : {}),
      iss: ISSUER,
      sub: valid.sub,
      iat: now,
      exp: expiresAt,
    };
    const signingInput = `${HEADER}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
    return { token: `${signingInput}.${this.sign(signingInput).toString('base64url')}`, expiresAt: expiresAt * 1000 };
  }

  async verify(token: unknown): Promise<VerifiedToken> {
    return this.verifySync(token);
  }

  verifySync(token: unknown): VerifiedToken {
    if (typeof token !== 'string' || token.length === 0) throw new TokenError('AUTH_REQUIRED');
    if (token.length > 4096) throw new TokenError('AUTH_INVALID');
    const parts = token.split('.');
    if (parts.length !== 3 || !parts.every((part) => BASE64URL.test(part))) throw new TokenError('AUTH_INVALID');
    const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];

    const header = parseJson(headerPart);
    // alg must be exactly HS256: no "none", no algorithm the key was not meant for, no critical extensions.
    if (!header || header.alg !== 'HS256' || 'crit' in header) throw new TokenError('AUTH_INVALID');
    const expected = this.sign(`${headerPart}.${payloadPart}`);
    const given = Buffer.from(signaturePart, 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new TokenError('AUTH_INVALID');

    const payload = parseJson(payloadPart);
    if (!payload || payload.iss !== ISSUER || typeof payload.exp !== 'number') throw new TokenError('AUTH_INVALID');
    const now = Date.now() / 1000;
    if (typeof payload.nbf === 'number' && payload.nbf > now) throw new TokenError('AUTH_INVALID');
    if (payload.exp <= now) throw new TokenError('AUTH_EXPIRED');
    const claims = TokenClaims.safeParse(payload);
    if (!claims.success) throw new TokenError('AUTH_INVALID');
    if (claims.data.clinic === '*' && claims.data.role !== 'admin' && claims.data.role !== 'service') {
      throw new TokenError('AUTH_INVALID');
    }
    return { ...claims.data, exp: payload.exp };
  }

  private sign(input: string): Buffer {
    return createHmac('sha256', this.key).update(input).digest();
  }
}

function parseJson(part: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
