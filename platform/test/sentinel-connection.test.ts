import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { connectRedis, type RedisTarget } from '../src/redis/connect.js';
import { startSentinelGroup, type SentinelGroup } from '@clinic-hub/test-kit/redis-sentinel';
import { startTcpProxy, type TcpProxy } from '@clinic-hub/test-kit/tcp-proxy';
import { sleep, waitFor } from '@clinic-hub/test-kit/wait';

/**
 * One connection made by connectRedis through Sentinel, across failovers: it
 * must come back on the new master by itself every time, and never end.
 *
 * The first sentinel it asks sits behind a TCP proxy that can hold its
 * answers, so a failover can be made to happen while the connection is
 * asking the sentinels for the master. That is what ended hub connections
 * for good with ioredis's failover detector (issue #16's known bug): the
 * detector closed the connection on +switch-master, in the middle of its
 * reconnection, and ioredis turned the failed reconnection into "end".
 */
let group: SentinelGroup;
let proxy: TcpProxy;
let target: RedisTarget;
const opened: Redis[] = [];

beforeAll(async () => {
  group = await startSentinelGroup();
  proxy = await startTcpProxy(group.sentinels[0]!.port);
  target = { mode: 'sentinel', name: group.name, sentinels: [{ host: '127.0.0.1', port: proxy.port }, ...group.sentinels.slice(1)] };
}, 120_000);

afterAll(async () => {
  for (const client of opened.splice(0)) client.disconnect();
  await proxy?.close();
  await group?.cleanup();
});

/** A connection and every status it went through. */
function open(name: string, options: Parameters<typeof connectRedis>[2] = {}) {
  const client = connectRedis(target, name, options);
  client.on('error', () => undefined);
  opened.push(client);
  const statuses: string[] = [];
  for (const status of ['connect', 'ready', 'close', 'reconnecting', 'end']) client.on(status, () => statuses.push(status));
  return { client, statuses };
}

/** The port of the Redis the connection is on now, and whether that Redis is a master. */
async function whereIs(client: Redis) {
  const info = await client.info();
  return { port: Number(/tcp_port:(\d+)/.exec(info)?.[1]), master: /role:master/.test(info) };
}

describe('a Sentinel connection across failovers', () => {
  it('comes back on the new master when the failover happens while it is asking the sentinels', { timeout: 120_000 }, async () => {
    // Long enough that the held answer is waited for, not passed over: the failover lands inside the question.
    const { client, statuses } = open('sentinel-conn-slow-sentinel', { sentinelCommandTimeout: 30_000 });
    await client.set('k', 'before');

    const watcher = new Redis({ host: '127.0.0.1', port: group.sentinels[1]!.port });
    watcher.on('error', () => undefined);
    opened.push(watcher);
    const switched = new Promise<string>((resolve) => watcher.on('message', (_channel, message: string) => resolve(message)));
    await watcher.subscribe('+switch-master');

    proxy.holdReplies(true);
    const failover = group.killMaster();
    const announced = await switched;
    // The scenario really happened: the connection lost its master and is asking the held sentinel.
    expect(client.status).toBe('connecting');
    await sleep(300);
    proxy.holdReplies(false);
    const { promoted } = await failover;
    expect(announced).toContain(` ${promoted}`);

    await waitFor('the connection to write on the new master', async () => {
      try {
        await client.set('k', 'after');
        return (await whereIs(client)).port === promoted;
      } catch {
        return false;
      }
    }, 30_000);
    expect(await whereIs(client)).toEqual({ port: promoted, master: true });
    expect(statuses).not.toContain('end');
  });

  it('leaves a master the operator demotes (SENTINEL FAILOVER): commands, subscriptions and duplicates move to the new master', { timeout: 120_000 }, async () => {
    const { client, statuses } = open('sentinel-conn-cmd');
    const { client: subscriber } = open('sentinel-conn-sub');
    const duplicate = client.duplicate({ connectionName: 'sentinel-conn-dup', maxRetriesPerRequest: null });
    duplicate.on('error', () => undefined);
    opened.push(duplicate);
    const received: string[] = [];
    subscriber.on('message', (_channel, message: string) => received.push(message));
    await subscriber.subscribe('sentinel-conn-channel');
    await Promise.all([client.ping(), duplicate.ping()]);

    const { demoted, promoted } = await group.failover();

    const namesOn = async (port: number) => {
      const direct = new Redis({ host: '127.0.0.1', port });
      try {
        return [...((await direct.client('LIST')) as string).matchAll(/name=(sentinel-conn-\w+)/g)].map((m) => m[1]);
      } finally {
        direct.disconnect();
      }
    };
    await waitFor('every connection on the new master', async () => {
      const names = await namesOn(promoted);
      return ['sentinel-conn-cmd', 'sentinel-conn-sub', 'sentinel-conn-dup'].every((n) => names.includes(n));
    }, 30_000);
    expect(await namesOn(demoted)).toEqual([]);
    await waitFor('the subscription to be renewed on the new master', async () => {
      await client.publish('sentinel-conn-channel', 'after-failover');
      return received.includes('after-failover');
    }, 10_000);
    expect(await whereIs(client)).toEqual({ port: promoted, master: true });
    expect(await duplicate.set('dup', '1')).toBe('OK');
    expect(statuses).not.toContain('end');
  });
});
