/** The answer of `POST /api/tokens` (the shapes of the ops answers are in protocol/src/ops.ts). */
export interface IssuedToken {
  token: string;
  expiresAt: number;
  /** Revokes it and every token refreshed from it: `clinic token revoke --id ID`. */
  id: string;
  role: string;
  clinic: string;
  sub: string;
}
