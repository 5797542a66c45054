import { describe, expect, it } from 'vitest';
import { DrainState } from '../src/socket/drain.js';

describe('DrainState', () => {
  it('moves serving → draining → closing, and only forward', () => {
    const drain = new DrainState();
    expect([drain.phase, drain.acceptsConnections, drain.acceptsActions]).toEqual(['serving', true, true]);
    drain.enter('draining');
    expect([drain.phase, drain.acceptsConnections, drain.acceptsActions]).toEqual(['draining', false, true]);
    drain.enter('closing');
    drain.enter('draining');
    expect([drain.phase, drain.acceptsConnections, drain.acceptsActions]).toEqual(['closing', false, false]);
  });

  it('settles once the actions in flight have finished, each counted once', async () => {
    const drain = new DrainState();
    const first = drain.begin();
    const second = drain.begin();
    const settled = drain.settled(5000);
    first();
    first();
    expect(drain.inFlight).toBe(1);
    setTimeout(second, 20);
    expect(await settled).toBe(true);
    expect(drain.inFlight).toBe(0);
  });

  it('gives up after the timeout with the action still in flight', async () => {
    const drain = new DrainState();
    drain.begin();
    const started = Date.now();
    expect(await drain.settled(50)).toBe(false);
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
  });

  it('waits for an action that starts on the next tick', async () => {
    const drain = new DrainState();
    let finish = () => {};
    process.nextTick(() => {
      finish = drain.begin();
      setTimeout(() => finish(), 20);
    });
    expect(await drain.settled(5000)).toBe(true);
  });
});
