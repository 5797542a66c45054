/**
 * The media node registry against a real Redis: a node's beat writes its
 * hash and its id, and takes out of `media:nodes` the ids whose hash has gone
 * (nodes that died), never a live node's; its stop takes itself out.
 */
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MEDIA_NODES_KEY, mediaNodeKey } from '@clinic-hub/protocol';
import { announceMediaNode } from '@clinic-hub/test-kit/consult-client';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { MediaNodeRegistry } from '../src/registry/node-registry.js';

let server: TestRedis;
let redis: Redis;

beforeAll(async () => {
  server = await startTestRedis();
  redis = new Redis(server.url);
});

afterAll(async () => {
  redis?.disconnect();
  await server?.cleanup();
});

describe('the media node registry', () => {
  it('takes the ids of dead nodes out of media:nodes on its beat, keeps the live ones, and takes itself out when it stops', async () => {
    // Two nodes that died (their hashes expired) and one alive, as media-servers leave them.
    await redis.sadd(MEDIA_NODES_KEY, 'media-dead-1', 'media-dead-2');
    await announceMediaNode(redis, { id: 'media-alive' });
    const registry = new MediaNodeRegistry(redis, { nodeId: 'media-self', url: 'ws://127.0.0.1:1/media-self' }, () => ({ rooms: 1, participants: 2, draining: false }), pino({ level: 'silent' }));
    await registry.start();
    try {
      expect((await redis.smembers(MEDIA_NODES_KEY)).sort()).toEqual(['media-alive', 'media-self']);
      expect(await redis.hgetall(mediaNodeKey('media-self'))).toMatchObject({ rooms: '1', participants: '2', draining: '0' });
      expect(await redis.pttl(mediaNodeKey('media-self'))).toBeGreaterThan(0);
    } finally {
      await registry.stop();
    }
    expect(await redis.smembers(MEDIA_NODES_KEY)).toEqual(['media-alive']);
    expect(await redis.exists(mediaNodeKey('media-self'))).toBe(0);
  });
});
