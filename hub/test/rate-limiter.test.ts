import { describe, expect, it } from 'vitest';
import { EventRateLimiter } from '../src/socket/rate-limiter.js';
import { TokenBucket } from '@clinic-hub/platform/token-bucket';

/** A clock the test moves by hand, in ms. */
function manualClock() {
  let now = 0;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

const takeMany = (take: () => boolean, n: number) => Array.from({ length: n }, take).filter(Boolean).length;

describe('TokenBucket', () => {
  it('lets a burst through, then refills at the rate, never above the burst', () => {
    const clock = manualClock();
    const bucket = new TokenBucket(10, 5, clock.now);
    expect(takeMany(() => bucket.take(), 8)).toBe(5);
    expect(bucket.msUntilNext()).toBe(100);
    clock.advance(250);
    expect(takeMany(() => bucket.take(), 8)).toBe(2);
    clock.advance(60_000);
    expect(bucket.full()).toBe(true);
    expect(takeMany(() => bucket.take(), 8)).toBe(5);
  });

  it('never limits with a rate of 0', () => {
    const bucket = new TokenBucket(0, 1, manualClock().now);
    expect(takeMany(() => bucket.take(), 1000)).toBe(1000);
    expect(bucket.msUntilNext()).toBe(0);
  });
});

describe('EventRateLimiter', () => {
  const limits = { socket: { perSecond: 10, burst: 5 }, user: { perSecond: 10, burst: 8 } };

  it('limits each socket on its own, and says so with the time to wait', () => {
    const clock = manualClock();
    const limiter = new EventRateLimiter(limits, clock.now);
    const a = limiter.attach('testclinic/staff:a');
    const b = limiter.attach('testclinic/staff:b');
    expect(takeMany(() => a.take().ok, 10)).toBe(5);
    expect(a.take()).toEqual({ ok: false, scope: 'socket', retryAfterMs: 100 });
    expect(takeMany(() => b.take().ok, 10)).toBe(5);
  });

  it('shares one bucket between the sockets of one user: more sockets buy no more events', () => {
    const clock = manualClock();
    const limiter = new EventRateLimiter(limits, clock.now);
    const sockets = [limiter.attach('testclinic/staff:a'), limiter.attach('testclinic/staff:a'), limiter.attach('testclinic/staff:a')];
    const taken = sockets.map((s) => takeMany(() => s.take().ok, 5));
    expect(taken.reduce((x, y) => x + y)).toBe(8);
    expect(sockets[2]!.take()).toMatchObject({ ok: false, scope: 'user' });
    clock.advance(1000);
    expect(takeMany(() => sockets[0]!.take().ok, 5)).toBe(5);
  });

  it('limits a socket without a user (displays) per socket only', () => {
    const limiter = new EventRateLimiter(limits, manualClock().now);
    const screens = [limiter.attach(null), limiter.attach(null), limiter.attach(null)];
    expect(screens.map((s) => takeMany(() => s.take().ok, 10))).toEqual([5, 5, 5]);
    expect(limiter.trackedUsers()).toBe(0);
  });

  it('keeps a user’s bucket across a reconnect until it has filled up, then forgets it', () => {
    const clock = manualClock();
    const limiter = new EventRateLimiter({ socket: { perSecond: 0, burst: 1 }, user: { perSecond: 10, burst: 8 } }, clock.now);
    const first = limiter.attach('testclinic/staff:a');
    expect(takeMany(() => first.take().ok, 20)).toBe(8);
    first.release();
    const again = limiter.attach('testclinic/staff:a');
    expect(again.take()).toMatchObject({ ok: false, scope: 'user' });
    again.release();
    again.release();
    expect(limiter.trackedUsers()).toBe(1);
    clock.advance(1000);
    limiter.sweep();
    expect(limiter.trackedUsers()).toBe(0);
  });

  it('turns off per limit with a rate of 0', () => {
    const limiter = new EventRateLimiter({ socket: { perSecond: 0, burst: 1 }, user: { perSecond: 0, burst: 1 } }, manualClock().now);
    const socket = limiter.attach('testclinic/staff:a');
    expect(takeMany(() => socket.take().ok, 10_000)).toBe(10_000);
    expect(limiter.trackedUsers()).toBe(0);
  });
});
