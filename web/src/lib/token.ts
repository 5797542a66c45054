import type { Role } from '@clinic-hub/protocol';

/** What the pages read from a hub token. The signature is checked by the hub, never here. */
export interface TokenInfo {
  /** Who: the token's subject (a chat member id). */
  sub: string | null;
  role: Role | null;
  clinic: string | null;
  ticket: string | null;
  /** A staff member's or doctor's name, when their token carries one. */
  name: string | null;
  /** Seconds since the epoch, as in the JWT. */
  issuedAt: number | null;
  expiresAt: number | null;
}

/** The token travels in the fragment (`#token=…`): browsers never send the fragment to a server or in a Referer. */
export function tokenFromFragment(): string | null {
  const token = new URLSearchParams(location.hash.slice(1)).get('token');
  return token && token.length > 0 ? token : null;
}

/**
 * Puts a refreshed token in the address, so a reload of a kiosk page keeps
 * working. `key` is the fragment parameter that holds it (the consultation
 * page keeps its hub token in `hub`, its room token in `token`).
 */
export function storeTokenInFragment(token: string, key = 'token'): void {
  const params = new URLSearchParams(location.hash.slice(1));
  params.set(key, token);
  history.replaceState(history.state, '', `${location.pathname}${location.search}#${params.toString()}`);
}

function base64UrlDecode(text: string): string {
  const base64 = text.replaceAll('-', '+').replaceAll('_', '/').padEnd(Math.ceil(text.length / 4) * 4, '=');
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

/** A JWT's claims as they are: unverified (the servers check signatures), for what a page needs to know about its own tokens. */
export function tokenClaims(token: string): Record<string, unknown> | null {
  const payload = token.split('.')[1];
  if (!payload) return null;
  try {
    const claims: unknown = JSON.parse(base64UrlDecode(payload));
    return claims !== null && typeof claims === 'object' ? (claims as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

export function decodeToken(token: string): TokenInfo | null {
  const claims = tokenClaims(token);
  if (!claims) return null;
  const text = (value: unknown) => (typeof value === 'string' ? value : null);
  const seconds = (value: unknown) => (typeof value === 'number' ? value : null);
  return {
    sub: text(claims.sub),
    role: text(claims.role) as Role | null,
    clinic: text(claims.clinic),
    ticket: text(claims.ticket),
    name: text(claims.name),
    issuedAt: seconds(claims.iat),
    expiresAt: seconds(claims.exp),
  };
}
