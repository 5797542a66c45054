import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineScripts, loadScript } from '../src/redis/lua-scripts.js';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { tempDir } from '@clinic-hub/test-kit/tmp';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const WORKSPACES = ['protocol', 'platform', 'recordings', 'hub', 'media-server', 'ai-workers', 'cli', 'load-tests', 'test-kit', 'web'];

/**
 * Scripts that touch keys they do not declare, each saying why
 * (`--- @undeclared-keys`). None since the chat's last three took their keys
 * as `+` scripts: a new script that builds its keys fails here until it
 * declares them.
 */
const UNDECLARED_KEYS_ALLOWED: string[] = [];

describe('Lua scripts touch only the keys they declare (KEYS)', () => {
  const folder = tempDir('clinic-lua-keys-');
  const url = pathToFileURL(`${folder.dir}/`);
  const script = (file: string, lua: string) => writeFileSync(join(folder.dir, file), lua);
  let server: TestRedis;
  let redis: Redis;

  beforeAll(async () => {
    script('declared-2.lua', "redis.call('SET', KEYS[1], ARGV[1])\nredis.call('DEL', KEYS[1], KEYS[2])\nredis.call('SET', KEYS[2], ARGV[1])\nreturn redis.call('GET', KEYS[2])\n");
    // The key comes through a local: only the run-time guard can see it.
    script('sneaky-1.lua', "local other = KEYS[1] .. ':other'\nredis.call('SET', other, 'x')\nreturn 1\n");
    script('sneaky-del-1.lua', "local keys = { KEYS[1], '{t}elsewhere' }\nredis.call('DEL', unpack(keys))\nreturn 1\n");
    script('unknown-command-1.lua', "return redis.call('SINTERSTORE', KEYS[1], KEYS[1])\n");
    script('concat-1.lua', "redis.call('SET', ARGV[1] .. 'x', 1)\nreturn 1\n");
    script('argv-1.lua', "redis.call('INCR', ARGV[1])\nreturn 1\n");
    script('cross-1.lua', '#!lua flags=allow-cross-slot-keys\nreturn 1\n');
    script('reader-1.lua', "#!lua flags=no-writes\nredis.call('SET', KEYS[1], 'x')\nreturn 1\n");
    // One key, then as many as the call brings: it sets each of them to its position.
    script('more-1+.lua', "redis.call('SET', KEYS[1], #KEYS)\nfor i = 2, #KEYS do redis.call('SET', KEYS[i], i) end\nreturn #KEYS\n");
    script('excused-1.lua', "--- @undeclared-keys a test of the excuse\nredis.call('SET', ARGV[1] .. 'x', 1)\nreturn 1\n");
    server = await startTestRedis();
    redis = new Redis(server.url);
  });

  afterAll(async () => {
    redis?.disconnect();
    await server?.cleanup();
    folder.cleanup();
  });

  it('runs a script that touches only its KEYS, with a #!lua shebang and the guard in front', async () => {
    const loaded = loadScript(url, 'declared');
    expect(loaded.lua.startsWith('#!lua\n')).toBe(true);
    expect(loaded.undeclaredKeys).toBeNull();
    const scripts = defineScripts(redis, url, 'guard1', ['declared']);
    expect(await scripts.declared(['{t}a', '{t}b'], ['v'])).toBe('v');
  });

  it('fails a script at run time, before the command, when it touches a key not in KEYS', async () => {
    const scripts = defineScripts(redis, url, 'guard2', ['sneaky', 'sneaky-del', 'unknown-command']);
    await expect(scripts.sneaky(['{t}c'])).rejects.toThrow(/REDIS_KEY_NOT_DECLARED: SET \{t\}c:other is not one of its KEYS/);
    expect(await redis.exists('{t}c:other')).toBe(0);
    await redis.set('{t}elsewhere', 'kept');
    await expect(scripts['sneaky-del'](['{t}d'])).rejects.toThrow(/REDIS_KEY_NOT_DECLARED: DEL \{t\}elsewhere/);
    expect(await redis.get('{t}elsewhere')).toBe('kept');
    await expect(scripts['unknown-command'](['{t}e'])).rejects.toThrow(/REDIS_KEY_NOT_DECLARED: the key guard does not know where SINTERSTORE takes its keys/);
  });

  it('refuses at load a script whose redis.call builds its key from strings or ARGV, or that asks to leave its slot', () => {
    expect(() => loadScript(url, 'concat')).toThrow(expect.objectContaining({ code: 'REDIS_KEY_NOT_DECLARED', message: expect.stringMatching(/concat-1\.lua: `redis\.call\('SET', ARGV\[1\] \.\. 'x'` builds its key/) }));
    expect(() => loadScript(url, 'argv')).toThrow(/argv-1\.lua: `redis\.call\('INCR', ARGV\[1\]` builds its key/);
    expect(() => loadScript(url, 'cross')).toThrow(/flags allow-cross-slot-keys are not allowed/);
  });

  it("keeps a script's own flags: a no-writes script cannot write", async () => {
    expect(loadScript(url, 'reader').lua.startsWith('#!lua flags=no-writes\n')).toBe(true);
    const scripts = defineScripts(redis, url, 'guard3', ['reader']);
    await expect(scripts.reader(['{t}f'])).rejects.toThrow(/Write commands are not allowed from read-only scripts/);
  });

  it('gives a `+` script as many keys as the call brings, at least its own count, all guarded and in one slot', async () => {
    const loaded = loadScript(url, 'more');
    expect([loaded.numberOfKeys, loaded.moreKeys]).toEqual([1, true]);
    const scripts = defineScripts(redis, url, 'guard5', ['more']);
    expect(await scripts.more(['{t}m'])).toBe(1);
    expect(await scripts.more(['{t}m', '{t}m2', '{t}m3'])).toBe(3);
    expect(await redis.mget('{t}m', '{t}m2', '{t}m3')).toEqual(['3', '2', '3']);
    await expect(scripts.more([])).rejects.toThrow('Lua script more takes at least 1 keys, was given 0');
    await expect(scripts.more(['{t}m', '{u}m'])).rejects.toThrow(expect.objectContaining({ code: 'REDIS_KEYS_CROSS_SLOT' }));
    // A script with a fixed count still takes exactly that many.
    await expect(defineScripts(redis, url, 'guard6', ['declared']).declared(['{t}a'], ['v'])).rejects.toThrow('Lua script declared takes 2 keys, was given 1');
  });

  it('lets a script that says why run without the guards, and names it', async () => {
    expect(loadScript(url, 'excused').undeclaredKeys).toBe('a test of the excuse');
    const scripts = defineScripts(redis, url, 'guard4', ['excused']);
    expect(await scripts.excused(['{t}g'], ['{t}g:'])).toBe(1);
  });

  it("loads every script of every service; only the listed ones excuse themselves, and each says why", () => {
    const files = WORKSPACES.filter((workspace) => existsSync(join(REPO, workspace, 'src'))).flatMap((workspace) =>
      readdirSync(join(REPO, workspace, 'src'), { recursive: true, encoding: 'utf8' })
        .filter((file) => /-\d+\+?\.lua$/.test(file))
        .map((file) => `${workspace}/src/${file}`),
    );
    expect(files.length).toBeGreaterThan(20);
    const excused: string[] = [];
    for (const file of files) {
      const folder = pathToFileURL(`${join(REPO, dirname(file))}/`);
      const loaded = loadScript(folder, file.slice(file.lastIndexOf('/') + 1).replace(/-\d+\+?\.lua$/, ''));
      if (loaded.undeclaredKeys !== null) {
        expect(loaded.undeclaredKeys.length, file).toBeGreaterThan(10);
        excused.push(relative(REPO, join(REPO, file)));
      }
    }
    expect(excused.sort()).toEqual(UNDECLARED_KEYS_ALLOWED);
  });
});
