import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineScripts, evalScript, loadScript } from '../src/redis/lua-scripts.js';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { tempDir } from '@clinic-hub/test-kit/tmp';

describe('Lua scripts as files: <name>-<keys>.lua with includes', () => {
  const folder = tempDir('clinic-lua-');
  const url = pathToFileURL(`${folder.dir}/`);
  let server: TestRedis;
  let redis: Redis;

  beforeAll(async () => {
    writeFileSync(join(folder.dir, 'lib.lua'), '--- @include "now-ms"\nlocal prefix = ARGV[1]\n');
    // Includes `now-ms` a second time (through lib and directly): it goes in once.
    writeFileSync(join(folder.dir, 'stamp-2.lua'), '-- Sets both keys to the Redis time.\n--- @include "lib"\n--- @include "now-ms"\nlocal at = nowMs()\nredis.call("SET", KEYS[1], prefix .. at)\nredis.call("SET", KEYS[2], prefix .. at)\nreturn at\n');
    writeFileSync(join(folder.dir, 'broken-1.lua'), '--- @include "nowhere"\nreturn 1\n');
    server = await startTestRedis();
    redis = new Redis(server.url);
  });

  afterAll(async () => {
    redis?.disconnect();
    await server?.cleanup();
    folder.cleanup();
  });

  it('takes its key count from the file name and runs with its includes in place', async () => {
    const script = loadScript(url, 'stamp');
    expect(script.numberOfKeys).toBe(2);
    expect(script.lua.match(/local function nowMs/g)).toHaveLength(1);
    const scripts = defineScripts(redis, url, 'test', ['stamp']);
    const at = await scripts.stamp<number>(['{t}a', '{t}b'], ['p:']);
    expect(Math.abs(at - Date.now())).toBeLessThan(60_000);
    expect(await redis.mget('{t}a', '{t}b')).toEqual([`p:${at}`, `p:${at}`]);
    expect(await evalScript<number>(redis, script, ['{t}c', '{t}d'], ['q:'])).toBeGreaterThanOrEqual(at);
  });

  it('refuses the wrong number of keys before Redis sees it', async () => {
    const scripts = defineScripts(redis, url, 'test2', ['stamp']);
    await expect(scripts.stamp(['a'], ['p:'])).rejects.toThrow('Lua script stamp takes 2 keys, was given 1');
    await expect(evalScript(redis, loadScript(url, 'stamp'), ['a', 'b', 'c'])).rejects.toThrow('takes 2 keys, was given 3');
  });

  it('refuses keys of two hash slots on one Redis too, before Redis sees them (a cluster would: CROSSSLOT)', async () => {
    const scripts = defineScripts(redis, url, 'test3', ['stamp']);
    await expect(scripts.stamp(['{c1}:x', '{c2}:y'], ['p:'])).rejects.toMatchObject({ code: 'REDIS_KEYS_CROSS_SLOT', message: expect.stringMatching(/Lua script stamp: its keys are in different hash slots \(\{c1\}:x → \d+, \{c2\}:y → \d+\)/) });
    await expect(evalScript(redis, loadScript(url, 'stamp'), ['plain-a', 'plain-b'])).rejects.toThrow(/REDIS_KEYS_CROSS_SLOT/);
    expect(await redis.exists('{c1}:x', '{c2}:y', 'plain-a', 'plain-b')).toBe(0);
  });

  it('names the missing file or include', () => {
    expect(() => loadScript(url, 'absent')).toThrow(/expected one file absent-<keys>\.lua .* found none/);
    expect(() => loadScript(url, 'broken')).toThrow(/Lua include "nowhere" \(in broken-1\.lua\)/);
  });
});
