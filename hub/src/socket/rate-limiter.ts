import { TokenBucket } from '@clinic-hub/platform/token-bucket';

export interface RateLimit {
  perSecond: number;
  burst: number;
}

export type RateDecision = { ok: true } | { ok: false; scope: 'socket' | 'user'; retryAfterMs: number };

/** One socket's view of the limiter: its own bucket, and its user's, shared with the user's other sockets. */
export interface SocketRateLimit {
  take(): RateDecision;
  /** Call when the socket disconnects. */
  release(): void;
}

/** How many attaches between sweeps of the buckets of users who left. */
const SWEEP_EVERY = 256;

/**
 * Rate limits on client events for one hub node: a bucket per socket and a
 * bucket per user (token sub) shared by all of that user's sockets on the
 * node, so that opening more sockets does not buy more events. A user's
 * bucket outlives their sockets until it has filled up again, so that
 * reconnecting does not refill it either.
 */
export class EventRateLimiter {
  private readonly users = new Map<string, { bucket: TokenBucket; sockets: number }>();
  private attaches = 0;

  constructor(
    private readonly limits: { socket: RateLimit; user: RateLimit },
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** `user` null: only the socket's own bucket applies (display tokens, often shared by a clinic's screens). */
  attach(user: string | null): SocketRateLimit {
    if (++this.attaches % SWEEP_EVERY === 0) this.sweep();
    const own = new TokenBucket(this.limits.socket.perSecond, this.limits.socket.burst, this.now);
    let shared: { bucket: TokenBucket; sockets: number } | undefined;
    if (user !== null && this.limits.user.perSecond > 0) {
      shared = this.users.get(user);
      if (!shared) {
        shared = { bucket: new TokenBucket(this.limits.user.perSecond, this.limits.user.burst, this.now), sockets: 0 };
        this.users.set(user, shared);
      }
      shared.sockets += 1;
    }
    let released = false;
    return {
      take: () => {
        // Both or neither: a refused event uses up no token of either bucket.
        if (!own.hasToken()) return { ok: false, scope: 'socket', retryAfterMs: own.msUntilNext() };
        if (shared && !shared.bucket.hasToken()) return { ok: false, scope: 'user', retryAfterMs: shared.bucket.msUntilNext() };
        own.take();
        shared?.bucket.take();
        return { ok: true };
      },
      release: () => {
        if (released || !shared || user === null) return;
        released = true;
        shared.sockets -= 1;
        if (shared.sockets === 0 && shared.bucket.full()) this.users.delete(user);
      },
    };
  }

  /**
   * One action of `user` outside any socket (an API request): it takes a token from the same bucket as the
   * user's socket events, so that HTTP does not buy more than sockets do.
   */
  takeFor(user: string): RateDecision {
    if (this.limits.user.perSecond <= 0) return { ok: true };
    if (++this.attaches % SWEEP_EVERY === 0) this.sweep();
    let shared = this.users.get(user);
    if (!shared) {
      shared = { bucket: new TokenBucket(this.limits.user.perSecond, this.limits.user.burst, this.now), sockets: 0 };
      this.users.set(user, shared);
    }
    if (!shared.bucket.hasToken()) return { ok: false, scope: 'user', retryAfterMs: shared.bucket.msUntilNext() };
    shared.bucket.take();
    return { ok: true };
  }

  /** Forgets the buckets of users without a socket that have filled up. */
  sweep(): void {
    for (const [user, entry] of this.users) if (entry.sockets === 0 && entry.bucket.full()) this.users.delete(user);
  }

  /** Users with a bucket on this node (tests, metrics). */
  trackedUsers(): number {
    return this.users.size;
  }
}
