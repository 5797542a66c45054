import { Queue } from 'bullmq';
import { WEBHOOK_EVENT_JOB, WEBHOOK_QUEUE_NAME, WEBHOOK_QUEUE_PREFIX, webhookKeys, webhookSubscribed, type WebhookEndpoint, type WebhookEventJob } from '@clinic-hub/protocol';
import { closeOverRedis } from '../redis/close.js';
import { connectRedisClient, type RedisClient, type RedisTarget } from '../redis/connect.js';

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
 */
export class WebhookEvents {
  private readonly connection: RedisClient;
  private readonly queue: Queue<WebhookEventJob>;

  constructor(target: RedisTarget | string, name: string) {
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
  }

  /** `event.id` must be the same wherever and however often the event is handed over. False: no endpoint subscribes to it. */
  async emit(event: WebhookEventJob): Promise<boolean> {
    const endpoints = await this.connection.hvals(webhookKeys(event.clinic).endpoints);
    const subscribed = endpoints.some((json) => webhookSubscribed((JSON.parse(json) as WebhookEndpoint).events, event.type));
    if (subscribed) await this.queue.add(WEBHOOK_EVENT_JOB, event, { jobId: `event.${event.id}` });
    return subscribed;
  }

  /** Closes without waiting for a Redis that is gone. */
  async close(): Promise<void> {
    await closeOverRedis([this.connection], () => this.queue.close());
  }
}
