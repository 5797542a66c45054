/**
 * A token bucket: `perSecond` tokens a second on average, at most `burst`
 * at once. `perSecond` 0 never limits.
 */
export class TokenBucket {
  private tokens: number;
  private updatedAt: number;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = burst;
    this.updatedAt = now();
  }

  /** Takes one token; false when there is none. */
  take(): boolean {
    if (!this.hasToken()) return false;
    if (this.perSecond > 0) this.tokens -= 1;
    return true;
  }

  /** Whether take() would succeed now (takes nothing). */
  hasToken(): boolean {
    if (this.perSecond === 0) return true;
    this.refill();
    return this.tokens >= 1;
  }

  /** How long until the next token, in ms (0 when one is there). */
  msUntilNext(): number {
    if (this.perSecond === 0) return 0;
    this.refill();
    return this.tokens >= 1 ? 0 : Math.ceil(((1 - this.tokens) / this.perSecond) * 1000);
  }

  /** Whether the bucket is full: nothing would change if it were forgotten and made anew. */
  full(): boolean {
    this.refill();
    return this.tokens >= this.burst;
  }

  private refill(): void {
    const now = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.updatedAt) / 1000) * this.perSecond);
    this.updatedAt = now;
  }
}
