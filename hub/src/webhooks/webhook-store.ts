import { randomBytes } from 'node:crypto';
import type { RedisClient } from '@clinic-hub/platform/redis';
import { WEBHOOK_PREVIOUS_SECRET_MS, webhookKeys, type WebhookDelivery, type WebhookEndpoint } from '@clinic-hub/protocol';
import { newOpaqueId } from '@clinic-hub/platform/ids';

const DELIVERIES_KEPT = 10_000;

/** An endpoint as stored: with its secret, and the previous one while it still signs. */
export interface StoredEndpoint extends WebhookEndpoint {
  secret: string;
  previousSecret?: string;
  previousSecretUntil?: number;
}

export const newSecret = () => `whsec_${randomBytes(24).toString('base64url')}`;

export const publicEndpoint = ({ secret: _secret, previousSecret: _previous, previousSecretUntil: _until, ...endpoint }: StoredEndpoint): WebhookEndpoint => endpoint;

/** The secrets that sign a delivery now: the current one, and the previous one within its grace period. */
export const signingSecrets = (endpoint: StoredEndpoint, now = Date.now()): string[] =>
  endpoint.previousSecret && (endpoint.previousSecretUntil ?? 0) > now ? [endpoint.secret, endpoint.previousSecret] : [endpoint.secret];

/** A clinic's webhook endpoints and the log of delivery attempts, in Redis. */
export class WebhookStore {
  constructor(private readonly redis: RedisClient) {}

  async list(clinic: string): Promise<StoredEndpoint[]> {
    const all = await this.redis.hvals(webhookKeys(clinic).endpoints);
    return all.map((json) => JSON.parse(json) as StoredEndpoint).sort((a, b) => a.createdAt - b.createdAt);
  }

  async get(clinic: string, id: string): Promise<StoredEndpoint | null> {
    const json = await this.redis.hget(webhookKeys(clinic).endpoints, id);
    return json ? (JSON.parse(json) as StoredEndpoint) : null;
  }

  async create(clinic: string, input: Omit<WebhookEndpoint, 'id' | 'clinic' | 'createdAt' | 'secretRotatedAt'>): Promise<StoredEndpoint> {
    const now = Date.now();
    const endpoint: StoredEndpoint = { ...input, id: `wh_${newOpaqueId(9)}`, clinic, createdAt: now, secretRotatedAt: now, secret: newSecret() };
    await this.redis.hset(webhookKeys(clinic).endpoints, endpoint.id, JSON.stringify(endpoint));
    return endpoint;
  }

  async remove(clinic: string, id: string): Promise<boolean> {
    return (await this.redis.hdel(webhookKeys(clinic).endpoints, id)) === 1;
  }

  /** A new secret; the old one keeps signing beside it for WEBHOOK_PREVIOUS_SECRET_MS. */
  async rotate(clinic: string, id: string): Promise<StoredEndpoint | null> {
    const endpoint = await this.get(clinic, id);
    if (!endpoint) return null;
    const now = Date.now();
    const rotated: StoredEndpoint = { ...endpoint, previousSecret: endpoint.secret, previousSecretUntil: now + WEBHOOK_PREVIOUS_SECRET_MS, secret: newSecret(), secretRotatedAt: now };
    await this.redis.hset(webhookKeys(clinic).endpoints, id, JSON.stringify(rotated));
    return rotated;
  }

  async logAttempt(clinic: string, delivery: WebhookDelivery): Promise<void> {
    await this.redis.xadd(webhookKeys(clinic).deliveries, 'MAXLEN', '~', DELIVERIES_KEPT, '*', 'd', JSON.stringify(delivery));
  }

  /** The newest attempts first. */
  async deliveries(clinic: string, count: number): Promise<WebhookDelivery[]> {
    const entries = await this.redis.xrevrange(webhookKeys(clinic).deliveries, '+', '-', 'COUNT', count);
    return entries.map(([, fields]) => JSON.parse(fields[1]!) as WebhookDelivery);
  }
}
