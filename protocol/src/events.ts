import type { Ack, ProtocolError } from './errors.js';
import type { PatientInfo, QueueEvent, QueuePayload, PublicTicket, SyncResult, Announcement } from './queue.js';
import type { Role } from './roles.js';
import type { PublicClinic } from './clinic.js';
import type { SelfCheckinResult } from './self-checkin.js';
import { NAMESPACES, QUEUE_CLIENT_EVENTS, QUEUE_SERVER_EVENTS } from './event-names.js';

/** Socket.IO namespace of the waiting room: displays, patients' ticket pages, staff. */
export const QUEUE_NAMESPACE = NAMESPACES.queue;

type AckFn<T extends object = object> = (ack: Ack<T>) => void;

export interface ActionResult {
  /** The change made, or for a replayed requestId the change made the first time. */
  event: QueueEvent;
  /** True when this requestId had been seen and nothing new was done. */
  replayed: boolean;
}

export interface CheckinResult extends ActionResult {
  /** A token for the patient's own ticket page, scoped to this ticket. */
  patientToken: string;
  patientUrl: string;
  /** Present when the check-in asked for notifications: whether the contact was stored. */
  notify?: { ok: true } | { ok: false; error: ProtocolError };
}

export interface QueueClientToServer {
  [QUEUE_CLIENT_EVENTS.checkin]: (payload: QueuePayload<'queue:checkin'>, ack: AckFn<CheckinResult>) => void;
  [QUEUE_CLIENT_EVENTS.selfCheckin]: (payload: QueuePayload<'queue:self-checkin'>, ack: AckFn<SelfCheckinResult>) => void;
  [QUEUE_CLIENT_EVENTS.callNext]: (payload: QueuePayload<'queue:call-next'>, ack: AckFn<ActionResult>) => void;
  [QUEUE_CLIENT_EVENTS.recall]: (payload: QueuePayload<'queue:recall'>, ack: AckFn<ActionResult>) => void;
  [QUEUE_CLIENT_EVENTS.start]: (payload: QueuePayload<'queue:start'>, ack: AckFn<ActionResult>) => void;
  [QUEUE_CLIENT_EVENTS.skip]: (payload: QueuePayload<'queue:skip'>, ack: AckFn<ActionResult>) => void;
  [QUEUE_CLIENT_EVENTS.done]: (payload: QueuePayload<'queue:done'>, ack: AckFn<ActionResult>) => void;
  [QUEUE_CLIENT_EVENTS.cancel]: (payload: QueuePayload<'queue:cancel'>, ack: AckFn<ActionResult>) => void;
  [QUEUE_CLIENT_EVENTS.sync]: (payload: QueuePayload<'queue:sync'>, ack: AckFn<SyncResult>) => void;
  [QUEUE_CLIENT_EVENTS.patient]: (
    payload: QueuePayload<'queue:patient'>,
    ack: AckFn<{ ticket: PublicTicket; patient: PatientInfo | null }>,
  ) => void;
  /** The patient's page of an active ticket again (its QR code on the staff console, a reprinted slip): a fresh patient token. */
  [QUEUE_CLIENT_EVENTS.patientLink]: (
    payload: QueuePayload<'queue:patient-link'>,
    ack: AckFn<{ ticket: PublicTicket; patientToken: string; patientUrl: string }>,
  ) => void;
  [QUEUE_CLIENT_EVENTS.announce]: (payload: QueuePayload<'queue:announce'>, ack: AckFn<{ announcement: Announcement }>) => void;
  [QUEUE_CLIENT_EVENTS.authRefresh]: (payload: QueuePayload<'auth:refresh'>, ack: AckFn<{ token: string; expiresAt: number }>) => void;
}

export interface QueueServerToClient {
  /** One queue change, in sequence order per clinic (see the resume rule in docs/protocol.md). */
  [QUEUE_SERVER_EVENTS.event]: (event: QueueEvent) => void;
  [QUEUE_SERVER_EVENTS.announcement]: (announcement: Announcement) => void;
  /** The clinic's settings changed (rooms opened or closed, names, languages): the clinic as it is now, to every socket of the clinic. */
  [QUEUE_SERVER_EVENTS.clinic]: (clinic: PublicClinic) => void;
  /** Sent for a bad event that came without an ack callback. */
  [QUEUE_SERVER_EVENTS.hubError]: (error: { code: string; message: string; event?: string; detail?: string }) => void;
  [QUEUE_SERVER_EVENTS.hubDraining]: (notice: DrainingNotice) => void;
  [QUEUE_SERVER_EVENTS.sessionEnded]: (ended: SessionEnded) => void;
}

/**
 * `hub:session-ended`, in every namespace, just before the hub disconnects
 * the socket: its token's session is over. `AUTH_EXPIRED`: the token
 * expired (refresh it earlier, or get a new one), or the patient's ticket
 * ended and the clinic's grace period passed (the visit is over).
 * `AUTH_REVOKED`: an admin revoked the token, its user or its clinic. Do not
 * reconnect with the same token: it is refused at connect too.
 */
export interface SessionEnded {
  code: 'AUTH_EXPIRED' | 'AUTH_REVOKED';
  message: string;
  detail?: string;
}

/**
 * `hub:draining`: the node is shutting down (a deploy, a scale-in). It closes
 * the connection after `closesInMs`, once the actions it is working on are
 * acknowledged; Socket.IO clients then reconnect by themselves, through the
 * load balancer, to another node. A client may also move at once. Actions
 * sent meanwhile may be refused with HUB_DRAINING: retry them with the same
 * requestId after reconnecting.
 */
export interface DrainingNotice {
  node: string;
  closesInMs: number;
}

/** Who may send each event. Checked on every event, not only at connect. */
export const QUEUE_EVENT_ROLES: Record<keyof QueueClientToServer, readonly Role[]> = {
  'queue:checkin': ['admin', 'staff'],
  'queue:self-checkin': ['admin', 'staff', 'kiosk'],
  'queue:call-next': ['admin', 'staff', 'doctor'],
  'queue:recall': ['admin', 'staff', 'doctor'],
  'queue:start': ['admin', 'staff', 'doctor'],
  'queue:skip': ['admin', 'staff', 'doctor'],
  'queue:done': ['admin', 'staff', 'doctor'],
  'queue:cancel': ['admin', 'staff', 'doctor'],
  'queue:sync': ['admin', 'staff', 'doctor', 'patient', 'display', 'service'],
  'queue:patient': ['admin', 'staff', 'doctor'],
  'queue:patient-link': ['admin', 'staff'],
  'queue:announce': ['admin', 'staff'],
  'auth:refresh': ['admin', 'staff', 'doctor', 'patient', 'display', 'service', 'kiosk'],
};
