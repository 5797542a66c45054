import { Queue, type Job } from 'bullmq';
import type { RedisClient } from '@clinic-hub/platform/redis';
import {
  type DeadLetter,
  type ErrorCode,
  isErrorCode,
  NOTIFY_QUEUE_NAME,
  NOTIFY_QUEUE_PREFIX,
  NotifyContact,
  type NotifyContactInput,
  type NotifyKind,
  type NotifyOverview,
  type NotifyRecipientRef,
  type PendingNotice,
  protocolError,
  fail,
  type Ack,
} from '@clinic-hub/protocol';
import type { ClinicRegistry } from '../clinics/clinic-registry.js';
import type { Logger } from '@clinic-hub/platform/logging';
import type { Redis } from 'ioredis';
import { ReplicaAck, closeOverRedis, connectRedisClient, endConnection, isCluster } from '@clinic-hub/platform/redis';
import { tracedJob } from '@clinic-hub/platform/tracing';
import { newOpaqueId } from '@clinic-hub/platform/ids';
import { clinicJobIds, delayedDueAt, type ScoredJobId } from './clinic-jobs.js';
import { ContactStore } from './contact-store.js';
import { notifyAckFenceKey, notifyClinicKeys } from './notify-keys.js';
import type { NotifyConfig } from './notify-config.js';
import type { NoticeVars, NotificationJobData, NotificationOutcome, Recipient } from './notify-types.js';
import { quietHoursEnd } from './quiet-hours.js';

export type NotificationQueue = Queue<NotificationJobData, NotificationOutcome>;
type NotificationJob = Job<NotificationJobData, NotificationOutcome>;

export const REMINDER_OFFSETS_MS = { reminder_24h: 24 * 3600_000, reminder_1h: 3600_000 } as const;
export type ReminderKind = keyof typeof REMINDER_OFFSETS_MS;

/** Completed jobs stay this long, so the same idempotency key enqueued again is recognised without a send record lookup. */
const COMPLETED_KEPT_SECONDS = 24 * 3600;
const KEY_PATTERN = /^[A-Za-z0-9_.-]{1,160}$/;
const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export interface EnqueueInput {
  clinic: string;
  kind: NotifyKind;
  recipient: Recipient;
  vars?: NoticeVars;
  /** Unique per notification within the clinic: the same key enqueued twice is one notification. */
  idempotencyKey: string;
  /** Urgent notices are sent during quiet hours. */
  urgent?: boolean;
  /** When to send, ms since the epoch (default: now). Non-urgent notices falling in quiet hours wait for their end. */
  at?: number;
}

export interface ScheduleRemindersInput {
  clinic: string;
  appointmentId: string;
  /** Appointment time, ms since the epoch. */
  startsAt: number;
  contact: NotifyContactInput;
  dept?: string;
  room?: string;
  kinds?: ReminderKind[];
}

export interface NotificationServiceOptions {
  config: NotifyConfig;
  clinics: ClinicRegistry;
  /** Command connection for contacts; made from `config.redis` (and closed by `close`) when omitted. */
  redis?: RedisClient;
  /** Where connection trouble is reported (without it, it is only retried). */
  logger?: Logger;
  now?: () => number;
}

/**
 * The notify domain's API for the rest of the hub: contacts at check-in,
 * appointment reminders, idempotent enqueueing, dead letters. Jobs carry ids
 * and public facts only; addresses are read from the contact store when a
 * notice is sent.
 */
export class NotificationService {
  readonly queue: NotificationQueue;
  readonly contacts: ContactStore;
  private readonly redis: RedisClient;
  private readonly ownsRedis: boolean;
  private readonly queueConnection: RedisClient;
  /** With NOTIFY_REDIS_ACK_REPLICAS: the wait for replicas on the connection every write of this service goes through. */
  private readonly ack: ReplicaAck | null;
  private readonly now: () => number;

  constructor(private readonly options: NotificationServiceOptions) {
    const { config } = options;
    this.ownsRedis = !options.redis;
    this.redis = options.redis ?? connectRedisClient(config.redis, `${config.nodeId}:notify-cmd`);
    this.queueConnection = connectRedisClient(config.redis, `${config.nodeId}:notify-queue`);
    // ioredis reconnects by itself; the hub's own connection logs Redis outages.
    this.queueConnection.on('error', () => undefined);
    if (this.ownsRedis) this.redis.on('error', () => undefined);
    const ack = new ReplicaAck(this.queueConnection, config.redisAck);
    this.ack = ack.enabled ? ack : null;
    // With a replica wait, contacts are written on the queue's connection: on one Redis one WAIT there covers a
    // contact and its jobs (they replicate in the order they were sent), and it holds up nobody else's commands. On a
    // Redis Cluster a contact (its clinic's slot) and its jobs (the queue's `{notify}` slot) may be on two shards:
    // each is waited for on its own shard (`confirmed`).
    this.contacts = new ContactStore(this.ack ? this.queueConnection : this.redis);
    this.now = options.now ?? Date.now;
    this.queue = new Queue<NotificationJobData, NotificationOutcome>(NOTIFY_QUEUE_NAME, {
      connection: this.queueConnection,
      prefix: NOTIFY_QUEUE_PREFIX,
      defaultJobOptions: {
        attempts: config.attempts,
        backoff: { type: 'exponential', delay: config.backoffMs },
        removeOnComplete: { age: COMPLETED_KEPT_SECONDS },
        removeOnFail: { age: config.deadLetterSeconds },
      },
    });
    // An EventEmitter's unheard 'error' would end the process.
    this.queue.on('error', (error: Error) => options.logger?.warn({ err: error.message }, 'notification queue: Redis error'));
  }

  /** The notification id (BullMQ job id) of an idempotency key. */
  static jobId(clinic: string, idempotencyKey: string): string {
    return `${clinic}.${idempotencyKey}`;
  }

  /**
   * Stores how a ticket's patient wants queue notices (3 ahead, 1 ahead,
   * called). Call at check-in; kept for the clinic's patient data retention.
   */
  async setTicketContact(clinic: string, ticketId: string, contact: NotifyContactInput): Promise<Ack> {
    const config = this.options.clinics.get(clinic);
    if (!config) return fail('CLINIC_NOT_FOUND');
    if (!ID_PATTERN.test(ticketId)) return fail('QUEUE_TICKET_NOT_FOUND');
    const parsed = this.parseContact(contact);
    if (!parsed.ok) return parsed;
    const key = notifyClinicKeys(clinic).ticketContact(ticketId);
    const ranOn = await this.shardOf(key);
    await this.contacts.setTicketContact(clinic, ticketId, parsed.contact, Math.round(config.patientDataRetentionHours * 3600));
    return (await this.confirmed([{ key, ranOn }])) ?? { ok: true };
  }

  async clearTicketContact(clinic: string, ticketId: string): Promise<void> {
    await this.contacts.clearTicketContact(clinic, ticketId);
  }

  /**
   * Adds one notification. The same idempotency key enqueued again is the
   * same job (BullMQ job id), and a key already sent is not sent again (the
   * worker's send record), so callers may retry freely.
   */
  async enqueue(input: EnqueueInput, contactHint?: NotifyContact): Promise<Ack<{ id: string; sendAt: number }>> {
    const clinic = this.options.clinics.get(input.clinic);
    if (!clinic) return fail('CLINIC_NOT_FOUND');
    if (!KEY_PATTERN.test(input.idempotencyKey)) return fail('NOTIFY_KEY_INVALID');
    const id = NotificationService.jobId(input.clinic, input.idempotencyKey);
    const now = this.now();
    const urgent = input.urgent ?? false;
    let sendAt = Math.max(now, input.at ?? now);
    if (!urgent) {
      const contact = contactHint ?? (await this.contactOf(input.clinic, input.recipient));
      const quietEnd = quietHoursEnd(sendAt, clinic.timezone, contact?.quietHours === undefined ? this.options.config.quietHours : contact.quietHours);
      const deadline = input.recipient.type === 'appointment' ? input.recipient.startsAt : Infinity;
      // A reminder that quiet hours would push past the appointment is sent on time: late is useless.
      if (quietEnd !== null && quietEnd < deadline) sendAt = quietEnd;
    }
    const data: NotificationJobData = {
      clinic: input.clinic,
      kind: input.kind,
      recipient: input.recipient,
      vars: input.vars ?? {},
      urgent,
      enqueuedAt: now,
      // The action or request being handled (in the worker's queue watcher, the queue action's, when known).
      ...tracedJob(),
    };
    const ranOn = await this.shardOf(notifyAckFenceKey);
    await this.queue.add(input.kind, data, { jobId: id, delay: Math.max(0, sendAt - now) });
    // The key may have been enqueued before (a retry), its job not yet replicated: the fence covers it too.
    return (await this.confirmed([{ key: notifyAckFenceKey, ranOn, fence: true }])) ?? { ok: true, id, sendAt };
  }

  /**
   * A notice about a ticket that is not a queue milestone: the clinic replied
   * in the patient's chat, or the patient was admitted to their online
   * consultation. Sent on the ticket's contact; chat replies only where they
   * cost nothing (the page, Web Push, LINE), never by SMS or e-mail.
   * (e-mail contacts get none; SMS contacts get them in the page or by Web Push.)
   */
  async noticeForTicket(
    clinic: string,
    ticket: { id: string; number: string; dept: string },
    kind: Extract<NotifyKind, 'chat_reply' | 'consult_ready'>,
    key: string,
  ): Promise<Ack<{ id: string } | { skipped: 'no_contact' | 'channel' }>> {
    const contact = await this.contacts.ticketContact(clinic, ticket.id);
    if (!contact) return { ok: true, skipped: 'no_contact' };
    // A patient with a phone number gets chat replies in their page or by Web Push, never by SMS (phone-route.ts).
    const pageReachable = contact.channel !== 'email' && (contact.channel !== 'sms' || Boolean(this.options.config.channels.in_app));
    if (kind === 'chat_reply' && !pageReachable) return { ok: true, skipped: 'channel' };
    const added = await this.enqueue(
      {
        clinic,
        kind,
        recipient: { type: 'ticket', ticketId: ticket.id },
        vars: { ticketNumber: ticket.number, dept: ticket.dept },
        idempotencyKey: `ticket.${ticket.id}.${kind}.${key}`,
        urgent: kind === 'consult_ready',
      },
      contact,
    );
    return added.ok ? { ok: true, id: added.id } : added;
  }

  /**
   * A test notice from the manager's console: to the address given, on its
   * channel, now (urgent: quiet hours do not hold it). Each call is a new
   * notification; the address stays in the job only (never listed).
   */
  async sendTest(clinic: string, contact: NotifyContactInput): Promise<Ack<{ id: string }>> {
    const parsed = this.parseContact(contact);
    if (!parsed.ok) return parsed;
    const added = await this.enqueue(
      { clinic, kind: 'test', recipient: { type: 'test', contact: parsed.contact }, vars: {}, idempotencyKey: `test.${newOpaqueId(9)}`, urgent: true },
      parsed.contact,
    );
    return added.ok ? { ok: true, id: added.id } : added;
  }

  /** Whether a notification with this key is queued, sent or dead-lettered (pruned completed jobs aside). */
  async hasNotification(clinic: string, idempotencyKey: string): Promise<boolean> {
    return (await this.queue.getJobState(NotificationService.jobId(clinic, idempotencyKey))) !== 'unknown';
  }

  /**
   * Schedules an appointment's reminders (24 h and 1 h before by default) as
   * delayed jobs, which live in Redis and so survive worker restarts.
   * Reminders whose time has passed are left out. Scheduling the same
   * appointment and time again changes nothing; a new time replaces the old
   * reminders.
   */
  async scheduleAppointmentReminders(
    input: ScheduleRemindersInput,
  ): Promise<Ack<{ reminders: { id: string; kind: ReminderKind; sendAt: number }[] }>> {
    const clinic = this.options.clinics.get(input.clinic);
    if (!clinic) return fail('CLINIC_NOT_FOUND');
    if (!ID_PATTERN.test(input.appointmentId)) return fail('INVALID_PAYLOAD', 'appointmentId');
    if (!Number.isSafeInteger(input.startsAt)) return fail('INVALID_PAYLOAD', 'startsAt');
    if (input.dept && !clinic.departments.some((d) => d.id === input.dept)) return fail('QUEUE_DEPT_NOT_FOUND', input.dept);
    if (input.room && !clinic.departments.some((d) => d.rooms.some((r) => r.id === input.room))) return fail('QUEUE_ROOM_NOT_FOUND', input.room);
    const parsed = this.parseContact(input.contact);
    if (!parsed.ok) return parsed;
    const now = this.now();
    if (input.startsAt <= now) return fail('NOTIFY_APPOINTMENT_PAST');

    const appointmentKey = notifyClinicKeys(input.clinic).appointment(input.appointmentId);
    const contactRanOn = await this.shardOf(appointmentKey);
    const previous = await this.contacts.appointment(input.clinic, input.appointmentId);
    if (previous && previous.startsAt !== input.startsAt) await this.removeJobs(previous.jobIds);
    // A patient who linked LINE keeps it while the booking system sends the contact it gave before (a moved appointment).
    const linkedFrom = previous?.linkedFrom;
    const keepsLine = linkedFrom !== undefined && linkedFrom.channel === parsed.contact.channel && linkedFrom.address === parsed.contact.address;
    const contact = keepsLine ? previous!.contact : parsed.contact;

    const kinds = [...new Set(input.kinds ?? (['reminder_24h', 'reminder_1h'] as ReminderKind[]))];
    const due = kinds
      .map((kind) => ({ kind, at: input.startsAt - REMINDER_OFFSETS_MS[kind] }))
      .filter((reminder) => reminder.at >= now);
    const keyOf = (kind: ReminderKind) => `appt.${input.appointmentId}.${input.startsAt}.${kind}`;
    const retentionMs = clinic.patientDataRetentionHours * 3600_000;
    await this.contacts.setAppointment(
      input.clinic,
      input.appointmentId,
      {
        contact,
        ...(keepsLine ? { linkedFrom } : {}),
        startsAt: input.startsAt,
        ...(input.dept ? { dept: input.dept } : {}),
        ...(input.room ? { room: input.room } : {}),
        jobIds: due.map((r) => NotificationService.jobId(input.clinic, keyOf(r.kind))),
      },
      input.startsAt + retentionMs,
    );
    const reminders: { id: string; kind: ReminderKind; sendAt: number }[] = [];
    for (const reminder of due) {
      const added = await this.enqueue(
        {
          clinic: input.clinic,
          kind: reminder.kind,
          recipient: { type: 'appointment', appointmentId: input.appointmentId, startsAt: input.startsAt },
          vars: { startsAt: input.startsAt, ...(input.dept ? { dept: input.dept } : {}), ...(input.room ? { room: input.room } : {}) },
          idempotencyKey: keyOf(reminder.kind),
          at: reminder.at,
        },
        contact,
      );
      if (!added.ok) return added;
      reminders.push({ id: added.id, kind: reminder.kind, sendAt: added.sendAt });
    }
    // On one Redis each enqueue waited for its own writes and the contact's before them; with none due, or on a
    // Redis Cluster (the contact on its clinic's shard), the contact's own wait.
    if (due.length === 0 || isCluster(this.queueConnection)) {
      const unconfirmed = await this.confirmed([{ key: appointmentKey, ranOn: contactRanOn }]);
      if (unconfirmed) return unconfirmed;
    }
    return { ok: true, reminders };
  }

  /**
   * Removes an appointment's reminders and its contact. A reminder already
   * being sent cannot be removed; the worker drops it when it finds the
   * appointment gone.
   */
  async cancelAppointmentReminders(clinic: string, appointmentId: string): Promise<Ack<{ removed: number }>> {
    if (!this.options.clinics.get(clinic)) return fail('CLINIC_NOT_FOUND');
    const record = await this.contacts.appointment(clinic, appointmentId);
    if (!record) return fail('NOTIFY_APPOINTMENT_NOT_FOUND');
    const key = notifyClinicKeys(clinic).appointment(appointmentId);
    const [contactRanOn, queueRanOn] = await Promise.all([this.shardOf(key), this.shardOf(notifyAckFenceKey)]);
    await this.contacts.deleteAppointment(clinic, appointmentId);
    const removed = await this.removeJobs(record.jobIds);
    return (await this.confirmed([{ key, ranOn: contactRanOn }, { key: notifyAckFenceKey, ranOn: queueRanOn }])) ?? { ok: true, removed };
  }

  /** Notifications that failed for good or ran out of attempts, newest first; only one clinic's with `clinic`. */
  async listDeadLetters(options: { clinic?: string; start?: number; count?: number } = {}): Promise<DeadLetter[]> {
    const start = options.start ?? 0;
    const count = options.count ?? 100;
    if (options.clinic === undefined) {
      const jobs = await this.queue.getFailed(start, start + count - 1);
      return jobs.filter((job): job is NotificationJob => Boolean(job?.id)).map(toDeadLetter);
    }
    const { failed } = await clinicJobIds(this.redis, this.queue, options.clinic);
    return (await this.jobsOf(newestFirst(failed).slice(start, start + count))).map(toDeadLetter);
  }

  /**
   * Counts by state, the latest dead letters and the next pending notices of
   * one clinic (null: every clinic). Ids and public facts only, as in the jobs.
   */
  async overview(clinic: string | null, options: { count?: number } = {}): Promise<NotifyOverview> {
    const count = options.count ?? 20;
    const now = this.now();
    const ids = await clinicJobIds(this.redis, this.queue, clinic);
    const completedSince = now - COMPLETED_KEPT_SECONDS * 1000;
    const soonestFirst = [...ids.delayed].sort((a, b) => a.score - b.score);
    const [deadLetters, pending] = await Promise.all([
      this.jobsOf(newestFirst(ids.failed).slice(0, count)),
      this.jobsOf(soonestFirst.slice(0, count)),
    ]);
    const dueAt = new Map(soonestFirst.map((entry) => [entry.id, delayedDueAt(entry.score)]));
    return {
      clinic: clinic ?? '*',
      checkedAt: now,
      counts: {
        waiting: ids.waiting,
        delayed: ids.delayed.length,
        active: ids.active,
        completed: ids.completed.filter((entry) => entry.score >= completedSince).length,
        failed: ids.failed.length,
      },
      completedWithinSeconds: COMPLETED_KEPT_SECONDS,
      deadLetters: deadLetters.map(toDeadLetter),
      pending: pending.map((job) => toPendingNotice(job, dueAt.get(job.id!) ?? job.timestamp + job.delay)),
    };
  }

  /**
   * Sends a dead letter again with a fresh set of attempts. With `clinic`,
   * only that clinic's: another clinic's is AUTH_WRONG_CLINIC.
   */
  async retryDeadLetter(id: string, options: { clinic?: string } = {}): Promise<Ack> {
    const job = (await this.queue.getJob(id)) as NotificationJob | undefined;
    if (!job || (await job.getState()) !== 'failed') return fail('NOTIFY_DEAD_LETTER_NOT_FOUND', id);
    if (options.clinic !== undefined && job.data.clinic !== options.clinic) return fail('AUTH_WRONG_CLINIC', 'the dead letter belongs to another clinic');
    await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
    return { ok: true };
  }

  /** The shard a write to `key` goes through now (ReplicaAck.shardOf), taken before the write; null without a replica wait. */
  private async shardOf(key: string): Promise<Redis | null> {
    return this.ack ? this.ack.shardOf(key) : null;
  }

  /**
   * Null once enough replicas hold every write this service made so far
   * (NOTIFY_REDIS_ACK_REPLICAS; at once without it), else STORE_UNAVAILABLE:
   * the change is made, and the same call again (same idempotency key) is
   * the same change. `writes`: a key of each change and the shard it went
   * through (`shardOf` before it); `fence` for a change that may have been
   * made earlier (a repeated enqueue): the key is written first, so the wait
   * covers that earlier change. On one Redis one WAIT covers them all; on a
   * Redis Cluster each shard is waited for, and a shard whose master changed
   * since the write is not confirmed.
   */
  private async confirmed(writes: { key: string; ranOn: Redis | null; fence?: boolean }[]): Promise<ReturnType<typeof fail> | null> {
    if (!this.ack) return null;
    const fenced = writes.find((w) => w.fence);
    const waits = isCluster(this.queueConnection) ? writes : [fenced ?? writes[0]!];
    for (const write of waits) {
      const confirmed = await this.ack.confirm({ key: write.key, ranOn: write.ranOn, ...(write.fence ? { fenceKey: write.key } : {}) });
      if (!confirmed) return fail('STORE_UNAVAILABLE', 'no replica confirmed the notification in time (NOTIFY_REDIS_ACK_REPLICAS)');
    }
    return null;
  }

  async close(): Promise<void> {
    await closeOverRedis([this.queueConnection], () => this.queue.close());
    if (this.ownsRedis) await endConnection(this.redis);
  }

  private parseContact(input: NotifyContactInput): { ok: true; contact: NotifyContact } | { ok: false; error: ReturnType<typeof protocolError> } {
    const parsed = NotifyContact.safeParse(input);
    if (!parsed.success) {
      const field = parsed.error.issues[0]?.path.join('.') || 'contact';
      return fail('NOTIFY_CONTACT_INVALID', field);
    }
    if (!this.options.config.channels[parsed.data.channel]) return fail('NOTIFY_CHANNEL_DISABLED', parsed.data.channel);
    return { ok: true, contact: parsed.data };
  }

  private async contactOf(clinic: string, recipient: Recipient): Promise<NotifyContact | null> {
    if (recipient.type === 'test') return recipient.contact;
    if (recipient.type === 'ticket') return this.contacts.ticketContact(clinic, recipient.ticketId);
    return (await this.contacts.appointment(clinic, recipient.appointmentId))?.contact ?? null;
  }

  /** The jobs of these ids, in order; jobs removed meanwhile are left out. */
  private async jobsOf(entries: ScoredJobId[]): Promise<NotificationJob[]> {
    const jobs = await Promise.all(entries.map((entry) => this.queue.getJob(entry.id) as Promise<NotificationJob | undefined>));
    return jobs.filter((job): job is NotificationJob => Boolean(job?.id));
  }

  private async removeJobs(jobIds: string[]): Promise<number> {
    let removed = 0;
    for (const id of jobIds) removed += await this.queue.remove(id);
    return removed;
  }
}

const STALLED_REASON = /stalled more than allowable limit/i;

const newestFirst = (entries: ScoredJobId[]) => [...entries].sort((a, b) => b.score - a.score);

/** A job's last failure as a protocol code and a reason without patient data (the worker's own reasons have none). */
function lastError(job: NotificationJob): { code: ErrorCode; reason: string } {
  const reason = job.failedReason ?? '';
  const prefix = /^([A-Z_]+):/.exec(reason)?.[1];
  const code: ErrorCode = prefix && isErrorCode(prefix) ? prefix : STALLED_REASON.test(reason) ? 'NOTIFY_WORKER_LOST' : 'INTERNAL';
  return { code, reason: code === 'INTERNAL' ? 'unexpected error (see the worker log)' : reason };
}

/** What staff see of a job: the fields every listing shares. */
function publicFacts(job: NotificationJob) {
  const { recipient } = job.data;
  const ref: NotifyRecipientRef =
    recipient.type === 'ticket'
      ? { type: 'ticket', ticketId: recipient.ticketId }
      : recipient.type === 'appointment'
        ? { type: 'appointment', appointmentId: recipient.appointmentId }
        : { type: 'test' };
  return {
    id: job.id!,
    clinic: job.data.clinic,
    kind: job.data.kind,
    recipient: ref,
    ticketNumber: job.data.vars.ticketNumber ?? null,
    channel: job.data.channel ?? null,
  };
}

/** A job that failed for good as staff, the console and webhooks (notify.failed) see it: no patient data. */
export function toDeadLetter(job: NotificationJob): DeadLetter {
  return {
    ...publicFacts(job),
    ...lastError(job),
    attempts: job.attemptsMade,
    enqueuedAt: job.data.enqueuedAt,
    failedAt: job.finishedOn ?? null,
  };
}

function toPendingNotice(job: NotificationJob, sendAt: number): PendingNotice {
  return {
    ...publicFacts(job),
    sendAt,
    attempts: job.attemptsMade,
    lastError: job.attemptsMade > 0 && job.failedReason ? lastError(job) : null,
    enqueuedAt: job.data.enqueuedAt,
  };
}
