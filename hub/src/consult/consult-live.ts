import { onClinicMessages, subscribeClinicChannels, type RedisClient } from '@clinic-hub/platform/redis';
import type { Namespace } from 'socket.io';
import { CONSULT_AI_CHANNEL_KIND, CONSULT_CONTROL_CHANNEL_KIND, ConsultId, type ConsultControlMessage, type ConsultEnded, type QueueEvent } from '@clinic-hub/protocol';
import type { ClinicRegistry } from '../clinics/clinic-registry.js';
import type { Logger } from '@clinic-hub/platform/logging';
import { LIVE_CHANNEL_KIND, subscribeLiveChannels } from '../queue/index.js';
import { consultRooms } from './consult-keys.js';
import { parseAiResult } from './consult-store.js';
import type { ConsultService } from './consult-service.js';

/** Queue changes after which a ticket's consultation is over. */
const TICKET_LEFT = new Set<QueueEvent['type']>(['ticket.done', 'ticket.cancelled', 'ticket.no_show']);

export interface ConsultRelayDeps {
  consult: ConsultService;
  clinics: ClinicRegistry;
  logger: Logger;
}

/**
 * One subscription per hub node, three kinds of channel, all sharded pub/sub
 * (each clinic's channel SSUBSCRIBEd: on a Redis Cluster at the shard that
 * owns the clinic):
 *
 * - the AI workers' results (`ch:{clinic}:consult-ai`): each transcript or
 *   emotion score goes to this node's sockets in the consultation's AI room,
 *   which only clinicians can join (`consult:subscribe`). Every node does the
 *   same for its own sockets, so each clinician gets each result once.
 * - the control channel (`ch:{clinic}:consult-control`): an ended
 *   consultation is announced to this node's clinicians following it and to
 *   its patient's ticket page.
 * - the queue's live events (sharded pub/sub, each clinic's channel
 *   SSUBSCRIBEd): when the ticket of an online department leaves the queue
 *   (done, cancelled, no-show — also when the room's next patient is
 *   called), its consultation ends. Every node tries; the script ends it
 *   once.
 */
export async function startConsultRelay(subscriber: RedisClient, nsp: Namespace, deps: ConsultRelayDeps): Promise<void> {
  const { logger } = deps;

  const relayAiResult = (clinic: string, raw: string) => {
    // Most results are for consultations nobody on this node follows: look at the id before validating the rest.
    let consult: unknown;
    try {
      consult = (JSON.parse(raw) as { payload?: { consult?: unknown } })?.payload?.consult;
    } catch {
      logger.warn({ clinic }, 'unparseable AI result on its channel');
      return;
    }
    if (!ConsultId.safeParse(consult).success) return;
    const room = consultRooms.ai(clinic, consult as string);
    if (!nsp.adapter.rooms.has(room)) return;
    const result = parseAiResult(raw);
    if (!result) {
      logger.warn({ clinic, consult }, 'AI result that does not match the contract; not relayed');
      return;
    }
    if (result.type === 'transcript') nsp.local.to(room).emit('consult:transcript', result.payload);
    else nsp.local.to(room).emit('consult:emotion', result.payload);
  };

  const relayControl = (clinic: string, raw: string) => {
    let message: Partial<ConsultControlMessage>;
    try {
      message = JSON.parse(raw) as Partial<ConsultControlMessage>;
    } catch {
      return;
    }
    if (message.action !== 'end' || typeof message.consult !== 'string') return;
    const ended: ConsultEnded = { consult: message.consult, ticket: message.ticket ?? '', at: message.at ?? Date.now() };
    const rooms = [consultRooms.ai(clinic, message.consult)];
    if (ended.ticket) rooms.push(consultRooms.ticket(clinic, ended.ticket));
    nsp.local.to(rooms).emit('consult:ended', ended);
  };

  const endWithTicket = (clinic: string, raw: string) => {
    // Cheap for every other event: the type is near the start and most departments are not online.
    if (!raw.includes('"ticket.done"') && !raw.includes('"ticket.cancelled"') && !raw.includes('"ticket.no_show"')) return;
    let event: QueueEvent;
    try {
      event = JSON.parse(raw) as QueueEvent;
    } catch {
      return;
    }
    if (!TICKET_LEFT.has(event.type) || !deps.clinics.department(clinic, event.ticket.dept)?.online) return;
    deps.consult.endForTicket(clinic, event.ticket.id, event.type).catch((error: Error) => {
      logger.warn({ err: error.message, ticket: event.ticket.id }, 'cannot end the consultation of a ticket that left the queue');
    });
  };

  onClinicMessages(subscriber, CONSULT_AI_CHANNEL_KIND, relayAiResult);
  onClinicMessages(subscriber, CONSULT_CONTROL_CHANNEL_KIND, relayControl);
  onClinicMessages(subscriber, LIVE_CHANNEL_KIND, (clinic, raw) => {
    if (deps.clinics.get(clinic)) endWithTicket(clinic, raw);
  });
  // ioredis subscribes again by itself after a reconnect (on a cluster, at the slot's new master after a failover).
  // Results published meanwhile are in the AI stream (consult:ai-history); an end, in the meta hash.
  const clinicIds = deps.clinics.ids();
  await subscribeClinicChannels(subscriber, CONSULT_AI_CHANNEL_KIND, clinicIds);
  await subscribeClinicChannels(subscriber, CONSULT_CONTROL_CHANNEL_KIND, clinicIds);
  await subscribeLiveChannels(subscriber, clinicIds);
}
