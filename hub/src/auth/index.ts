export { Hs256Key, type JwtFailure } from './jwt.js';
export { TokenIssuer, TokenError, type VerifiedToken } from './tokens.js';
export { RoomTokenIssuer, RoomTokenError, type VerifiedRoomToken } from './room-tokens.js';
export { Authenticator, type AuthResult } from './authenticator.js';
export { RevocationList, REVOCATIONS_KEY, REVOCATIONS_CHANNEL } from './revocation-list.js';
export { SocketSessions } from './sessions.js';

import type { Redis } from 'ioredis';
import type { Role } from '@clinic-hub/protocol';
import type { ClinicRegistry } from '../clinics/clinic-registry.js';
import type { Logger } from '../logger.js';
import type { HubMetrics } from '../metrics.js';
import { Authenticator } from './authenticator.js';
import { RevocationList } from './revocation-list.js';
import { SocketSessions } from './sessions.js';
import type { TokenIssuer } from './tokens.js';

export interface AuthOptions {
  /** Commands (the revocation hash). */
  redis: Redis;
  /** A connection of its own for the revocation channel. */
  subscriber: Redis;
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
