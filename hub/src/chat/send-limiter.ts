/**
 * A token bucket per connection: `perSecond` on average, bursts of
 * `burstSeconds` worth. `perSecond` 0 never limits.
 */
export class SendLimiter {
  private tokens: number;
  private updatedAt = performance.now();
  private readonly capacity: number;

  constructor(
    private readonly perSecond: number,
    burstSeconds = 5,
  ) {
    this.capacity = Math.max(1, perSecond * burstSeconds);
    this.tokens = this.capacity;
  }

  take(): boolean {
    if (this.perSecond === 0) return true;
    const now = performance.now();
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.updatedAt) / 1000) * this.perSecond);
    this.updatedAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
