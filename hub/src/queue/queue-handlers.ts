import { randomUUID } from 'node:crypto';
import type { Namespace, Socket } from 'socket.io';
import type { RedisClient } from '@clinic-hub/platform/redis';
import { QUEUE_EVENT_ROLES, QueuePayloads, fail, type Announcement } from '@clinic-hub/protocol';
import { appendAudit } from '../audit/audit-log.js';
import { identityOf } from '../auth/socket-auth.js';
import type { SelfCheckinService } from '../self-checkin/self-checkin-service.js';
import { socketHandlers, type HandlerContext } from '../socket/define-handler.js';
import { installEventGuard } from '../socket/event-guard.js';
import { clinicRoom } from './queue-keys.js';
import { checkinPatient, patientLink, type PatientCheckinDeps } from './checkin-patient.js';

export interface QueueHandlerDeps extends HandlerContext, PatientCheckinDeps {
  redis: RedisClient;
  maxPayloadBytes: number;
  /** Check-ins by patients themselves (kiosk) and appointment arrivals; absent: `queue:self-checkin` is refused. */
  selfCheckin?: Pick<SelfCheckinService, 'checkin'>;
}

/** The waiting-room namespace: every socket joins its clinic's room and gets its queue events. */
export function registerQueueHandlers(nsp: Namespace, deps: QueueHandlerDeps): void {
  nsp.on('connection', (socket: Socket) => {
    const identity = identityOf(socket);
    const clinic = identity.clinic;
    // A kiosk only checks patients in: it follows no queue.
    if (identity.role !== 'kiosk') socket.join(clinicRoom(clinic));
    installEventGuard(socket, QUEUE_EVENT_ROLES, deps);

    const on = socketHandlers(socket, QueuePayloads, deps);

    on('queue:checkin', (payload) => checkinPatient(deps, clinic, payload));
    on('queue:self-checkin', (payload) =>
      deps.selfCheckin
        ? deps.selfCheckin.checkin(clinic, payload, { via: identity.role === 'kiosk' ? 'kiosk' : 'reception', actor: identity.sub, role: identity.role, address: identity.address })
        : Promise.resolve(fail('INTERNAL', 'self check-in is not wired on this hub')),
    );
    on('queue:call-next', (payload) => deps.queue.callNext(clinic, payload));
    on('queue:recall', (payload) => deps.queue.recall(clinic, payload));
    on('queue:start', (payload) => deps.queue.start(clinic, payload));
    on('queue:skip', (payload) => deps.queue.skip(clinic, payload));
    on('queue:done', (payload) => deps.queue.done(clinic, payload));
    on('queue:cancel', (payload) => deps.queue.cancel(clinic, payload));
    on('queue:sync', (payload) => deps.queue.sync(clinic, payload.afterSeq));

    on('queue:patient-link', async ({ ticketId }) => {
      const ticket = await deps.queue.ticket(clinic, ticketId);
      if (!ticket) return fail('QUEUE_TICKET_NOT_FOUND');
      return { ok: true, ticket, ...(await patientLink(deps, clinic, ticketId)) };
    });

    on('queue:patient', async ({ ticketId }) => {
      const ticket = await deps.queue.ticket(clinic, ticketId);
      if (!ticket) return fail('QUEUE_TICKET_NOT_FOUND');
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
      if (deps.redis.status !== 'ready') return fail('STORE_UNAVAILABLE');
      const announcement: Announcement = { id: randomUUID(), text: payload.text, at: Date.now(), durationSeconds: payload.durationSeconds };
      nsp.to(clinicRoom(clinic)).emit('queue:announcement', announcement);
      deps.logger.info({ socket: socket.id, actor: identity.sub, announcement: announcement.id }, 'announcement sent');
      return { ok: true, announcement };
    });
  });
}
