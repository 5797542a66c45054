import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import pino from 'pino';
import type { QueueEvent } from '@clinic-hub/protocol';
import type { Redis } from 'ioredis';
import { HubMetrics } from '../src/metrics.js';
import { startQueueFanout, type QueueFanoutDeps } from '../src/queue/index.js';
import type { LocalBroadcast } from '../src/socket/local-broadcast.js';
import { sleep, waitFor } from '@clinic-hub/test-kit/wait';

/**
 * After a Redis outage a node reads the queue events it missed from the
 * stream and emits them; docs/protocol.md promises each socket each event
 * once. The catch-up's read and the live messages travel on two connections,
 * in no fixed order, and a second outage can come while the first catch-up
 * still retries: whatever the order, the node emits each event once. (The
 * soak saw a repeated event after a 3 s Redis restart in 2 runs of 4.)
 */
const CLINIC = 'testclinic';
const event = (seq: number): QueueEvent => ({ seq, type: 'checkin', at: Date.now() }) as unknown as QueueEvent;

function fakeNode(reads: (after: number) => Promise<QueueEvent[]>) {
  const subscriber = Object.assign(new EventEmitter(), { ssubscribe: async () => 1 });
  const sent: number[] = [];
  const broadcast = { emit: (_room: string, _name: string, e: QueueEvent) => sent.push(e.seq) } as unknown as LocalBroadcast;
  const metrics = new HubMetrics('catch-up');
  const deps: QueueFanoutDeps = {
    queue: { lastSeq: async () => 3, eventsAfter: async (_clinic: string, after: number) => reads(after) } as unknown as QueueFanoutDeps['queue'],
    clinicIds: [CLINIC],
    coalesceMs: 0,
    metrics,
    logger: pino({ level: 'silent' }),
  };
  const live = (seq: number) => subscriber.emit('smessage', `ch:{${CLINIC}}:live`, JSON.stringify(event(seq)));
  const reconnected = () => subscriber.emit('ready');
  return { start: () => startQueueFanout(subscriber as unknown as Redis, broadcast, deps), sent, live, reconnected, metrics };
}

describe('the catch-up after a Redis outage', () => {
  it('does not emit again an event it read back when its live message comes after the read', async () => {
    const node = fakeNode(async (after) => [4, 5].filter((s) => s > after).map(event));
    await node.start();
    node.reconnected();
    await waitFor('the catch-up', () => node.sent.length === 2);
    // The live message of event 5, read from the subscriber's socket after the stream's reply.
    node.live(5);
    node.live(6);
    expect(node.sent).toEqual([4, 5, 6]);
    expect((await node.metrics.fanoutDuplicatesDropped.get()).values[0]?.value).toBe(1);
  });

  it('emits what it missed even when later events came live first, and those once', async () => {
    let release!: () => void;
    const readDone = new Promise<void>((resolve) => (release = resolve));
    const node = fakeNode(async (after) => {
      await readDone;
      return [4, 5, 6].filter((s) => s > after).map(event);
    });
    await node.start();
    node.reconnected();
    node.live(6);
    release();
    await waitFor('the catch-up', () => node.sent.length === 3);
    await sleep(50);
    expect(node.sent).toEqual([6, 4, 5]);
  });

  it('emits each event once when a second outage comes while the first catch-up retries', async () => {
    let reads = 0;
    const node = fakeNode(async (after) => {
      // The first read fails (Redis went away again): the first catch-up retries a second later, from seq 3.
      if (++reads === 1) throw new Error('Connection is closed.');
      return [4, 5].filter((s) => s > after).map(event);
    });
    await node.start();
    node.reconnected();
    await waitFor('the first read', () => reads === 1);
    node.live(4);
    node.reconnected();
    await waitFor('the second catch-up', () => node.sent.includes(5));
    // The first catch-up's retry (after CATCH_UP_RETRY_MS) finds 4 and 5 in the stream: both went out already.
    await sleep(1300);
    expect(node.sent).toEqual([4, 5]);
  });
});
