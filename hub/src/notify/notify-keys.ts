import { NOTIFY_QUEUE_PREFIX, clinicChannel } from '@clinic-hub/protocol';

/**
 * Redis names of the notify domain. Per-clinic data (contacts, inboxes, send
 * records) and the clinic's in-app channel share the clinic's `{clinic}` hash
 * tag like the queue's keys: on a Redis Cluster one slot, so a transaction
 * over them is atomic there too. The BullMQ queue (its name and prefix are in
 * protocol's job-queues) lives under its own `{notify}` tag.
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

/** Written before the replica wait of an enqueue that may be a repeat (ReplicaAck): a replica that has it has the first enqueue too. In the queue's slot. */
export const notifyAckFenceKey = `${NOTIFY_QUEUE_PREFIX}:ack-fence`;

/**
 * The sharded channel (SPUBLISH) of a clinic's in-app notices, `ch:{clinic}:notify`: every hub node SSUBSCRIBEs each
 * clinic's and emits a notice to its own sockets in the user's room (notify-live.ts). In the clinic's slot, so the
 * worker publishes it in the MULTI that stores the inbox entry and the send record.
 */
export const NOTIFY_CHANNEL_KIND = 'notify';

export const notifyChannel = (clinic: string) => clinicChannel(clinic, NOTIFY_CHANNEL_KIND);

/** The clinic of a notification id (`<clinic>.<idempotency key>`, NotificationService.jobId; clinic ids have no dot). */
export function clinicOfNotification(jobId: string): string {
  const dot = jobId.indexOf('.');
  if (dot <= 0) throw new Error(`not a notification id (<clinic>.<key>): ${jobId}`);
  return jobId.slice(0, dot);
}

/** What a provider has accepted for one notification: `sending` or `sent` (no patient data). In its clinic's slot. */
export const sendRecordKey = (jobId: string) => `ch:{${clinicOfNotification(jobId)}}:notify:sent:${jobId}`;

/**
 * Where send records were kept before they moved into their clinic's slot (one `{notify}` slot for all):
 * read, never written, so that a job begun by a worker of an earlier version is not sent again after an upgrade.
 * Such records expire NOTIFY_SEND_RECORD_DAYS after they were written.
 */
export const legacySendRecordKey = (jobId: string) => `${NOTIFY_QUEUE_PREFIX}:sent:${jobId}`;
