import type { ErrorCode, NotifyChannel, NotifyContact, NotifyKind, TracedJob } from '@clinic-hub/protocol';

/** Who a notification is for; the address is looked up when it is sent, so jobs hold no patient data. */
export type Recipient =
  | { type: 'ticket'; ticketId: string }
  /** `startsAt` is the appointment time the reminder was scheduled for: a moved or cancelled appointment makes it stale. */
  | { type: 'appointment'; appointmentId: string; startsAt: number }
  /** A test send: the address an admin gave (theirs, not a patient's), kept only in the job. */
  | { type: 'test'; contact: NotifyContact };

/** What is shown to the patient besides the clinic's own names: public facts only. */
export interface NoticeVars {
  ticketNumber?: string;
  /** Room id in the clinic's configuration; the template shows its name. */
  room?: string;
  dept?: string;
  /** Tickets ahead when the notice was made. */
  ahead?: number;
  /** Appointment time, ms since the epoch. */
  startsAt?: number;
}

/**
 * One BullMQ job. Everything in it may appear in logs and dead-letter lists.
 * Its `traceparent` (TracedJob) is that of the action or request that
 * enqueued it: the worker's logs continue that trace.
 */
export interface NotificationJobData extends TracedJob {
  clinic: string;
  kind: NotifyKind;
  recipient: Recipient;
  vars: NoticeVars;
  /** Urgent notices ignore quiet hours ("you are called"). */
  urgent: boolean;
  enqueuedAt: number;
  /** The channel of the contact, recorded by the worker when an attempt fails (for the dead-letter list). */
  channel?: NotifyChannel;
}

export type NotificationOutcome =
  | { outcome: 'sent'; channel: string; providerId: string }
  | { outcome: 'already_sent'; providerId: string }
  | { outcome: 'skipped'; reason: 'no_contact' | 'stale' | 'cancelled' };

/** A failure with a protocol code; the code leads the job's failedReason (`CODE: detail`). */
export class NotifyError extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly detail: string,
  ) {
    super(`${code}: ${detail}`);
  }
}
