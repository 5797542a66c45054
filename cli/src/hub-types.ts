/** The answer of `POST /api/tokens` (the shapes of the ops answers are in protocol/src/ops.ts). */
export interface IssuedToken {
  token: string;
  expiresAt: number;
  role: string;
  clinic: string;
  sub: string;
}
