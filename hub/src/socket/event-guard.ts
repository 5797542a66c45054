import type { Socket } from 'socket.io';
import { PAYLOAD_MAX_DEPTH, measurePayload, protocolError, type ErrorCode, type ProtocolError, type Role } from '@clinic-hub/protocol';
import { identityOf } from '../auth/socket-auth.js';
import type { SocketSessions } from '../auth/sessions.js';
import type { Logger } from '@clinic-hub/platform/logging';
import type { HubMetrics } from '../metrics.js';
import type { DrainState } from './drain.js';
import type { EventRateLimiter } from './rate-limiter.js';

/** What every socket of one hub node is checked against, whatever its namespace. */
export interface NodeGuards {
  limiter: EventRateLimiter;
  drain: DrainState;
  /** An action not done within this many ms is answered STORE_UNAVAILABLE (HUB_ACTION_TIMEOUT_MS); 0: no limit. */
  actionTimeoutMs: number;
  /** Every socket's session: expiry, revocation, a patient's ticket, refresh. */
  sessions: SocketSessions;
}

/** Event names are echoed back in `hub:error` at most this long. */
const EVENT_NAME_ECHOED = 64;

/** Sends an error to whoever sent `args`: through its ack when it gave one, else as `hub:error`. */
export function replyError(socket: Socket, event: string, args: unknown[], error: ProtocolError, metrics: HubMetrics): void {
  metrics.errorsTotal.inc({ code: error.code });
  const ack = args[args.length - 1];
  if (typeof ack === 'function') ack({ ok: false, error });
  else socket.emit('hub:error', { ...error, event: event.slice(0, EVENT_NAME_ECHOED) });
}

/**
 * Runs before every handler: events of a node that is closing, events over
 * the rate limits, unknown events, payloads too large or nested too deep,
 * expired tokens and roles that may not send the event are answered with an
 * error code here, and the event goes no further. Payloads are measured
 * without recursion (a 10 KB payload can nest 5,000 levels deep, which
 * overflows the stack of JSON.stringify), and nothing here may throw: an
 * exception in a Socket.IO middleware would stop the node.
 */
export function installEventGuard(
  socket: Socket,
  roles: Record<string, readonly Role[]>,
  options: { maxPayloadBytes: number; metrics: HubMetrics; guards: NodeGuards; logger: Logger },
): void {
  const { guards } = options;
  const owner = identityOf(socket);
  // A display token is often shared by all of a clinic's screens: those are limited per socket only.
  const rate = guards.limiter.attach(owner.role === 'display' ? null : `${owner.clinic}/${owner.sub}`);
  socket.on('disconnect', () => rate.release());

  socket.use((packet, next) => {
    const [event, ...args] = packet as [unknown, ...unknown[]];
    // Socket.IO's parser lets only strings and numbers through as event names.
    const name = typeof event === 'string' ? event : typeof event === 'number' ? String(event) : '(not a name)';
    const refuse = (code: ErrorCode, detail?: string) => replyError(socket, name, args, protocolError(code, detail), options.metrics);
    try {
      check(event, name, args, refuse, next);
    } catch (error) {
      options.logger.error({ err: error, socket: socket.id, event: name.slice(0, EVENT_NAME_ECHOED) }, 'event guard failed');
      refuse('INTERNAL');
    }
  });

  function check(event: unknown, name: string, args: unknown[], refuse: (code: ErrorCode, detail?: string) => void, next: (error?: Error) => void): void {
    if (!guards.drain.acceptsActions) return refuse('HUB_DRAINING');
    const decision = rate.take();
    if (!decision.ok) return refuse('RATE_LIMITED', `${decision.scope} limit; retry in ${decision.retryAfterMs} ms`);

    const allowed = typeof event === 'string' && Object.hasOwn(roles, event) ? roles[event] : undefined;
    if (!allowed) return refuse('UNKNOWN_EVENT', name.slice(0, EVENT_NAME_ECHOED));

    const measured = measurePayload(
      args.filter((a) => typeof a !== 'function'),
      { maxBytes: options.maxPayloadBytes, maxDepth: PAYLOAD_MAX_DEPTH },
    );
    if (measured.over === 'depth') return refuse('PAYLOAD_TOO_DEEP', `deeper than ${PAYLOAD_MAX_DEPTH} levels`);
    if (measured.over === 'bytes') return refuse('PAYLOAD_TOO_LARGE', `over ${options.maxPayloadBytes} bytes`);

    const identity = identityOf(socket);
    const ended = guards.sessions.endedReason(identity);
    if (ended) {
      refuse(ended);
      // After the refusal has gone out: hub:session-ended, then the disconnect.
      setImmediate(() => guards.sessions.end(socket, ended));
      return;
    }
    if (!allowed.includes(identity.role)) return refuse('AUTH_FORBIDDEN', `${identity.role} may not send ${name}`);
    next();
  }
}
