import { z } from 'zod';
import { QUEUE_EVENT_TYPES } from './queue.js';

/**
 * The events a clinic's webhook endpoints can subscribe to (docs/webhooks.md).
 * Subscriptions name events exactly or by family (`ticket.*`).
 */
export const WEBHOOK_EVENT_TYPES = [
  // Every queue event is a webhook event of the same name.
  ...QUEUE_EVENT_TYPES,
  'consult.started',
  'consult.ended',
  'recording.ready',
  'recording.purged',
  'notify.failed',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

const Subscription = z
  .string()
  .refine((s) => (WEBHOOK_EVENT_TYPES as readonly string[]).includes(s) || (s.endsWith('.*') && WEBHOOK_EVENT_TYPES.some((t) => t.startsWith(s.slice(0, -1)))), {
    message: `an event (${WEBHOOK_EVENT_TYPES.join(', ')}) or a family (ticket.*, consult.*, recording.*, notify.*)`,
  });

/** Whether an endpoint's subscriptions (names, or families like `ticket.*`) take this event. */
export const webhookSubscribed = (subscriptions: readonly string[], type: string) => subscriptions.some((s) => s === type || (s.endsWith('.*') && type.startsWith(s.slice(0, -1))));

/** Every Redis key of webhooks (one hash slot per clinic). */
export const webhookKeys = (clinic: string) => ({
  /** Hash: endpoint id → stored endpoint JSON (with its secrets). */
  endpoints: `ch:{${clinic}}:webhooks`,
  /** Stream of delivery attempts (WebhookDelivery JSON), capped. */
  deliveries: `ch:{${clinic}}:webhook-deliveries`,
});

/** `POST /api/clinics/:id/webhooks`: a new endpoint. */
export const WebhookEndpointInput = z.object({
  url: z
    .string()
    .url()
    .refine((u) => /^https?:\/\//.test(u), 'http or https'),
  events: z.array(Subscription).min(1).max(WEBHOOK_EVENT_TYPES.length),
  /** Off unless the clinic turns it on for this endpoint: payloads then carry the patient data the event has (ticket.issued: the name given at check-in). */
  includePatientData: z.boolean().default(false),
  description: z.string().max(200).optional(),
});
export type WebhookEndpointInput = z.input<typeof WebhookEndpointInput>;

/** An endpoint as the API lists it (never its secret, which is shown once: at creation and at each rotation). */
export interface WebhookEndpoint {
  id: string;
  clinic: string;
  url: string;
  events: string[];
  includePatientData: boolean;
  description?: string;
  createdAt: number;
  createdBy: string;
  /** When the secret was last rotated; the previous secret still signs (a second `v1=`) for WEBHOOK_PREVIOUS_SECRET_MS. */
  secretRotatedAt: number;
}

/** How long a rotated-out secret keeps signing beside the new one, so receivers can switch without losing a delivery. */
export const WEBHOOK_PREVIOUS_SECRET_MS = 24 * 3600 * 1000;

/** The body of every delivery (JSON). `id` is the event's: the same for every retry and every endpoint; dedupe on it. */
export interface WebhookPayload {
  id: string;
  type: WebhookEventType;
  clinic: string;
  /** When it happened, ms since the epoch. */
  occurredAt: number;
  data: Record<string, unknown>;
}

/** The headers of a delivery. The signature: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` (one `v1` per secret in force). */
export const WEBHOOK_HEADERS = {
  signature: 'x-clinic-hub-signature',
  event: 'x-clinic-hub-event',
  eventId: 'x-clinic-hub-event-id',
  attempt: 'x-clinic-hub-attempt',
} as const;

export type WebhookDeliveryStatus = 'retrying' | 'delivered' | 'failed';

/** One attempt's outcome, as `GET /api/clinics/:id/webhooks/deliveries` and `clinic webhooks` list them (newest first). */
export interface WebhookDelivery {
  eventId: string;
  type: WebhookEventType;
  endpoint: string;
  url: string;
  attempt: number;
  status: WebhookDeliveryStatus;
  /** The receiver's HTTP status; null when it did not answer (refused, timed out). */
  httpStatus: number | null;
  error?: string;
  durationMs: number;
  at: number;
}

export const WEBHOOK_QUEUE_NAME = 'webhooks';
export const WEBHOOK_QUEUE_PREFIX = 'ch:{webhooks}';
/**
 * Written before the replica wait that confirms deliveries (or an event)
 * were added to the webhooks queue, in the queue's slot: a replica that has
 * it has every job added before it, by this process or another (ReplicaAck).
 */
export const WEBHOOK_ACK_FENCE_KEY = `${WEBHOOK_QUEUE_PREFIX}:ack-fence`;

/**
 * An event handed to the hub's webhook dispatcher by another process (the
 * media-server's recordings worker, the notification worker): a job named
 * WEBHOOK_EVENT_JOB on the webhooks queue, whose id is `event.<id>` (the
 * same event handed twice is one job). A hub node's dispatcher turns it into
 * one delivery per subscribed endpoint. `data` never holds patient data;
 * `patientTicket` names the ticket whose check-in data an endpoint with
 * includePatientData gets.
 */
export interface WebhookEventJob {
  id: string;
  type: WebhookEventType;
  clinic: string;
  occurredAt: number;
  data: Record<string, unknown>;
  patientTicket?: string;
}
export const WEBHOOK_EVENT_JOB = 'event';
