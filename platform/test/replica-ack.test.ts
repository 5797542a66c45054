import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { ReplicaAck, connectRedis } from '../src/redis/connect.js';
import { startSentinelGroup, type SentinelGroup } from '@clinic-hub/test-kit/redis-sentinel';

/**
 * ReplicaAck.written on Sentinel (a real master and its replica): what it
 * confirms is on the replica; a change written through another connection is
 * covered by the fence; a reconnection of its connection since `since`, by
 * default since before the write, confirms nothing (the write may have gone
 * to the old master and been lost with it). The Cluster side (the shard
 * taken before the write) is platform/test/redis-cluster.test.ts's.
 */
let group: SentinelGroup;
let writes: Redis;
let other: Redis;

beforeAll(async () => {
  group = await startSentinelGroup();
  writes = connectRedis(group.target, 'test:replica-ack-writes');
  other = connectRedis(group.target, 'test:replica-ack-other');
  for (const client of [writes, other]) client.on('error', () => undefined);
}, 120_000);

afterAll(async () => {
  writes?.disconnect();
  other?.disconnect();
  await group?.cleanup();
});

/** Drops the connection and waits until ioredis has it ready again (errors meanwhile are its retries). */
async function reconnect(client: Redis): Promise<void> {
  const ready = new Promise((resolve) => client.once('ready', resolve));
  client.disconnect(true);
  await ready;
}

async function onReplica(key: string): Promise<string | null> {
  const replica = new Redis({ port: (await group.replica()).port, lazyConnect: true });
  replica.on('error', () => undefined);
  try {
    return await replica.get(key);
  } finally {
    replica.disconnect();
  }
}

describe('ReplicaAck.written', () => {
  const fence = 'test:{replica-ack}:ack-fence';

  it('confirms a change once the replica holds it, the change made through another connection too', { timeout: 30_000 }, async () => {
    // A connection still opening: its first ready is no reconnection (nothing it sent can have been lost).
    const opening = connectRedis(group.target, 'test:replica-ack-opening');
    opening.on('error', () => undefined);
    try {
      const ack = new ReplicaAck(opening, { replicas: 1, timeoutMs: 2000 });
      expect(await ack.written(fence, () => other.set('test:{replica-ack}:change', 'made elsewhere'))).toBe(true);
      expect(await onReplica('test:{replica-ack}:change')).toBe('made elsewhere');
    } finally {
      opening.disconnect();
    }
  });

  it('confirms nothing when its connection reconnected during the write or since `since`; then confirms again', { timeout: 30_000 }, async () => {
    const ack = new ReplicaAck(writes, { replicas: 1, timeoutMs: 2000 });
    const during = async () => {
      await writes.set('test:{replica-ack}:change', 'before the reconnection');
      await reconnect(writes);
    };
    expect(await ack.written(fence, during)).toBe(false);
    const since = ack.readiness;
    await reconnect(writes);
    expect(await ack.written(fence, undefined, since)).toBe(false);
    // The retry: nothing to write again (the change stands), the fence and the wait cover it.
    expect(await ack.written(fence)).toBe(true);
  });

  it('confirms later what `writing` took before the change', { timeout: 30_000 }, async () => {
    const ack = new ReplicaAck(writes, { replicas: 1, timeoutMs: 2000 });
    const confirmed = await ack.writing(fence);
    await other.set('test:{replica-ack}:later', 'x');
    expect(await confirmed()).toBe(true);
    const unconfirmed = await ack.writing(fence);
    await reconnect(writes);
    expect(await unconfirmed()).toBe(false);
  });

  it('is false when the replicas asked for do not answer in time, and throws what the write throws', { timeout: 30_000 }, async () => {
    const ack = new ReplicaAck(writes, { replicas: 2, timeoutMs: 200 });
    expect(await ack.written(fence, () => writes.set('test:{replica-ack}:change', 'one replica only'))).toBe(false);
    await expect(ack.written(fence, () => Promise.reject(new Error('the write failed')))).rejects.toThrow('the write failed');
  });

  it('without a replica wait: runs the write and is true at once, writing no fence', async () => {
    const ack = new ReplicaAck(writes, { replicas: 0, timeoutMs: 0 });
    const quiet = 'test:{replica-ack}:no-wait-fence';
    expect(await ack.written(quiet, () => writes.set('test:{replica-ack}:no-wait', '1'))).toBe(true);
    expect(await writes.get('test:{replica-ack}:no-wait')).toBe('1');
    expect(await writes.exists(quiet)).toBe(0);
  });
});
