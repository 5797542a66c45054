import { z } from 'zod';
import type { Role } from './roles.js';

/**
 * Token revocation (`POST /api/tokens/revoke`, `clinic token revoke`): by
 * token id, by user, or every token of a clinic. docs/protocol.md, "Tokens".
 */

/** A token's id (`jti`) or session id (`sid`), as `POST /api/tokens` and `clinic token issue` print it. */
export const TokenId = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, '8–64 of A-Z a-z 0-9 _ -');
const ClinicOrAll = z.string().regex(/^(\*|[A-Za-z0-9_-]{1,32})$/, 'a clinic id, or * for all-clinics tokens');
const Reason = z.string().min(1).max(200).optional();

export const RevokeRequest = z.union([
  /** That token and every token refreshed from it (the id printed when it was issued is its session's id). */
  z.strictObject({ tokenId: TokenId, reason: Reason }),
  /** The token itself, when that is what you have (a leaked one): its session. */
  z.strictObject({ token: z.string().min(1).max(4096), reason: Reason }),
  /** Every token of this user (`sub`) of this clinic issued until now. */
  z.strictObject({ clinic: ClinicOrAll, sub: z.string().min(1).max(128), reason: Reason }),
  /** Every token of the clinic issued until now. */
  z.strictObject({ clinic: ClinicOrAll, all: z.literal(true), reason: Reason }),
]);
export type RevokeRequest = z.infer<typeof RevokeRequest>;

interface RevocationBase {
  /** When it was revoked (ms since the epoch). User and clinic revocations cover tokens issued before the second after this. */
  at: number;
  /** After this (ms) no token it covers can still be valid: the entry is forgotten. */
  until: number;
  /** Who revoked (the admin token's `sub`). */
  by: string;
  reason?: string;
}

export type Revocation =
  /** `clinic`: the revoked token's clinic when it was given, else the revoking admin's ("*" for all-clinics admins). */
  | (RevocationBase & { kind: 'token'; id: string; clinic: string })
  | (RevocationBase & { kind: 'user'; clinic: string; sub: string })
  | (RevocationBase & { kind: 'clinic'; clinic: string });

/** `POST /api/tokens/revoke` → 200. */
export interface RevokeResult {
  revocation: Revocation;
}

/** `GET /api/tokens/revocations` → 200: the revocations in force, newest first (a clinic admin sees their clinic's). */
export interface RevocationsResult {
  revocations: Revocation[];
}

/**
 * `GET /api/clinics/:id/sessions` (admin): a session (a token and every token
 * refreshed from it) with at least one socket connected now, on any hub node.
 * Ids and roles, never a name. Revoke one with `POST /api/tokens/revoke { tokenId: id }`.
 */
export interface ActiveSession {
  /** The session id (`sid`, else the token id): what `POST /api/tokens/revoke { tokenId }` takes. Null for a token with neither (made by another issuer). */
  id: string | null;
  sub: string;
  role: Role;
  /** The token's clinic claim: the clinic's id, or "*" for an all-clinics token acting for it. */
  tokenClinic: string;
  /** A patient's ticket id; null for other roles. */
  ticket: string | null;
  /** When the session began (its first token), ms since the epoch. */
  startedAt: number;
  /** When its sockets must go (the token's expiry, or earlier for a patient whose ticket ended), the latest of them, ms. */
  endsAt: number;
  /** Namespaces its sockets are on (`/queue`, `/chat`, `/consult`, `/notify`). */
  namespaces: string[];
  sockets: number;
  /** Client addresses of its sockets. */
  addresses: string[];
}

export interface ActiveSessions {
  clinic: string;
  checkedAt: number;
  /** Newest first. */
  sessions: ActiveSession[];
}
