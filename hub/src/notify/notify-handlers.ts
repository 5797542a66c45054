import type { Namespace, Socket } from 'socket.io';
import { notifyUserRoom } from '@clinic-hub/protocol';
import { identityOf } from '../auth/socket-auth.js';

/**
 * The `/notify` namespace (NOTIFY_NAMESPACE): each authenticated socket joins
 * its own user's room, `notifyUserRoom(clinic, token sub)`, where the worker
 * emits `notify:notice` through Redis. A patient's user id is their token's
 * sub, `patient:<ticketId>`. Clients only listen here; they send nothing.
 * Put `socketAuth` in front of it: `nsp.use(socketAuth(tokens, clinics))`.
 */
export function registerNotifyHandlers(nsp: Namespace): void {
  nsp.on('connection', (socket: Socket) => {
    const identity = identityOf(socket);
    void socket.join(notifyUserRoom(identity.clinic, identity.sub));
  });
}
