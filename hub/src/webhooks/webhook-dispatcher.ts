import { Queue, Worker, UnrecoverableError, type Job } from 'bullmq';
import type { RedisClient } from '@clinic-hub/platform/redis';
import { WEBHOOK_ACK_FENCE_KEY, WEBHOOK_EVENT_JOB, WEBHOOK_HEADERS, WEBHOOK_QUEUE_NAME, WEBHOOK_QUEUE_PREFIX, type PatientInfo, type WebhookEventJob, type WebhookEventType, type WebhookPayload, webhookSubscribed } from '@clinic-hub/protocol';
import type { Logger } from '@clinic-hub/platform/logging';
import { ReplicaAck, closeOverRedis, connectRedisClientForJobs, type RedisTarget, type ReplicaAckPolicy } from '@clinic-hub/platform/redis';
import { appendAudit } from '../audit/audit-log.js';
import { HAND_OVER_WITHIN_MS, retryWithin } from '@clinic-hub/platform/webhook-events';
import { signWebhook } from './webhook-signature.js';
import { signingSecrets, type WebhookStore } from './webhook-store.js';

/** One delivery: an event to one endpoint. The body is made at each attempt (the secret may have rotated meanwhile). */
interface DeliveryJob {
  clinic: string;
  endpoint: string;
  event: Omit<WebhookPayload, 'data'> & { data: Record<string, unknown> };
  /** Present for events that have patient data: the ticket whose check-in data an endpoint with includePatientData gets. */
  patientTicket?: string;
}

/** How long finished deliveries stay in BullMQ: as long, a second enqueue of the same event (another hub node) is a no-op. */
const KEEP_DONE_SECONDS = 24 * 3600;
const CONCURRENCY = 8;

export interface WebhookDispatcherDeps {
  redis: RedisClient;
  redisTarget: RedisTarget;
  nodeId: string;
  store: WebhookStore;
  config: { timeoutMs: number; backoffMs: number; attempts: number };
  /** The hub's replica wait (HUB_REDIS_ACK_REPLICAS): deliveries count as added once that many replicas of the queue's shard hold them. */
  ack?: ReplicaAckPolicy;
  /** The patient data given at check-in, for endpoints with includePatientData (audited as read by the endpoint). */
  patientInfo: (clinic: string, ticketId: string) => Promise<PatientInfo | null>;
  logger: Logger;
}

type WebhookJob = DeliveryJob | WebhookEventJob;

/**
 * Webhooks through BullMQ: `publish` enqueues one job per subscribed
 * endpoint under the job id `<event id>.<endpoint>`, so the same event
 * published by several hub nodes is delivered once; every node runs a
 * worker that POSTs the signed body, and a failure (non-2xx, no answer
 * within the timeout, refused) is retried with exponential backoff.
 * Other processes hand their events over as WEBHOOK_EVENT_JOB jobs on the
 * same queue (platform's WebhookEvents): the worker publishes them here.
 *
 * With a replica wait (`ack`), deliveries count as added only once replicas
 * of the queue's shard hold them (WAIT; on a Redis Cluster at the master of
 * the `{webhooks}` slot): an event job completes, and a hub node stops
 * handing over an event it heard, only then. So a failover of the queue's
 * master loses no delivery of an event whose change was acknowledged (on
 * another shard, on a cluster). Deliveries are at least once: a delivery
 * made and then lost with its completion in a failover is made again, with
 * the same event id (docs/webhooks.md).
 */
export class WebhookDispatcher {
  private readonly queue: Queue<WebhookJob>;
  private readonly worker: Worker<WebhookJob>;
  private readonly connections: RedisClient[];
  private readonly ack: ReplicaAck | null;
  private closing = false;

  constructor(private readonly deps: WebhookDispatcherDeps) {
    const queueConnection = connectRedisClientForJobs(deps.redisTarget, `hub:${deps.nodeId}:webhooks-queue`);
    const workerConnection = connectRedisClientForJobs(deps.redisTarget, `hub:${deps.nodeId}:webhooks-worker`);
    this.connections = [queueConnection, workerConnection];
    for (const connection of this.connections) connection.on('error', () => undefined);
    this.queue = new Queue<WebhookJob>(WEBHOOK_QUEUE_NAME, {
      connection: queueConnection,
      prefix: WEBHOOK_QUEUE_PREFIX,
      defaultJobOptions: {
        attempts: deps.config.attempts,
        backoff: { type: 'exponential', delay: deps.config.backoffMs },
        removeOnComplete: { age: KEEP_DONE_SECONDS },
        removeOnFail: { age: 7 * KEEP_DONE_SECONDS },
      },
    });
    this.queue.on('error', () => undefined);
    const ack = deps.ack ? new ReplicaAck(queueConnection, deps.ack) : null;
    this.ack = ack?.enabled ? ack : null;
    this.worker = new Worker<WebhookJob>(WEBHOOK_QUEUE_NAME, (job) => this.run(job), {
      connection: workerConnection,
      prefix: WEBHOOK_QUEUE_PREFIX,
      concurrency: CONCURRENCY,
    });
    this.worker.on('error', (error) => deps.logger.debug({ err: error.message }, 'webhook worker connection problem'));
  }

  /**
   * An event of the clinic: one delivery per endpoint subscribed to it. `id` must be the same wherever the event is
   * published. Throws when Redis is away or (with `ack`) no replica confirmed the deliveries in time: publishing
   * again is safe.
   */
  async publish(clinic: string, type: WebhookEventType, id: string, occurredAt: number, data: Record<string, unknown>, patientTicket?: string): Promise<void> {
    const endpoints = (await this.deps.store.list(clinic)).filter((e) => webhookSubscribed(e.events, type));
    if (endpoints.length === 0) return;
    const ranOn = this.ack ? await this.ack.shardOf(WEBHOOK_ACK_FENCE_KEY) : null;
    await this.queue.addBulk(
      endpoints.map((endpoint) => ({
        name: type,
        data: { clinic, endpoint: endpoint.id, event: { id, type, clinic, occurredAt, data }, ...(patientTicket ? { patientTicket } : {}) },
        opts: { jobId: `${id}.${endpoint.id}` },
      })),
    );
    // Another hub node may have added them first, not yet replicated: the fence covers them too.
    if (this.ack && !(await this.ack.confirm({ key: WEBHOOK_ACK_FENCE_KEY, ranOn, fenceKey: WEBHOOK_ACK_FENCE_KEY }))) {
      throw new Error(`STORE_UNAVAILABLE: no replica confirmed the deliveries of ${id} in time`);
    }
  }

  /**
   * `publish`, tried again (with pauses up to 2 s) until it succeeds or a minute has passed: for the events a hub
   * node hears itself (queue changes, consultations), which nobody else hands over again. Rejects with the last
   * failure.
   */
  publishRetrying(...args: Parameters<WebhookDispatcher['publish']>): Promise<void> {
    return retryWithin(HAND_OVER_WITHIN_MS, () => this.closing, () => this.publish(...args));
  }

  private async run(job: Job<WebhookJob>): Promise<void> {
    if (job.name === WEBHOOK_EVENT_JOB) {
      const event = job.data as WebhookEventJob;
      await this.publish(event.clinic, event.type, event.id, event.occurredAt, event.data, event.patientTicket);
      return;
    }
    await this.deliver(job as Job<DeliveryJob>);
  }

  private async deliver(job: Job<DeliveryJob>): Promise<void> {
    const { clinic, event } = job.data;
    const endpoint = await this.deps.store.get(clinic, job.data.endpoint);
    if (!endpoint) throw new UnrecoverableError('WEBHOOK_NOT_FOUND: the endpoint was removed');
    let data = event.data;
    if (endpoint.includePatientData && job.data.patientTicket) {
      const patient = await this.deps.patientInfo(clinic, job.data.patientTicket);
      if (patient) {
        await appendAudit(this.deps.redis, clinic, { actor: `webhook:${endpoint.id}`, role: 'service', action: 'patient.read', subject: job.data.patientTicket, from: endpoint.url });
        data = { ...data, patient };
      }
    }
    const body = JSON.stringify({ ...event, data } satisfies WebhookPayload);
    const attempt = job.attemptsMade + 1;
    const started = Date.now();
    let httpStatus: number | null = null;
    let error: string | undefined;
    try {
      const response = await fetch(endpoint.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'ClinicHub-Webhooks/1',
          [WEBHOOK_HEADERS.signature]: signWebhook(body, signingSecrets(endpoint), Math.floor(Date.now() / 1000)),
          [WEBHOOK_HEADERS.event]: event.type,
          [WEBHOOK_HEADERS.eventId]: event.id,
          [WEBHOOK_HEADERS.attempt]: String(attempt),
        },
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.deps.config.timeoutMs),
      });
      httpStatus = response.status;
      await response.arrayBuffer().catch(() => undefined);
      if (response.status < 200 || response.status > 299) error = `HTTP ${response.status}`;
    } catch (failure) {
      const name = (failure as Error).name;
      error = name === 'TimeoutError' ? `no answer within ${this.deps.config.timeoutMs} ms` : `cannot connect (${((failure as Error).cause as Error | undefined)?.message ?? (failure as Error).message})`;
    }
    const last = attempt >= (job.opts.attempts ?? 1);
    await this.deps.store.logAttempt(clinic, {
      eventId: event.id,
      type: event.type,
      endpoint: endpoint.id,
      url: endpoint.url,
      attempt,
      status: error === undefined ? 'delivered' : last ? 'failed' : 'retrying',
      httpStatus,
      ...(error !== undefined ? { error } : {}),
      durationMs: Date.now() - started,
      at: Date.now(),
    });
    if (error !== undefined) throw new Error(error);
  }

  /** Stops the worker and the queue, without waiting for an unreachable Redis (a delivery in flight is then retried by another node once its job's lock lapses). */
  async close(): Promise<void> {
    this.closing = true;
    await closeOverRedis(this.connections, async (force) => {
      await this.worker.close(force).catch(() => undefined);
      await this.queue.close();
    });
  }
}
