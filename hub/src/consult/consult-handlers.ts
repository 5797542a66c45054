import type { Namespace, Socket } from 'socket.io';
import { CONSULT_EVENT_ROLES, CONSULT_HUB_ROLES, ConsultPayloads } from '@clinic-hub/protocol';
import { ConnectError, identityOf } from '../auth/socket-auth.js';
import { socketHandlers, type HandlerContext } from '../socket/define-handler.js';
import { installEventGuard } from '../socket/event-guard.js';
import { consultRooms } from './consult-keys.js';
import type { ConsultCaller, ConsultService } from './consult-service.js';

export interface ConsultHandlerDeps extends HandlerContext {
  consult: ConsultService;
  maxPayloadBytes: number;
  /** Told when a patient is admitted to a consultation (the patient is notified: notify domain). */
  onAdmitted?: (clinic: string, ticketId: string, consultId: string) => void;
}

/**
 * The `/consult` namespace. Put `socketAuth` in front of it; this adds the
 * role gate (displays and services are refused at connect: they see nothing
 * of consultations), the event guard and thin handlers: validate, call the
 * consult domain, ack, emit.
 */
export function registerConsultHandlers(nsp: Namespace, deps: ConsultHandlerDeps): void {
  nsp.use((socket, next) => {
    const { role } = identityOf(socket);
    if (!CONSULT_HUB_ROLES.includes(role)) return next(new ConnectError('AUTH_FORBIDDEN', `${role} tokens cannot use consultations`));
    next();
  });

  nsp.on('connection', (socket: Socket) => {
    const identity = identityOf(socket);
    const { clinic, sub, role } = identity;
    const caller = (): ConsultCaller => ({ sub, role, ticket: identity.ticket ?? null, address: identity.address });
    installEventGuard(socket, CONSULT_EVENT_ROLES, deps);

    if (role === 'patient' && identity.ticket) {
      void socket.join(consultRooms.ticket(clinic, identity.ticket));
      // A page that (re)connects while its consultation is open is told at once, with a fresh pass.
      deps.consult.admittedFor(clinic, caller()).then(
        (admitted) => {
          if (admitted && socket.connected) socket.emit('consult:admitted', admitted);
        },
        (error: Error) => deps.logger.warn({ err: error.message, socket: socket.id }, 'cannot look up the patient\'s consultation'),
      );
    }

    const on = socketHandlers(socket, ConsultPayloads, deps);

    on('consult:admit', async (payload) => {
      const result = await deps.consult.admit(clinic, caller(), payload);
      if (!result.ok) return result;
      const { patient, ...reply } = result;
      // Through the adapter: the patient's ticket page may be connected to any hub node.
      nsp.to(consultRooms.ticket(clinic, patient.consultation.ticket)).emit('consult:admitted', patient);
      deps.onAdmitted?.(clinic, patient.consultation.ticket, patient.consultation.id);
      return reply;
    });

    on('consult:join', (payload) => deps.consult.join(clinic, caller(), payload));
    on('consult:invite', (payload) => deps.consult.invite(clinic, caller(), payload));
    on('consult:end', (payload) => deps.consult.end(clinic, caller(), payload));

    on('consult:subscribe', async ({ consult }) => {
      const room = consultRooms.ai(clinic, consult);
      const result = await deps.consult.subscribe(clinic, caller(), consult);
      if (result.ok) await socket.join(room);
      return result;
    });

    on('consult:unsubscribe', async ({ consult }) => {
      await socket.leave(consultRooms.ai(clinic, consult));
      return { ok: true };
    });

    on('consult:ai-history', (payload) => deps.consult.aiHistory(clinic, caller(), payload));

    on('consult:ai-status', ({ consult }) => deps.consult.aiStatus(clinic, caller(), consult));
  });
}
