import { createHash } from 'node:crypto';
import { DelayedError, UnrecoverableError, Worker, type Job } from 'bullmq';
import { NOTIFY_QUEUE_NAME, NOTIFY_QUEUE_PREFIX, type NotifyChannel, type NotifyContact } from '@clinic-hub/protocol';
import { ClinicRegistry } from '../clinics/clinic-registry.js';
import { AppointmentStore, arrivalUrl } from '../appointments/index.js';
import type { Logger } from '@clinic-hub/platform/logging';
import { createHubLogger } from '../hub-logger.js';
import { QueueService } from '../queue/index.js';
import { ReplicaAck, closeOverRedis, connectRedisClient, connectRedisClientForJobs, endConnection } from '@clinic-hub/platform/redis';
import { continueTrace, jobTraceId, runInTrace } from '@clinic-hub/platform/tracing';
import { WebhookEvents } from '@clinic-hub/platform/webhook-events';
import { DeliveryError, type ChannelSender, type Delivery, type OutgoingNotice } from './channels/channel-types.js';
import { EmailChannel } from './channels/email-channel.js';
import { InAppChannel } from './channels/in-app-channel.js';
import { LineChannel } from './channels/line-channel.js';
import { LineLinkCodes } from './line-link-codes.js';
import { SmsChannel } from './channels/sms-channel.js';
import { WebPushSender } from './channels/web-push-sender.js';
import { PatientPageStore } from './patient-page-store.js';
import { PhoneRoute } from './phone-route.js';
import type { NotifyConfig } from './notify-config.js';
import { NotifyError, type NotificationJobData, type NotificationOutcome } from './notify-types.js';
import { NotificationService, toDeadLetter } from './notification-service.js';
import { QueueWatcher, nextKey } from './queue-watcher.js';
import { quietHoursEnd } from './quiet-hours.js';
import { SendRecords, type SendStart } from './send-record.js';
import { renderNotice } from './templates.js';
import { NotifyWorkerMetrics, type JobOutcome } from './worker-metrics.js';

type NotificationJob = Job<NotificationJobData, NotificationOutcome>;

export interface NotificationWorkerOptions {
  clinics?: ClinicRegistry;
  logger?: Logger;
  /** Watch the clinics' queues and enqueue 3-ahead, 1-ahead and called notices (default true). */
  watchQueues?: boolean;
  /** Clock for quiet hours (tests). */
  now?: () => number;
  /** The HTTPS agent for Web Push requests (tests: one trusting a local push service's certificate). */
  webPushAgent?: import('node:https').Agent;
}

export interface RunningNotificationWorker {
  service: NotificationService;
  worker: Worker<NotificationJobData, NotificationOutcome>;
  watcher: QueueWatcher | null;
  /** Channels this worker can deliver on. */
  channels: NotifyChannel[];
  logger: Logger;
  /** Job durations and queue depths, for the worker's /metrics (worker-status-server.ts). */
  metrics: NotifyWorkerMetrics;
  /** Redis up, and whether the worker is still taking jobs: for /healthz and /readyz. */
  status(): { node: string; redis: 'up' | 'down'; running: boolean };
  /** Finishes the jobs in hand, then closes every connection. */
  close(): Promise<void>;
}

/** A UUID derived from the notification id: the same provider idempotency key on every attempt. */
export function providerKeyOf(jobId: string): string {
  const h = createHash('sha256').update(jobId).digest('hex');
  const variant = ((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/**
 * The delivery process: a BullMQ worker on the notifications queue and (by
 * default) the queue watcher that turns waiting-room changes into notices.
 * Run any number of them on one Redis; each notification is delivered once.
 */
export async function startNotificationWorker(config: NotifyConfig, options: NotificationWorkerOptions = {}): Promise<RunningNotificationWorker> {
  const logger = (options.logger ?? createHubLogger(config.logLevel, config.nodeId)).child({ domain: 'notify' });
  const clinics = options.clinics ?? ClinicRegistry.fromDirectory(config.clinicsDir);
  const now = options.now ?? Date.now;
  const redis = connectRedisClient(config.redis, `${config.nodeId}:notify-worker-cmd`);
  redis.on('error', () => undefined);
  const service = new NotificationService({ config, clinics, redis, logger, now });
  const records = new SendRecords(redis, config.sendRecordSeconds);
  // The send record (and an in-app notice with it) is on a replica before the job completes: a failover that brings
  // the job back (its completion lost) finds it sent. The WAIT holds up only this worker's own connection; on a Redis
  // Cluster it goes to the master of the record's shard (its clinic's), which may not be the queue's.
  const sentAck = new ReplicaAck(redis, config.redisAck);
  const queue = new QueueService(redis, clinics);

  const senders = new Map<NotifyChannel, ChannelSender>();
  const { channels } = config;
  const webPush = config.webPush
    ? new WebPushSender({ ...config.webPush, timeoutMs: config.sendTimeoutMs, ...(options.webPushAgent ? { agent: options.webPushAgent } : {}) })
    : null;
  const pages = new PatientPageStore(redis);
  const metrics = new NotifyWorkerMetrics(config.nodeId, service.queue, (clinic) => pages.inboxDepth(clinic), () => clinics.ids());
  let phoneRoute: PhoneRoute | null = null;
  if (channels.in_app) {
    const inApp = new InAppChannel(redis, {
      inboxSeconds: (clinic) => (clinics.get(clinic)?.patientDataRetentionHours ?? 24) * 3600,
      pages,
      webPush,
      onPushProblem: (problem) => logger.warn(problem, 'web push not delivered; the notice goes another way (the page, or SMS)'),
      onPush: (result) => metrics.pushFinished(result),
    });
    senders.set('in_app', inApp);
    phoneRoute = new PhoneRoute(inApp, pages);
  }
  if (channels.email) senders.set('email', new EmailChannel({ ...channels.email, timeoutMs: config.sendTimeoutMs }));
  if (channels.line) senders.set('line', new LineChannel(channels.line));
  if (channels.sms) senders.set('sms', new SmsChannel(channels.sms));
  for (const { channel, missing } of config.disabled) {
    logger.warn({ channel, missing }, `notification channel ${channel} is disabled (not configured); its notices fail with NOTIFY_CHANNEL_DISABLED`);
  }

  const appointments = new AppointmentStore(redis);
  /** An appointment reminder carries its arrival (code and link) when the appointment was stored for it. */
  const arrivalOf = async (data: NotificationJobData): Promise<{ code: string; url: string | null } | null> => {
    if (data.recipient.type !== 'appointment') return null;
    const record = await appointments.get(data.clinic, data.recipient.appointmentId);
    if (!record || record.startsAt !== data.recipient.startsAt) return null;
    return { code: record.code, url: config.publicUrl ? arrivalUrl(config.publicUrl, data.clinic, record.code) : null };
  };

  const lineCodes = config.lineLink && channels.line ? new LineLinkCodes(redis, config.lineLink.basicId, now) : null;
  /** An appointment reminder not sent by LINE carries a one-time link to get the next ones on LINE (LINE linking on). */
  const lineLinkOf = async (data: NotificationJobData, contact: NotifyContact): Promise<string | null> => {
    if (!lineCodes || data.recipient.type !== 'appointment' || contact.channel === 'line') return null;
    return (await lineCodes.forAppointment(data.clinic, data.recipient.appointmentId, data.recipient.startsAt, contact.locale))?.url ?? null;
  };

  const contactFor = async (data: NotificationJobData): Promise<{ contact: NotifyContact } | { skipped: 'no_contact' | 'cancelled' }> => {
    const { recipient } = data;
    if (recipient.type === 'test') return { contact: recipient.contact };
    if (recipient.type === 'ticket') {
      const contact = await service.contacts.ticketContact(data.clinic, recipient.ticketId);
      return contact ? { contact } : { skipped: 'no_contact' };
    }
    const appointment = await service.contacts.appointment(data.clinic, recipient.appointmentId);
    if (!appointment || appointment.startsAt !== recipient.startsAt) return { skipped: 'cancelled' };
    return { contact: appointment.contact };
  };

  /** A queue notice about a ticket that has moved on is dropped, not sent late. */
  const isStale = async (data: NotificationJobData): Promise<boolean> => {
    if (data.recipient.type !== 'ticket') return false;
    const ticket = await queue.ticket(data.clinic, data.recipient.ticketId);
    if (data.kind === 'queue_called') return ticket?.status !== 'called';
    // A reply or an admission for a visit that is over is of no use.
    if (data.kind === 'chat_reply' || data.kind === 'consult_ready') return !ticket || ticket.status === 'done' || ticket.status === 'cancelled' || ticket.status === 'no_show';
    if (data.kind !== 'queue_3_ahead' && data.kind !== 'queue_1_ahead') return false;
    if (ticket?.status !== 'waiting') return true;
    // "3 ahead" held back (quiet hours, retries) until after "1 ahead" was made would mislead.
    return data.kind === 'queue_3_ahead' && (await service.hasNotification(data.clinic, nextKey(data.recipient.ticketId)));
  };

  const deliver = async (sender: ChannelSender, notice: OutgoingNotice): Promise<Delivery> => {
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        controller.abort();
        reject(new DeliveryError('NOTIFY_PROVIDER_TIMEOUT', `${sender.channel} after ${config.sendTimeoutMs} ms`, { permanent: false, notAccepted: false }));
      }, config.sendTimeoutMs);
    });
    try {
      return await Promise.race([sender.send(notice, controller.signal), timeout]);
    } finally {
      clearTimeout(timer);
    }
  };

  /**
   * A ticket's notice for a patient with a phone number goes one way only:
   * their page in view, else Web Push, else SMS (phone-route.ts). Every other
   * notice goes on its contact's channel.
   */
  const deliverOneWay = async (
    sender: ChannelSender,
    notice: OutgoingNotice,
    data: NotificationJobData,
    contact: NotifyContact,
    start: SendStart,
    attempt: number,
  ): Promise<Delivery & { via?: NotifyChannel }> => {
    const inApp = senders.get('in_app');
    if (!phoneRoute || !inApp || !PhoneRoute.applies(data, contact)) return deliver(sender, notice);
    const ticket = data.recipient.ticketId;
    // The send record the in-app channel writes names the way taken.
    const toInApp = (n: OutgoingNotice) => deliver(inApp, { ...n, sentRecord: { ...n.sentRecord, value: records.sentValue(`in_app:${n.id}`) } });
    // An interrupted attempt that had chosen SMS may have reached the provider: SMS again, with the same key.
    if (!(start.state === 'interrupted' && start.via === 'sms')) {
      const routed = await phoneRoute.pageOrPush(ticket, notice, toInApp);
      if (routed) return { ...routed, via: 'in_app' };
      if (data.kind === 'chat_reply') return { ...(await phoneRoute.keepForPage(ticket, notice, toInApp)), via: 'in_app' };
    }
    await records.noteVia(notice.id, attempt, 'sms');
    return deliver(sender, notice);
  };

  const processJob = async (job: NotificationJob, token?: string): Promise<NotificationOutcome> => {
    const data = job.data;
    const jobId = job.id!;
    const log = logger.child({ job: jobId, clinic: data.clinic, kind: data.kind, attempt: job.attemptsMade + 1 });
    const clinic = clinics.get(data.clinic);
    if (!clinic) throw new UnrecoverableError(new NotifyError('CLINIC_NOT_FOUND', data.clinic).message);

    const found = await contactFor(data);
    if ('skipped' in found) {
      log.info({ outcome: 'skipped', reason: found.skipped }, 'notification not sent');
      return { outcome: 'skipped', reason: found.skipped };
    }
    const { contact } = found;
    if (await isStale(data)) {
      log.info({ outcome: 'skipped', reason: 'stale' }, 'notification no longer applies');
      return { outcome: 'skipped', reason: 'stale' };
    }

    if (!data.urgent) {
      const at = now();
      const quietEnd = quietHoursEnd(at, clinic.timezone, contact.quietHours === undefined ? config.quietHours : contact.quietHours);
      const deadline = data.recipient.type === 'appointment' ? data.recipient.startsAt : Infinity;
      if (quietEnd !== null && quietEnd < deadline) {
        log.info({ until: quietEnd }, 'quiet hours: notification delayed');
        await job.moveToDelayed(Date.now() + (quietEnd - at), token);
        throw new DelayedError();
      }
    }

    // Staff see which channel a failed notice was for; the write is only made on failure.
    const noteChannel = () =>
      data.channel === contact.channel ? undefined : job.updateData({ ...data, channel: contact.channel }).catch(() => undefined);

    const sender = senders.get(contact.channel);
    if (!sender) {
      await noteChannel();
      throw new UnrecoverableError(new NotifyError('NOTIFY_CHANNEL_DISABLED', contact.channel).message);
    }

    const recordRanOn = sentAck.enabled ? await sentAck.shardOf(records.key(jobId)) : null;
    const start = await records.begin(jobId, job.attemptsMade + 1);
    if (start.state === 'sent') {
      log.info({ outcome: 'already_sent' }, 'notification was already sent');
      return { outcome: 'already_sent', providerId: start.providerId };
    }
    if (start.state === 'interrupted') {
      log.warn({ channel: contact.channel, previousAttempt: start.attempt }, 'resuming an interrupted send with the same provider idempotency key');
    }
    const notice: OutgoingNotice = {
      id: jobId,
      clinic: data.clinic,
      kind: data.kind,
      locale: contact.locale,
      to: contact.address,
      rendered: renderNotice(data.kind, contact.locale, data.vars, clinic, await arrivalOf(data), await lineLinkOf(data, contact)),
      ...(data.vars.ticketNumber ? { ticketNumber: data.vars.ticketNumber } : {}),
      providerKey: providerKeyOf(jobId),
      resumed: start.state === 'interrupted',
      sentRecord: { key: records.key(jobId), value: records.sentValue(`${contact.channel}:${jobId}`), ttlSeconds: config.sendRecordSeconds },
    };
    let delivery: Delivery & { via?: NotifyChannel };
    try {
      delivery = await deliverOneWay(sender, notice, data, contact, start, job.attemptsMade + 1);
    } catch (error) {
      await noteChannel();
      if (!(error instanceof DeliveryError)) {
        log.error({ err: error instanceof Error ? error.message : String(error) }, 'unexpected error while sending');
        throw new NotifyError('INTERNAL', 'unexpected error while sending');
      }
      if (error.options.notAccepted) await records.clear(jobId);
      log.warn({ channel: contact.channel, code: error.code, detail: error.detail, permanent: error.options.permanent }, 'send failed');
      if (error.options.permanent) throw new UnrecoverableError(error.message);
      throw new NotifyError(error.code, error.detail);
    }
    if (!delivery.recorded) await records.markSent(jobId, delivery.providerId);
    const channel = delivery.via ?? contact.channel;
    if (!(await sentAck.confirm({ key: records.key(jobId), ranOn: recordRanOn }).catch(() => false))) {
      // Sent all the same. Should the master die before a replica has the record, a rerun resends with the same provider key.
      log.warn({ channel }, 'no replica confirmed the send record in time (NOTIFY_REDIS_ACK_REPLICAS)');
    }
    log.info({ channel, outcome: 'sent', providerId: delivery.providerId }, 'notification sent');
    return { outcome: 'sent', channel, providerId: delivery.providerId };
  };

  /** How an attempt that threw ended: later again (quiet hours, a retry) or for good. */
  const outcomeOfFailure = (job: NotificationJob, error: unknown): JobOutcome => {
    if (error instanceof DelayedError) return 'delayed';
    if (error instanceof UnrecoverableError) return 'dead_letter';
    return job.attemptsMade + 1 >= (job.opts.attempts ?? 1) ? 'dead_letter' : 'retry';
  };
  // Each attempt continues the trace of whoever enqueued the job: every log line of it carries trace_id.
  const processTracedJob = async (job: NotificationJob, token?: string): Promise<NotificationOutcome> => {
    const started = performance.now();
    const seconds = () => (performance.now() - started) / 1000;
    try {
      const result = await runInTrace(continueTrace(job.data.traceparent), () => processJob(job, token));
      metrics.jobFinished(job.data.kind, result.outcome, seconds());
      return result;
    } catch (error) {
      metrics.jobFinished(job.data.kind, outcomeOfFailure(job, error), seconds());
      throw error;
    }
  };

  const workerConnection = connectRedisClientForJobs(config.redis, `${config.nodeId}:notify-worker`);
  workerConnection.on('error', () => undefined);
  const worker = new Worker<NotificationJobData, NotificationOutcome>(NOTIFY_QUEUE_NAME, processTracedJob, {
    connection: workerConnection,
    prefix: NOTIFY_QUEUE_PREFIX,
    concurrency: config.concurrency,
    lockDuration: config.lockMs,
    stalledInterval: config.stalledCheckMs,
    maxStalledCount: 1,
    autorun: false,
  });
  worker.on('error', (error) => logger.error({ err: error.message }, 'notification worker error'));
  // A dead letter is told to the clinic's webhooks (notify.failed) through the hub's dispatcher.
  const webhookEvents = new WebhookEvents(config.redis, `${config.nodeId}:notify-worker`, { ack: config.redisAck });
  worker.on('failed', (job, error) => {
    if (!job) return;
    const final = error instanceof UnrecoverableError || error.name === 'UnrecoverableError' || job.attemptsMade >= (job.opts.attempts ?? 1);
    if (final) {
      logger.warn({ job: job.id, clinic: job.data.clinic, kind: job.data.kind, reason: job.failedReason, ...jobTraceId(job.data) }, 'notification moved to dead letters');
      const deadLetter = toDeadLetter(job);
      const failedAt = deadLetter.failedAt ?? Date.now();
      const { recipient } = job.data;
      // Again until a replica holds it (NOTIFY_REDIS_ACK_REPLICAS): nobody else hands a dead letter's event over.
      webhookEvents
        .emitRetrying({
          // One per failure: a dead letter retried (clinic notify retry) that fails again is a new event. BullMQ ids take no ':'.
          id: `${job.data.clinic}-n-${String(job.id)}-${failedAt}`.replaceAll(':', '_'),
          type: 'notify.failed',
          clinic: job.data.clinic,
          occurredAt: failedAt,
          data: { notification: deadLetter },
          ...(recipient.type === 'ticket' ? { patientTicket: recipient.ticketId } : {}),
        })
        .catch((failure: Error) => logger.warn({ job: job.id, err: failure.message }, 'cannot hand notify.failed to the webhooks'));
    }
  });
  void worker.run().catch((error: unknown) => logger.error({ err: (error as Error).message }, 'notification worker stopped'));
  await worker.waitUntilReady();

  let watcher: QueueWatcher | null = null;
  if (options.watchQueues ?? true) {
    watcher = new QueueWatcher({
      subscriber: connectRedisClient(config.redis, `${config.nodeId}:notify-watch`, { shardedSubscriber: true }),
      queue,
      notifications: service,
      clinics,
      logger,
    });
    await watcher.start();
  }
  logger.info({ channels: [...senders.keys()], concurrency: config.concurrency, watchQueues: watcher !== null }, 'notification worker ready');

  let stopping = false;
  return {
    service,
    worker,
    watcher,
    channels: [...senders.keys()],
    logger,
    metrics,
    status: () => ({ node: config.nodeId, redis: workerConnection.status === 'ready' ? 'up' : 'down', running: !stopping && worker.isRunning() }),
    async close() {
      stopping = true;
      await watcher?.stop();
      await closeOverRedis([workerConnection], (force) => worker.close(force));
      await Promise.all([...senders.values()].map((s) => s.close?.()));
      await service.close();
      await webhookEvents.close();
      await endConnection(redis);
    },
  };
}
