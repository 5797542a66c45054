import type { Socket } from 'socket.io';
import { protocolError, type ErrorCode, type ProtocolError, type Role } from '@clinic-hub/protocol';
import { identityOf } from '../auth/socket-auth.js';
import type { HubMetrics } from '../metrics.js';

/** Sends an error to whoever sent `args`: through its ack when it gave one, else as `hub:error`. */
export function replyError(socket: Socket, event: string, args: unknown[], error: ProtocolError, metrics: HubMetrics): void {
  metrics.errorsTotal.inc({ code: error.code });
  const ack = args[args.length - 1];
  if (typeof ack === 'function') ack({ ok: false, error });
  else socket.emit('hub:error', { ...error, event });
}

/**
 * Runs before every handler: unknown events, oversized payloads, expired
 * tokens and roles that may not send the event are answered with an error
 * code here, and the event goes no further.
 */
export function installEventGuard(
  socket: Socket,
  roles: Record<string, readonly Role[]>,
  options: { maxPayloadBytes: number; metrics: HubMetrics },
): void {
  socket.use((packet, next) => {
    const [event, ...args] = packet as [unknown, ...unknown[]];
    const name = typeof event === 'string' ? event : String(event);
    const refuse = (code: ErrorCode, detail?: string) => replyError(socket, name, args, protocolError(code, detail), options.metrics);

    const allowed = typeof event === 'string' && Object.hasOwn(roles, event) ? roles[event] : undefined;
    if (!allowed) return refuse('UNKNOWN_EVENT', name.slice(0, 64));

    const size = Buffer.byteLength(JSON.stringify(args.filter((a) => typeof a !== 'function')) ?? '');
    if (size > options.maxPayloadBytes) return refuse('PAYLOAD_TOO_LARGE', `${size} > ${options.maxPayloadBytes} bytes`);

    const identity = identityOf(socket);
    if (identity.exp * 1000 <= Date.now()) {
      refuse('AUTH_EXPIRED');
      setTimeout(() => socket.disconnect(true), 50);
      return;
    }
    if (!allowed.includes(identity.role)) return refuse('AUTH_FORBIDDEN', `${identity.role} may not send ${name}`);
    next();
  });
}
