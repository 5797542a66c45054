import { z } from 'zod';

export const ROLES = ['admin', 'staff', 'doctor', 'patient', 'display', 'service'] as const;
export const Role = z.enum(ROLES);
export type Role = z.infer<typeof Role>;

/** Roles that may see clinical data and act on the queue. */
export const CLINICIAN_ROLES: readonly Role[] = ['admin', 'staff', 'doctor'];

/** Claims carried by every hub token. `clinic: "*"` is only valid for admin and service. */
export const TokenClaims = z.object({
  sub: z.string().min(1).max(128),
  role: Role,
  clinic: z.string().min(1).max(64),
  /** Patient tokens are scoped to one ticket. */
  ticket: z.string().min(1).max(64).optional(),
  /** A staff member's or doctor's name as their colleagues see it (the staff chat); never a patient's. */
  name: z.string().min(1).max(64).optional(),
});
export type TokenClaims = z.infer<typeof TokenClaims>;
