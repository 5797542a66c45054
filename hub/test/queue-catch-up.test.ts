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
/** The change with this seq: the same object whichever way it comes (live, or read back), as the script writes one JSON to both. */
const event = (seq: number, ticket = `t${seq}`): QueueEvent => ({ seq, type: 'checkin', at: 1_000_000 + seq, ticket: { id: ticket } }) as unknown as QueueEvent;

/**
 * A node whose Redis had seq 3 when it started; `reads` is the stream a catch-up reads (events after `after`), and
 * `current` the clinic's seq then (by default the stream's last).
 */
function fakeNode(reads: (after: number) => Promise<QueueEvent[]>, current?: () => number) {
  const subscriber = Object.assign(new EventEmitter(), { ssubscribe: async () => 1 });
  const sent: number[] = [];
  const closed: string[] = [];
  const rewound: number[] = [];
  const broadcast = {
    emit: (_room: string, _name: string, e: QueueEvent) => sent.push(e.seq),
    closeTransports: (room: string) => closed.push(room),
  } as unknown as LocalBroadcast;
  const metrics = new HubMetrics('catch-up');
  let started = false;
  const lastSeq = async () => (!started ? 3 : (current?.() ?? Math.max(3, ...(await reads(0).catch(() => [])).map((e) => e.seq))));
  const deps: QueueFanoutDeps = {
    queue: {
      lastSeq,
      eventsAfter: async (_clinic: string, after: number) => reads(after),
      markRewound: async (_clinic: string, fromSeq: number) => void rewound.push(fromSeq),
    } as unknown as QueueFanoutDeps['queue'],
    clinicIds: [CLINIC],
    coalesceMs: 0,
    metrics,
    logger: pino({ level: 'silent' }),
  };
  const live = (seq: number, ticket?: string) => subscriber.emit('smessage', `ch:{${CLINIC}}:live`, JSON.stringify(event(seq, ticket)));
  const reconnected = () => subscriber.emit('ready');
  const start = async () => {
    await startQueueFanout(subscriber as unknown as Redis, broadcast, deps);
    started = true;
  };
  return { start, sent, closed, rewound, live, reconnected, metrics };
}

describe('the catch-up after a Redis outage', () => {
  it('does not emit again an event it read back when its live message comes after the read', async () => {
    const node = fakeNode(async (after) => [4, 5].filter((s) => s > after).map((s) => event(s)));
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
      return [4, 5, 6].filter((s) => s > after).map((s) => event(s));
    });
    await node.start();
    node.reconnected();
    node.live(6);
    release();
    await waitFor('the catch-up', () => node.sent.length === 3);
    await sleep(50);
    expect(node.sent).toEqual([6, 4, 5]);
  });

  it('after a failover that lost changes it had sent: finds their seqs given to other changes, marks the clinic rewound and moves its clients', async () => {
    // It sent 4 and 5 live; the new master lost them, and gave 4 to another change, which came back live.
    let stream: QueueEvent[] = [];
    const node = fakeNode(async (after) => stream.filter((e) => e.seq > after));
    await node.start();
    node.live(4);
    node.live(5);
    node.live(4, 'other-ticket');
    await waitFor('the clients moved', () => node.closed.length === 1);
    expect(node.rewound).toEqual([4]);
    expect(node.closed).toEqual([`clinic:${CLINIC}`]);
    // Sent on as any change (the clients it reaches are on their way to a snapshot); the new 5 is new too.
    node.live(5, 'another-ticket');
    expect(node.sent).toEqual([4, 5, 4, 5]);
    // After a reconnect, the clinic's seq is behind what it sent (the change the new 5 was is lost too): rewound from 4.
    stream = [event(4, 'other-ticket')];
    node.reconnected();
    await waitFor('the second rewind', () => node.rewound.length === 2);
    expect(node.rewound).toEqual([4, 5]);
    // Nothing moved when nothing was lost: the same changes read back are not news.
    node.reconnected();
    await sleep(100);
    expect(node.rewound).toHaveLength(2);
  });

  it('emits each event once when a second outage comes while the first catch-up retries', async () => {
    let reads = 0;
    const node = fakeNode(async (after) => {
      // The first read fails (Redis went away again): the first catch-up retries a second later, from seq 3.
      if (++reads === 1) throw new Error('Connection is closed.');
      return [4, 5].filter((s) => s > after).map((s) => event(s));
    }, () => 5);
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
