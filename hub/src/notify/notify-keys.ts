import { NOTIFY_QUEUE_PREFIX } from '@clinic-hub/protocol';

/**
 * Redis names of the notify domain. Per-clinic data shares the clinic's
 * `{clinic}` hash tag like the queue's keys; the BullMQ queue (its name and
 * prefix are in protocol's job-queues) and the send records live under their
 * own `{notify}` tag (one Cluster slot).
 */

export const notifyClinicKeys = (clinic: string) => {
  const prefix = `ch:{${clinic}}:notify:`;
  return {
    /** A ticket's contact and preferences (patient data, expires with the clinic's retention). */
    ticketContact: (ticketId: string) => `${prefix}contact:ticket:${ticketId}`,
    /** An appointment's contact, time and reminder job ids (patient data, expires after the appointment). */
    appointment: (appointmentId: string) => `${prefix}appointment:${appointmentId}`,
    /** A ticket's Web Push subscription (patient data, expires with the clinic's retention). */
    pushSubscription: (ticketId: string) => `${prefix}push:ticket:${ticketId}`,
    /** In-app notices a user's page has not shown yet: hash of notice id → InAppNotice JSON. */
    inbox: (userId: string) => `${prefix}inbox:${userId}`,
    /** A user's pages in view: sorted set of socket id → until when (ms); kept fresh while the page is open. */
    inView: (userId: string) => `${prefix}in-view:${userId}`,
  };
};

/** LINE linking: one-time link codes and the tickets a LINE user is linked to, under their own `{line}` tag. */
export const lineLinkKeys = {
  /** A link code → LinkTarget ({ clinic, locale, ticket } or { clinic, locale, appointment, startsAt }); deleted when used. */
  code: (code: string) => `ch:{line}:link:${code}`,
  /** A LINE user's linked tickets and appointments: set of `clinic/ticket` and `clinic/appt:<id>` (patient data, expires with retention). */
  user: (lineUserId: string) => `ch:{line}:user:${lineUserId}`,
  /** The code an appointment's reminders carry until it is used (expires at the appointment time). */
  appointmentCode: (clinic: string, appointmentId: string) => `ch:{line}:appt:${clinic}/${appointmentId}`,
};

/** Written before the replica wait of an enqueue that may be a repeat (ReplicaAck): a replica that has it has the first enqueue too. */
export const notifyAckFenceKey = `${NOTIFY_QUEUE_PREFIX}:ack-fence`;

/** What a provider has accepted for one notification: `sending` or `sent` (no patient data). */
export const sendRecordKey = (jobId: string) => `${NOTIFY_QUEUE_PREFIX}:sent:${jobId}`;
