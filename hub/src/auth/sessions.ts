import type { Socket } from 'socket.io';
import { HUB_SESSION_ENDED, fail, protocolError, type Ack, type Revocation, type Role, type SessionEnded } from '@clinic-hub/protocol';
import type { Logger } from '@clinic-hub/platform/logging';
import type { TokenIssuer } from '@clinic-hub/platform/token-issuer';
import type { HubMetrics } from '../metrics.js';
import type { Authenticator } from './authenticator.js';
import { identityOf, type SocketIdentity } from './socket-auth.js';

/** A refresh that would give a token shorter than this is refused: the session is over (AUTH_SESSION_EXPIRED). */
const SHORTEST_REFRESH_SECONDS = 60;
/** setTimeout waits at most 2^31-1 ms; a longer wait is re-armed when it fires. */
const LONGEST_TIMER_MS = 2_000_000_000;
/** After ending a socket, its connection is closed if it has no other namespace left this long after. */
const CLOSE_EMPTY_CONNECTION_MS = 1000;

export interface SessionsOptions {
  authenticator: Authenticator;
  tokens: TokenIssuer;
  /** A refreshed token's lifetime for the role (HUB_*_TOKEN_TTL_SECONDS). */
  ttlSeconds(role: Role): number;
  /** How long after its first token a session may still be refreshed (HUB_*_SESSION_MAX_SECONDS). */
  maxSessionSeconds(role: Role): number;
  /** See Authenticator: until when a patient may use a token for this ticket, null while it is active. */
  patientAccessUntil(clinic: string, ticketId: string): Promise<number | null>;
  metrics: HubMetrics;
  logger: Logger;
}

/**
 * Every connected socket's session on this hub node, whatever its namespace:
 * a socket is disconnected when its token expires, when it is revoked (on
 * any node: the revocation list tells every node), and a patient's when
 * their ticket ends (plus the clinic's grace period), each time with
 * `hub:session-ended { code }` first so the client knows not to reconnect
 * with that token. `auth:refresh` is answered here: a fresh token for the
 * same session, never past the role's maximum session age nor a patient's
 * ticket.
 */
export class SocketSessions {
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Map<Socket, NodeJS.Timeout>();
  /** Patient sockets by `${clinic}/${ticket}`: a ticket's end reaches them without a scan. */
  private readonly patients = new Map<string, Set<Socket>>();

  constructor(private readonly options: SessionsOptions) {
    options.authenticator.revocations.onRevoked((entry) => this.revoked(entry));
  }

  /** Call on every namespace's `connection`. */
  attach(socket: Socket): void {
    const identity = identityOf(socket);
    this.sockets.add(socket);
    const patientKey = identity.role === 'patient' && identity.ticket ? `${identity.clinic}/${identity.ticket}` : null;
    if (patientKey) {
      let set = this.patients.get(patientKey);
      if (!set) this.patients.set(patientKey, (set = new Set()));
      set.add(socket);
    }
    socket.once('disconnect', () => {
      this.sockets.delete(socket);
      clearTimeout(this.timers.get(socket));
      this.timers.delete(socket);
      if (!patientKey) return;
      const set = this.patients.get(patientKey);
      set?.delete(socket);
      if (set?.size === 0) this.patients.delete(patientKey);
    });
    // A revocation or the end that came between the check at connect and now.
    const reason = this.endedReason(identity);
    if (reason) return this.end(socket, reason);
    this.schedule(socket);
  }

  /** Why this socket's session is over, or null while it may go on: checked before every action. */
  endedReason(identity: SocketIdentity): 'AUTH_EXPIRED' | 'AUTH_REVOKED' | null {
    if (this.options.authenticator.revocations.covering({ ...identity, clinic: identity.tokenClinic })) return 'AUTH_REVOKED';
    if (identity.endsAt <= Date.now()) return 'AUTH_EXPIRED';
    return null;
  }

  /** Tells the client why, then disconnects it from this namespace (and closes its connection if nothing else is on it). */
  end(socket: Socket, code: SessionEnded['code'], detail?: string): void {
    if (!socket.connected) return;
    const ended: SessionEnded = protocolError(code, detail) as SessionEnded;
    this.options.metrics.sessionsEnded.inc({ code });
    socket.emit(HUB_SESSION_ENDED, ended);
    socket.disconnect();
    setTimeout(() => {
      const client = socket.client as unknown as { sockets: Map<string, unknown>; conn: { readyState: string; close(): void } };
      if (client.sockets.size === 0 && client.conn.readyState === 'open') client.conn.close();
    }, CLOSE_EMPTY_CONNECTION_MS).unref();
  }

  /** `auth:refresh`: a fresh token for the same session, capped by the session's maximum age and a patient's ticket. */
  async refresh(socket: Socket): Promise<Ack<{ token: string; expiresAt: number }>> {
    const identity = identityOf(socket);
    const reason = this.endedReason(identity);
    if (reason) {
      setImmediate(() => this.end(socket, reason));
      return fail(reason);
    }
    const { role, sub, ticket } = identity;
    const now = Date.now();
    let capMs = (identity.authTime + this.options.maxSessionSeconds(role)) * 1000;
    let patientUntil: number | null = null;
    if (role === 'patient' && ticket) {
      patientUntil = await this.options.patientAccessUntil(identity.clinic, ticket);
      if (patientUntil !== null && patientUntil <= now) {
        setImmediate(() => this.end(socket, 'AUTH_EXPIRED', 'the ticket has ended'));
        return fail('AUTH_EXPIRED', 'the ticket has ended');
      }
      if (patientUntil !== null) capMs = Math.min(capMs, patientUntil);
    }
    const ttl = Math.min(this.options.ttlSeconds(role), Math.floor((capMs - now) / 1000));
    if (ttl < SHORTEST_REFRESH_SECONDS) {
      return {
        ok: false,
        error: protocolError('AUTH_SESSION_EXPIRED', `the session began ${new Date(identity.authTime * 1000).toISOString()}; ${role} sessions last at most ${this.options.maxSessionSeconds(role)} s`),
      };
    }
    // The token's own clinic claim ("*" for an all-clinics admin), not the clinic this socket acts for.
    const issued = this.options.tokens.issueSync(
      { sub, role, clinic: identity.tokenClinic, ...(ticket ? { ticket } : {}), ...(identity.name ? { name: identity.name } : {}) },
      ttl,
      { sid: identity.sid ?? identity.jti, authTime: identity.authTime },
    );
    const exp = Math.floor(issued.expiresAt / 1000);
    socket.data.identity = {
      ...identity,
      exp,
      iat: Math.floor(now / 1000),
      jti: issued.id,
      sid: identity.sid ?? identity.jti ?? issued.id,
      tokenClinic: identity.tokenClinic,
      endsAt: Math.min(issued.expiresAt, patientUntil ?? Infinity),
    } satisfies SocketIdentity;
    this.schedule(socket);
    return { ok: true, token: issued.token, expiresAt: issued.expiresAt };
  }

  /** A patient's ticket ended: their sockets end when the clinic's grace period after it is over. */
  ticketEnded(clinic: string, ticketId: string, accessUntil: number): void {
    for (const socket of this.patients.get(`${clinic}/${ticketId}`) ?? []) {
      const identity = identityOf(socket);
      if (accessUntil >= identity.endsAt) continue;
      socket.data.identity = { ...identity, endsAt: accessUntil } satisfies SocketIdentity;
      this.schedule(socket);
    }
  }

  /** Sockets on this node by role, over every namespace (node heartbeats). */
  countByRole(): Partial<Record<Role, number>> {
    const counts: Partial<Record<Role, number>> = {};
    for (const socket of this.sockets) {
      const { role } = identityOf(socket);
      counts[role] = (counts[role] ?? 0) + 1;
    }
    return counts;
  }

  /** Sockets on this node by role and namespace (clinic_hub_connected_clients). */
  countByNamespace(): { role: Role; namespace: string; count: number }[] {
    const counts = new Map<string, { role: Role; namespace: string; count: number }>();
    for (const socket of this.sockets) {
      const { role } = identityOf(socket);
      const key = `${socket.nsp.name} ${role}`;
      const entry = counts.get(key);
      if (entry) entry.count++;
      else counts.set(key, { role, namespace: socket.nsp.name, count: 1 });
    }
    return [...counts.values()];
  }

  /** A new revocation (from this node or another): every socket it covers ends now. */
  private revoked(entry: Revocation): void {
    let ended = 0;
    for (const socket of this.sockets) {
      if (this.endedReason(identityOf(socket)) !== 'AUTH_REVOKED') continue;
      this.end(socket, 'AUTH_REVOKED');
      ended++;
    }
    if (ended > 0) this.options.logger.info({ kind: entry.kind, sockets: ended }, 'revocation: sockets disconnected');
  }

  private schedule(socket: Socket): void {
    clearTimeout(this.timers.get(socket));
    const waitMs = identityOf(socket).endsAt - Date.now();
    const timer = setTimeout(() => {
      this.timers.delete(socket);
      if (waitMs > LONGEST_TIMER_MS) return this.schedule(socket);
      const reason = this.endedReason(identityOf(socket));
      if (reason) this.end(socket, reason, reason === 'AUTH_EXPIRED' && identityOf(socket).role === 'patient' ? 'the token or the visit has ended' : undefined);
      else this.schedule(socket);
    }, Math.max(0, Math.min(waitMs, LONGEST_TIMER_MS)));
    timer.unref();
    this.timers.set(socket, timer);
  }
}

