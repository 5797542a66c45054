import { randomUUID } from 'node:crypto';
import type { Namespace, Socket } from 'socket.io';
import type { Redis } from 'ioredis';
import type { z } from 'zod';
import { type NotifyContactInput, type ProtocolError, QUEUE_EVENT_ROLES, QueuePayloads, protocolError, type Announcement, type QueueClientToServer } from '@clinic-hub/protocol';
import { appendAudit } from '../audit/audit-log.js';
import { identityOf } from '../auth/socket-auth.js';
import type { TokenIssuer } from '@clinic-hub/platform/token-issuer';
import { defineHandler, type HandlerContext, type Reply } from '../socket/define-handler.js';
import { installEventGuard } from '../socket/event-guard.js';
import { newTicketId, type QueueService } from './queue-service.js';

export const clinicRoom = (clinic: string) => `clinic:${clinic}`;

export interface QueueHandlerDeps extends HandlerContext {
  queue: QueueService;
  tokens: TokenIssuer;
  redis: Redis;
  maxPayloadBytes: number;
  tokenTtlSeconds: (role: string) => number;
  /** Base URL for links handed to patients (their ticket page). */
  publicUrl: () => string;
  /** Stores a patient's notification contact at check-in; absent when notifications are not wired. */
  setTicketContact?: (clinic: string, ticketId: string, contact: NotifyContactInput) => Promise<{ ok: true } | { ok: false; error: ProtocolError }>;
}

/** The waiting-room namespace: every socket joins its clinic's room and gets its queue events. */
export function registerQueueHandlers(nsp: Namespace, deps: QueueHandlerDeps): void {
  nsp.on('connection', (socket: Socket) => {
    const identity = identityOf(socket);
    const clinic = identity.clinic;
    socket.join(clinicRoom(clinic));
    installEventGuard(socket, QUEUE_EVENT_ROLES, deps);

    /** A token for the patient's own ticket page, scoped to the ticket, and the page's address. */
    const patientLink = async (ticketId: string) => {
      const { token } = await deps.tokens.issue({ sub: `patient:${ticketId}`, role: 'patient', clinic, ticket: ticketId }, deps.tokenTtlSeconds('patient'));
      return { patientToken: token, patientUrl: `${deps.publicUrl()}/ticket#token=${token}` };
    };

    const on = <E extends keyof QueueClientToServer>(event: E, run: (payload: z.output<(typeof QueuePayloads)[E]>) => Promise<Reply>) =>
      defineHandler(socket, event, QueuePayloads[event] as unknown as z.ZodType<z.output<(typeof QueuePayloads)[E]>>, deps, run);

    on('queue:checkin', async (payload) => {
      // The contact is stored before the ticket exists, so the notification worker's first look at
      // the new queue already finds it (a ticket checked in 1 ahead gets its "1 ahead" notice).
      const ticketId = newTicketId();
      const contactFor = (id: string): NotifyContactInput | null =>
        payload.notify ? (payload.notify.channel === 'in_app' ? { ...payload.notify, address: `patient:${id}` } : payload.notify) : null;
      const storeContact = async (id: string) => {
        const contact = contactFor(id);
        if (!contact) return undefined;
        if (!deps.setTicketContact) return { ok: false as const, error: protocolError('NOTIFY_CHANNEL_DISABLED', 'notifications are not configured on this hub') };
        const stored = await deps.setTicketContact(clinic, id, contact);
        return stored.ok ? { ok: true as const } : { ok: false as const, error: stored.error };
      };
      let notify = await storeContact(ticketId);
      const result = await deps.queue.checkin(clinic, payload, ticketId);
      if (!result.ok) return result;
      const issuedId = result.event.ticket.id;
      // A replayed requestId returns the ticket made the first time: the contact belongs to that one.
      if (issuedId !== ticketId) notify = await storeContact(issuedId);
      const reply = { ...result, ...(await patientLink(issuedId)) };
      // The ticket exists whatever happened to the contact: that part is reported on its own.
      return notify ? { ...reply, notify } : reply;
    });
    on('queue:call-next', (payload) => deps.queue.callNext(clinic, payload));
    on('queue:recall', (payload) => deps.queue.recall(clinic, payload));
    on('queue:start', (payload) => deps.queue.start(clinic, payload));
    on('queue:skip', (payload) => deps.queue.skip(clinic, payload));
    on('queue:done', (payload) => deps.queue.done(clinic, payload));
    on('queue:cancel', (payload) => deps.queue.cancel(clinic, payload));
    on('queue:sync', (payload) => deps.queue.sync(clinic, payload.afterSeq));

    on('queue:patient-link', async ({ ticketId }) => {
      const ticket = await deps.queue.ticket(clinic, ticketId);
      if (!ticket) return { ok: false, error: protocolError('QUEUE_TICKET_NOT_FOUND') };
      return { ok: true, ticket, ...(await patientLink(ticketId)) };
    });

    on('queue:patient', async ({ ticketId }) => {
      const ticket = await deps.queue.ticket(clinic, ticketId);
      if (!ticket) return { ok: false, error: protocolError('QUEUE_TICKET_NOT_FOUND') };
      await appendAudit(deps.redis, clinic, {
        actor: identity.sub,
        role: identity.role,
        action: 'patient.read',
        subject: ticketId,
        from: identity.address,
      });
      return { ok: true, ticket, patient: await deps.queue.patientInfo(clinic, ticketId) };
    });

    on('queue:announce', async (payload) => {
      // Other nodes get it through Redis: without Redis it would reach this node's screens only.
      if (deps.redis.status !== 'ready') return { ok: false, error: protocolError('STORE_UNAVAILABLE') };
      const announcement: Announcement = { id: randomUUID(), text: payload.text, at: Date.now(), durationSeconds: payload.durationSeconds };
      nsp.to(clinicRoom(clinic)).emit('queue:announcement', announcement);
      deps.logger.info({ socket: socket.id, actor: identity.sub, announcement: announcement.id }, 'announcement sent');
      return { ok: true, announcement };
    });

    on('auth:refresh', () => deps.guards.sessions.refresh(socket));
  });
}
