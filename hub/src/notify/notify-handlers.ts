import type { Namespace, Socket } from 'socket.io';
import { ROLES, NOTIFY_CLIENT_EVENTS, NotifyPagePayload, NotifySeenPayload, notifyUserRoom, type Role } from '@clinic-hub/protocol';
import { identityOf } from '../auth/socket-auth.js';
import { defineHandler, type HandlerContext } from '../socket/define-handler.js';
import { installEventGuard } from '../socket/event-guard.js';
import { IN_VIEW_RENEW_MS, type PatientPageStore } from './patient-page-store.js';

export interface NotifyHandlerDeps extends HandlerContext {
  maxPayloadBytes: number;
  pages: PatientPageStore;
}

const NOTIFY_EVENT_ROLES: Record<string, readonly Role[]> = {
  [NOTIFY_CLIENT_EVENTS.page]: ROLES,
  [NOTIFY_CLIENT_EVENTS.seen]: ROLES,
};

/**
 * The `/notify` namespace (NOTIFY_NAMESPACE): each authenticated socket joins
 * its own user's room, `notifyUserRoom(clinic, token sub)`, where the worker
 * emits `notify:notice` through Redis, and is given the notices its user's
 * page has not shown yet (the inbox). A patient's user id is their token's
 * sub, `patient:<ticketId>`. The page says whether it is in view
 * (`notify:page`; renewed here while the socket lasts) and which notices it
 * has shown (`notify:seen`); anything else is answered UNKNOWN_EVENT by the
 * event guard. Put `socketAuth` in front of it:
 * `nsp.use(socketAuth(tokens, clinics))`.
 */
export function registerNotifyHandlers(nsp: Namespace, deps: NotifyHandlerDeps): () => void {
  const inView = new Map<string, { clinic: string; sub: string }>();
  const logFailure = (socket: Socket) => (error: Error) => deps.logger.warn({ err: error.message, socket: socket.id }, 'notify page state not stored');
  // While a page stays in view its entry is renewed; a node that dies leaves entries that expire within IN_VIEW_MS.
  const renew = setInterval(() => {
    for (const [socketId, { clinic, sub }] of inView) void deps.pages.setInView(clinic, sub, socketId, true).catch(() => undefined);
  }, IN_VIEW_RENEW_MS);
  renew.unref();

  nsp.on('connection', (socket: Socket) => {
    const { clinic, sub } = identityOf(socket);
    void socket.join(notifyUserRoom(clinic, sub));
    installEventGuard(socket, NOTIFY_EVENT_ROLES, deps);
    socket.on('disconnect', () => {
      if (inView.delete(socket.id)) void deps.pages.setInView(clinic, sub, socket.id, false).catch(logFailure(socket));
    });
    defineHandler(socket, NOTIFY_CLIENT_EVENTS.page, NotifyPagePayload, deps, async ({ visible }) => {
      if (visible) inView.set(socket.id, { clinic, sub });
      else inView.delete(socket.id);
      await deps.pages.setInView(clinic, sub, socket.id, visible);
      return { ok: true };
    });
    defineHandler(socket, NOTIFY_CLIENT_EVENTS.seen, NotifySeenPayload, deps, async ({ ids }) => ({
      ok: true,
      removed: await deps.pages.removeFromInbox(clinic, sub, ids),
    }));
    // What arrived while no page was connected (or before it said it had shown it).
    deps.pages
      .inbox(clinic, sub)
      .then((notices) => {
        for (const notice of notices) socket.emit('notify:notice', notice);
      })
      .catch(logFailure(socket));
  });
  return () => clearInterval(renew);
}
