import type { Namespace, Socket } from 'socket.io';
import { notifyUserRoom } from '@clinic-hub/protocol';
import { identityOf } from '../auth/socket-auth.js';
import type { HandlerContext } from '../socket/define-handler.js';
import { installEventGuard } from '../socket/event-guard.js';

export interface NotifyHandlerDeps extends HandlerContext {
  maxPayloadBytes: number;
}

/**
 * The `/notify` namespace (NOTIFY_NAMESPACE): each authenticated socket joins
 * its own user's room, `notifyUserRoom(clinic, token sub)`, where the worker
 * emits `notify:notice` through Redis. A patient's user id is their token's
 * sub, `patient:<ticketId>`. Clients only listen here; anything they send
 * is answered UNKNOWN_EVENT by the event guard (within the node's rate
 * limits, like every namespace). Put `socketAuth` in front of it:
 * `nsp.use(socketAuth(tokens, clinics))`.
 */
export function registerNotifyHandlers(nsp: Namespace, deps: NotifyHandlerDeps): void {
  nsp.on('connection', (socket: Socket) => {
    const identity = identityOf(socket);
    void socket.join(notifyUserRoom(identity.clinic, identity.sub));
    installEventGuard(socket, {}, deps);
  });
}
