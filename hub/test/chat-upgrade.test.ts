import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@clinic-hub/platform/logging';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { CHAT_LAYOUT, ChatStore, chatKeys, chatLayoutKey, upgradeChatLayout, type ChatCaller } from '../src/chat/index.js';

/**
 * Chat quota counters of layout 1 (a key per window,
 * `quota:<what>:<scope>:<id>:<window>`, before d185e73) are carried over into
 * layout 2's one counter per scope (`<window>:<count>`) when a hub starts, so
 * an upgrade mid-day does not hand every patient a fresh day of attachment
 * bytes; running it again changes nothing.
 */
const C = 'testclinic';
const keys = chatKeys(C);
const silent = createLogger('silent', 'chat-upgrade-test', { redact: [] });
const patient: ChatCaller = { sub: 'patient:TA', role: 'patient', ticket: 'TA', address: '127.0.0.9' };

describe('upgrading the chat data: quota counters of layout 1', () => {
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

  it('converts the current windows, keeps a layout-2 counter whose id ends in digits, and the limits hold over the upgrade', async () => {
    const now = Number((await redis.time())[0]);
    const day = Math.floor(now / 86_400);
    const minute = Math.floor(now / 60);
    // As lib.lua's takeQuota wrote them before d185e73: prefix .. 'quota:' .. what .. ':' .. scope .. ':' .. id .. ':' .. window
    await redis.set(`${keys.prefix}quota:bytes:user:patient:TA:${day}`, '9000', 'EX', 86_460);
    await redis.set(`${keys.prefix}quota:bytes:clinic::${day}`, '100', 'EX', 86_460);
    await redis.set(`${keys.prefix}quota:msg:thread:patient.TA:${minute}`, '4', 'EX', 120);
    // Layout 2 already (a sub ending in ":<digits>" looks like an old name): left alone.
    await redis.set(keys.quota('bytes', 'user', 'staff:123'), `${day}:50`, 'EX', 86_460);

    expect(await upgradeChatLayout(redis, [C], silent)).toEqual({ [C]: 3 });
    expect(await redis.get(keys.quota('bytes', 'user', 'patient:TA'))).toBe(`${day}:9000`);
    expect(await redis.get(keys.quota('bytes', 'clinic', ''))).toBe(`${day}:100`);
    expect(await redis.get(keys.quota('msg', 'thread', 'patient.TA'))).toBe(`${minute}:4`);
    expect(await redis.ttl(keys.quota('bytes', 'user', 'patient:TA'))).toBeGreaterThan(86_000);
    expect(await redis.get(keys.quota('bytes', 'user', 'staff:123'))).toBe(`${day}:50`);
    expect(await redis.exists(`${keys.prefix}quota:bytes:user:patient:TA:${day}`, `${keys.prefix}quota:bytes:clinic::${day}`, `${keys.prefix}quota:msg:thread:patient.TA:${minute}`)).toBe(0);
    expect(await redis.get(chatLayoutKey(C))).toBe(CHAT_LAYOUT);

    // The 9,000 bytes taken before the upgrade still count against the caller's 10,000 a day.
    const store = new ChatStore(redis);
    const limits = { user: 10_000, thread: 0, clinic: 0 };
    const refused = await store.takeAttachmentQuota(C, patient, 'patient.TA', limits, 2000);
    expect(refused).toMatchObject({ ok: false, error: { code: 'CHAT_QUOTA_EXCEEDED' } });
    expect(await store.takeAttachmentQuota(C, patient, 'patient.TA', limits, 1000)).toMatchObject({ ok: true });
    expect(await redis.get(keys.quota('bytes', 'user', 'patient:TA'))).toBe(`${day}:10000`);
  });

  it('running again (a restart, or the mark removed) changes nothing', async () => {
    const pattern = `${keys.prefix}quota:*`;
    const snapshot = async () => Object.fromEntries(await Promise.all((await redis.keys(pattern)).sort().map(async (key) => [key, await redis.get(key)] as const)));
    const before = await snapshot();
    expect(await upgradeChatLayout(redis, [C], silent)).toEqual({ [C]: null });
    await redis.del(chatLayoutKey(C));
    expect(await upgradeChatLayout(redis, [C], silent)).toEqual({ [C]: 0 });
    expect(await snapshot()).toEqual(before);
  });
});
