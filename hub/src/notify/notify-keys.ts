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
  };
};

/** What a provider has accepted for one notification: `sending` or `sent` (no patient data). */
export const sendRecordKey = (jobId: string) => `${NOTIFY_QUEUE_PREFIX}:sent:${jobId}`;
