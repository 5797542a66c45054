import type { RedisClient } from '@clinic-hub/platform/redis';
import type { Revocation } from '@clinic-hub/protocol';
import type { Logger } from '@clinic-hub/platform/logging';
import type { VerifiedToken } from '@clinic-hub/platform/tokens';

/** Every revocation in force, one hash for all clinics (field: what is revoked; value: the Revocation JSON). */
export const REVOCATIONS_KEY = 'ch:auth:revocations';
/** Each new revocation is published here; every hub node applies it to its sockets at once. */
export const REVOCATIONS_CHANNEL = 'ch:auth:revoked';

/**
 * How long a revocation is kept: longer than any token it covers can live.
 * Tokens are issued for at most 30 days (POST /api/tokens, npm run token)
 * and refreshed for at most a role's session maximum (at most 90 days).
 */
export const REVOCATION_KEPT_MS = 120 * 86_400_000;
/** A reload now and then, besides the one after every reconnect: a subscription can lose messages silently. */
const RELOAD_EVERY_MS = 60_000;

const fieldOf = (entry: Pick<Revocation, 'kind'> & Partial<{ id: string; clinic: string; sub: string }>): string =>
  entry.kind === 'token' ? `token:${entry.id}` : entry.kind === 'user' ? `user:${entry.clinic}:${entry.sub}` : `clinic:${entry.clinic}`;

/**
 * Whether a user or clinic revocation made at `at` (ms) covers a token issued at `iat` (s): tokens issued
 * before the second after `at`. The one that issues after a revocation (POST /api/tokens/revoke waits for
 * that second to pass) gets a token it does not cover.
 */
export function issuedBefore(iat: number, at: number): boolean {
  return iat < Math.ceil(at / 1000);
}

/**
 * The revocations in force, kept in memory on every hub node and checked at
 * connect, on every action and on refresh (no Redis round trip). Redis holds
 * them (a hash) and tells every node of a new one (pub/sub); a node that lost
 * its subscription reads the hash again when it is back, and every minute.
 */
export class RevocationList {
  private readonly entries = new Map<string, Revocation>();
  private readonly listeners: ((entry: Revocation) => void)[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly redis: RedisClient,
    private readonly subscriber: RedisClient,
    private readonly logger: Logger,
  ) {}

  /** Reads the revocations and subscribes to new ones; `onRevoked` hears of each new one (on this node or another). */
  async start(): Promise<void> {
    this.subscriber.on('message', (channel: string, raw: string) => {
      if (channel !== REVOCATIONS_CHANNEL) return;
      const entry = parse(raw);
      if (entry) this.add(entry);
    });
    await this.subscriber.subscribe(REVOCATIONS_CHANNEL);
    await this.reload();
    // 'ready' again: the connection was lost and is back (ioredis resubscribes); what was published meanwhile is in the hash.
    this.subscriber.on('ready', () => void this.reload().catch((error: Error) => this.logger.warn({ err: error.message }, 'cannot reload revocations')));
    this.timer = setInterval(() => void this.reload().catch(() => undefined), RELOAD_EVERY_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  onRevoked(listener: (entry: Revocation) => void): void {
    this.listeners.push(listener);
  }

  /** The revocation that covers this token, or null. */
  covering(token: Pick<VerifiedToken, 'jti' | 'sid' | 'clinic' | 'sub' | 'iat'>): Revocation | null {
    const now = Date.now();
    const live = (entry: Revocation | undefined) => (entry && entry.until > now ? entry : null);
    const byId = (token.jti && live(this.entries.get(`token:${token.jti}`))) || (token.sid && live(this.entries.get(`token:${token.sid}`)));
    if (byId) return byId;
    for (const field of [`user:${token.clinic}:${token.sub}`, `clinic:${token.clinic}`]) {
      const entry = live(this.entries.get(field));
      if (entry && issuedBefore(token.iat, entry.at)) return entry;
    }
    return null;
  }

  /** Stores and announces a revocation; in force on this node at once, on the others within milliseconds. */
  async revoke(entry: Revocation): Promise<void> {
    const json = JSON.stringify(entry);
    const replies = await this.redis.multi().hset(REVOCATIONS_KEY, fieldOf(entry), json).publish(REVOCATIONS_CHANNEL, json).exec();
    for (const [error] of replies ?? []) if (error) throw error;
    this.add(entry);
  }

  /** The revocations in force, newest first. */
  list(): Revocation[] {
    const now = Date.now();
    return [...this.entries.values()].filter((e) => e.until > now).sort((a, b) => b.at - a.at);
  }

  private add(entry: Revocation): void {
    const field = fieldOf(entry);
    const known = this.entries.get(field);
    // The same user or clinic revoked again: the later one covers more.
    if (known && known.at >= entry.at) return;
    this.entries.set(field, entry);
    for (const listener of this.listeners) {
      try {
        listener(entry);
      } catch (error) {
        this.logger.error({ err: error }, 'applying a revocation failed');
      }
    }
  }

  private async reload(): Promise<void> {
    const stored = await this.redis.hgetall(REVOCATIONS_KEY);
    const now = Date.now();
    const expired: string[] = [];
    for (const [field, raw] of Object.entries(stored)) {
      const entry = parse(raw);
      if (!entry || entry.until <= now) expired.push(field);
      else this.add(entry);
    }
    for (const [field, entry] of this.entries) if (entry.until <= now) this.entries.delete(field);
    if (expired.length > 0) await this.redis.hdel(REVOCATIONS_KEY, ...expired);
  }
}

function parse(raw: string): Revocation | null {
  try {
    const entry = JSON.parse(raw) as Revocation;
    return typeof entry === 'object' && entry !== null && typeof entry.at === 'number' && typeof entry.until === 'number' ? entry : null;
  } catch {
    return null;
  }
}
