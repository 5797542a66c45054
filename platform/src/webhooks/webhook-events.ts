import { Queue } from 'bullmq';
import { WEBHOOK_ACK_FENCE_KEY, WEBHOOK_EVENT_JOB, WEBHOOK_QUEUE_NAME, WEBHOOK_QUEUE_PREFIX, webhookKeys, webhookSubscribed, type WebhookEndpoint, type WebhookEventJob } from '@clinic-hub/protocol';
import { closeOverRedis } from '../redis/close.js';
import { connectRedisClient, type RedisClient, type RedisTarget } from '../redis/connect.js';
import { ReplicaAck, type ReplicaAckPolicy } from '../redis/replica-ack.js';

/**
 * Hands a clinic's events to the hub's webhook dispatcher from a process
 * that is not a hub node (the media-server's recordings worker, the
 * notification worker): one job on the webhooks queue per event, which a hub
 * node turns into one signed delivery per subscribed endpoint
 * (docs/webhooks.md). Events wait in Redis while no hub node runs. The job id
 * is the event's, and so are the ids of the deliveries it makes (kept a
 * day), so an event handed over twice (a retried job) is delivered once. An
 * event no endpoint of the clinic subscribes to is not handed over at all:
 * nothing naming it is left in Redis.
 *
 * With `ack` (the service's replica wait, e.g. NOTIFY_REDIS_ACK_REPLICAS),
 * `emit` resolves only once that many replicas of the queue's shard hold the
 * event's job, else it throws WebhookEventNotConfirmed (handing it over again
 * is safe): a job that completes after handing its event over (on another
 * shard, on a Redis Cluster) cannot outlive the event in a failover.
 */
export class WebhookEvents {
  private readonly connection: RedisClient;
  private readonly queue: Queue<WebhookEventJob>;
  private readonly ack: ReplicaAck | null;
  private closed = false;

  constructor(target: RedisTarget | string, name: string, options: { ack?: ReplicaAckPolicy } = {}) {
    // Not a blocking connection: with Redis away, a hand-over fails (and the job handing it over is retried) instead of waiting.
    this.connection = connectRedisClient(target, `${name}:webhook-events`);
    this.connection.on('error', () => undefined);
    this.queue = new Queue<WebhookEventJob>(WEBHOOK_QUEUE_NAME, {
      connection: this.connection,
      prefix: WEBHOOK_QUEUE_PREFIX,
      defaultJobOptions: {
        attempts: 10,
        backoff: { type: 'exponential', delay: 1000 },
        // The deliveries it makes are kept a day under ids of their own: they deduplicate a second hand-over.
        removeOnComplete: true,
        removeOnFail: { age: 7 * 24 * 3600 },
      },
    });
    this.queue.on('error', () => undefined);
    const ack = options.ack ? new ReplicaAck(this.connection, options.ack) : null;
    this.ack = ack?.enabled ? ack : null;
  }

  /** `event.id` must be the same wherever and however often the event is handed over. False: no endpoint subscribes to it. */
  async emit(event: WebhookEventJob): Promise<boolean> {
    const endpoints = await this.connection.hvals(webhookKeys(event.clinic).endpoints);
    const subscribed = endpoints.some((json) => webhookSubscribed((JSON.parse(json) as WebhookEndpoint).events, event.type));
    if (!subscribed) return false;
    const ranOn = this.ack ? await this.ack.shardOf(WEBHOOK_ACK_FENCE_KEY) : null;
    await this.queue.add(WEBHOOK_EVENT_JOB, event, { jobId: `event.${event.id}` });
    // Handed over before (a retry): that job may not be replicated yet; the fence covers it.
    if (this.ack && !(await this.ack.confirm({ key: WEBHOOK_ACK_FENCE_KEY, ranOn, fenceKey: WEBHOOK_ACK_FENCE_KEY }))) {
      throw new WebhookEventNotConfirmed(`no replica confirmed webhook event ${event.id} in time`);
    }
    return true;
  }

  /** `emit`, tried again until it succeeds (a failover takes seconds) or `withinMs` passed or the instance closed; rejects with the last failure. */
  emitRetrying(event: WebhookEventJob, withinMs = HAND_OVER_WITHIN_MS): Promise<boolean> {
    return retryWithin(withinMs, () => this.closed, () => this.emit(event));
  }

  /** Closes without waiting for a Redis that is gone. */
  async close(): Promise<void> {
    this.closed = true;
    await closeOverRedis([this.connection], () => this.queue.close());
  }
}

/** The event was added, but not enough replicas confirmed it in time: hand it over again (the same id is the same event). */
export class WebhookEventNotConfirmed extends Error {
  override readonly name = 'WebhookEventNotConfirmed';
  readonly code = 'STORE_UNAVAILABLE';
}

/** How long a webhook event or its deliveries are handed over again before the failure is given up on (and logged). */
export const HAND_OVER_WITHIN_MS = 60_000;

/**
 * `work` until it resolves, with pauses from 200 ms doubling to 2 s, for up to `withinMs` or until `stopped()`:
 * for hand-overs that are safe to repeat (the same ids are the same jobs). Rejects with the last failure.
 */
export async function retryWithin<T>(withinMs: number, stopped: () => boolean, work: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + withinMs;
  for (let pause = 200; ; pause = Math.min(pause * 2, 2000)) {
    try {
      return await work();
    } catch (error) {
      if (stopped() || Date.now() + pause > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }
}
