import { fail, type Ack, type CheckinResult, type NotifyContactInput, type PatientInfo, type Priority, type ProtocolError } from '@clinic-hub/protocol';
import type { TokenIssuer } from '@clinic-hub/platform/token-issuer';
import { newTicketId, type QueueService } from './queue-service.js';

export interface PatientCheckinDeps {
  queue: QueueService;
  tokens: TokenIssuer;
  tokenTtlSeconds: (role: string) => number;
  /** Base URL for links handed to patients (their ticket page). */
  publicUrl: () => string;
  /** Stores a patient's notification contact; absent when notifications are not wired. */
  setTicketContact?: (clinic: string, ticketId: string, contact: NotifyContactInput) => Promise<{ ok: true } | { ok: false; error: ProtocolError }>;
}

export interface PatientCheckin {
  dept: string;
  priority: Priority;
  patient?: PatientInfo | undefined;
  /** How the patient hears of their turn; `address` is filled in for in-app (their own page). */
  notify?: ({ channel: 'in_app' } & Omit<Extract<NotifyContactInput, { channel: 'in_app' }>, 'channel' | 'address'>) | NotifyContactInput | undefined;
  requestId?: string | undefined;
  /** The arrival of an appointment (QueueService.checkin). */
  appointment?: { id: string; startsAt: number };
}

/**
 * Every check-in, whoever makes it (reception, the kiosk, a patient's phone,
 * an appointment's arrival): the ticket, the patient's contact, and a token
 * and link for the patient's own page. The contact is stored before the
 * ticket exists, so the notification worker's first look at the new queue
 * already finds it (a ticket checked in 1 ahead gets its "1 ahead" notice).
 */
export async function checkinPatient(deps: PatientCheckinDeps, clinic: string, input: PatientCheckin): Promise<Ack<CheckinResult>> {
  const ticketId = newTicketId();
  const contactFor = (id: string): NotifyContactInput | null =>
    input.notify ? (input.notify.channel === 'in_app' ? { ...input.notify, address: `patient:${id}` } : input.notify) : null;
  const storeContact = async (id: string) => {
    const contact = contactFor(id);
    if (!contact) return undefined;
    if (!deps.setTicketContact) return fail('NOTIFY_CHANNEL_DISABLED', 'notifications are not configured on this hub');
    const stored = await deps.setTicketContact(clinic, id, contact);
    return stored.ok ? { ok: true as const } : { ok: false as const, error: stored.error };
  };
  let notify = await storeContact(ticketId);
  const result = await deps.queue.checkin(
    clinic,
    { dept: input.dept, priority: input.priority, ...(input.patient ? { patient: input.patient } : {}), ...(input.requestId ? { requestId: input.requestId } : {}) },
    ticketId,
    input.appointment,
  );
  if (!result.ok) return result;
  const issuedId = result.event.ticket.id;
  // A replayed requestId returns the ticket made the first time: the contact belongs to that one.
  if (issuedId !== ticketId) notify = await storeContact(issuedId);
  const reply: CheckinResult = { event: result.event, replayed: result.replayed, ...(await patientLink(deps, clinic, issuedId)) };
  // The ticket exists whatever happened to the contact: that part is reported on its own.
  return { ok: true, ...(notify ? { ...reply, notify } : reply) };
}

/** A token for the patient's own ticket page, scoped to the ticket, and the page's address. */
export async function patientLink(deps: PatientCheckinDeps, clinic: string, ticketId: string): Promise<{ patientToken: string; patientUrl: string }> {
  const { token } = await deps.tokens.issue({ sub: `patient:${ticketId}`, role: 'patient', clinic, ticket: ticketId }, deps.tokenTtlSeconds('patient'));
  return { patientToken: token, patientUrl: `${deps.publicUrl()}/ticket#token=${token}` };
}
