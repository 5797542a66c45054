import { SignJWT } from 'jose';
import { TEST_SECRET } from './hub-node.js';

/** Tokens a hub must refuse (or, for `signed`, accept): made by hand, not by the hub's TokenIssuer. */

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

export interface RawClaims {
  sub?: string;
  role?: string;
  clinic?: string;
  ticket?: string;
  exp?: number;
  iss?: string;
}

const defaults = (claims: RawClaims) => ({ sub: 'forger', iss: 'clinic-hub', iat: now(), exp: now() + 3600, ...claims });

/** A JWT with these claims, signed with `secret` (the hub's own by default) and `alg`. */
export async function signed(claims: RawClaims, options: { secret?: string; alg?: 'HS256' | 'HS384' | 'HS512' } = {}): Promise<string> {
  const key = new TextEncoder().encode(options.secret ?? TEST_SECRET);
  return new SignJWT(defaults(claims)).setProtectedHeader({ alg: options.alg ?? 'HS256' }).sign(key);
}

/** The classic: `alg: none` and no signature. */
export function unsigned(claims: RawClaims): string {
  return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(defaults(claims))}.`;
}

/** A genuine token whose payload was edited after signing (the signature is the original one). */
export function tampered(token: string, change: RawClaims): string {
  const [header, payload, signature] = token.split('.') as [string, string, string];
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
  return `${header}.${b64({ ...claims, ...change })}.${signature}`;
}
