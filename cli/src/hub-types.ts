/**
 * Shapes of the hub's ops HTTP answers. Type-only imports (erased at run
 * time) so that a change on the hub's side fails the CLI's typecheck instead
 * of its output. They belong in protocol/ once the ops API settles.
 */
export type { OpsStatus, ClinicQueueSummary } from '../../hub/src/ops/ops-status.js';
export type { DisplayPresence, NodeStatus } from '../../hub/src/ops/node-registry.js';

export interface IssuedToken {
  token: string;
  expiresAt: number;
  /** Revokes it and every token refreshed from it: `clinic token revoke --id ID`. */
  id: string;
  role: string;
  clinic: string;
  sub: string;
}
