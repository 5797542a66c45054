import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Compact HS256 JWTs (RFC 7519), signed and verified synchronously with
 * node:crypto. Hub tokens (tokens.ts) and media room tokens (room-tokens.ts)
 * are both made here, each with its own key and its own claims schema.
 */

export const JWT_ISSUER = 'clinic-hub';
/** The only header we issue and the only algorithm we accept. */
const HEADER = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const MAX_TOKEN_LENGTH = 4096;

export type JwtFailure = 'AUTH_REQUIRED' | 'AUTH_INVALID' | 'AUTH_EXPIRED';

export class Hs256Key {
  private readonly key: Buffer;

  constructor(secret: string) {
    this.key = Buffer.from(secret, 'utf8');
  }

  /** Signs `claims` with iss, iat and exp added. Returns the token and its expiry in milliseconds. */
  sign(claims: Record<string, unknown>, ttlSeconds: number): { token: string; expiresAt: number } {
    const now = Math.floor(Date.now() / 1000);
    const expiresAt = now + ttlSeconds;
    const payload = { ...claims, iss: JWT_ISSUER, iat: now, exp: expiresAt };
    const signingInput = `${HEADER}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
    return { token: `${signingInput}.${this.mac(signingInput).toString('base64url')}`, expiresAt: expiresAt * 1000 };
  }

  /**
   * The payload of a token signed with this key, not expired, from our
   * issuer; or the failure code. Claims are the caller's to validate.
   */
  verify(token: unknown): { ok: true; payload: Record<string, unknown> & { exp: number } } | { ok: false; code: JwtFailure } {
    if (typeof token !== 'string' || token.length === 0) return { ok: false, code: 'AUTH_REQUIRED' };
    if (token.length > MAX_TOKEN_LENGTH) return { ok: false, code: 'AUTH_INVALID' };
    const parts = token.split('.');
    if (parts.length !== 3 || !parts.every((part) => BASE64URL.test(part))) return { ok: false, code: 'AUTH_INVALID' };
    const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];

    const header = parseJson(headerPart);
    // alg must be exactly HS256: no "none", no algorithm the key was not meant for, no critical extensions.
    if (!header || header.alg !== 'HS256' || 'crit' in header) return { ok: false, code: 'AUTH_INVALID' };
    const expected = this.mac(`${headerPart}.${payloadPart}`);
    const given = Buffer.from(signaturePart, 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, code: 'AUTH_INVALID' };

    const payload = parseJson(payloadPart);
    if (!payload || payload.iss !== JWT_ISSUER || typeof payload.exp !== 'number') return { ok: false, code: 'AUTH_INVALID' };
    const now = Date.now() / 1000;
    if (typeof payload.nbf === 'number' && payload.nbf > now) return { ok: false, code: 'AUTH_INVALID' };
    if (payload.exp <= now) return { ok: false, code: 'AUTH_EXPIRED' };
    return { ok: true, payload: payload as Record<string, unknown> & { exp: number } };
  }

  private mac(input: string): Buffer {
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
