import type { RedisClient } from '@clinic-hub/platform/redis';
import type { Role } from '@clinic-hub/protocol';
import type { Logger } from '@clinic-hub/platform/logging';
import type { TokenIssuer } from '@clinic-hub/platform/token-issuer';
import type { ClinicRegistry } from '../clinics/clinic-registry.js';
import type { HubMetrics } from '../metrics.js';
import { Authenticator } from './authenticator.js';
import { RevocationList } from './revocation-list.js';
import { SocketSessions } from './sessions.js';

export interface AuthOptions {
  /** Commands (the revocation hash). */
  redis: RedisClient;
  /** A connection of its own for the revocation channel. */
  subscriber: RedisClient;
  tokens: TokenIssuer;
  clinics: ClinicRegistry;
  /** The queue's rule for patients (QueueService.patientAccessUntil). */
  patientAccessUntil(clinic: string, ticketId: string): Promise<number | null>;
  ttlSeconds(role: Role): number;
  maxSessionSeconds(role: Role): number;
  metrics: HubMetrics;
  logger: Logger;
}

/** A hub node's authentication: the revocation list (loaded and subscribed), the token checks, and the sockets' sessions. */
export async function startAuth(options: AuthOptions): Promise<{ revocations: RevocationList; authenticator: Authenticator; sessions: SocketSessions }> {
  const revocations = new RevocationList(options.redis, options.subscriber, options.logger);
  await revocations.start();
  const authenticator = new Authenticator({ tokens: options.tokens, clinics: options.clinics, revocations, patientAccessUntil: options.patientAccessUntil });
  const sessions = new SocketSessions({ ...options, authenticator });
  return { revocations, authenticator, sessions };
}
