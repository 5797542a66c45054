import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { assertOneSlot } from './hash-slot.js';

/**
 * Redis Lua scripts as files, loaded the same way in every service (BullMQ's
 * scheme). A script is `<name>-<keys>.lua`: its name says what it does and
 * how many KEYS it takes; `<name>-<keys>+.lua` takes at least that many, and
 * more as the call needs (one per member added, per attachment sent: keys a
 * script would otherwise build from its arguments, so it declares them). A
 * file without a key count is an include: a line
 * `--- @include "<file>"` in a script (or in another include) is replaced by
 * that file, looked up in the script's own folder (a domain's `lib.lua`),
 * then among the helpers every service shares (this folder's `lua/`, such as
 * `now-ms`). Each include goes in once per script, where it is first named.
 *
 * Every key one script touches must be in one hash slot (one hash tag, such
 * as the clinic's `{clinic}`): a Redis Cluster runs a script on one node and
 * refuses keys of other slots (CROSSSLOT). The runners check this on every
 * call, whatever the Redis, so a script that would break on a cluster fails
 * its tests on one Redis too (REDIS_KEYS_CROSS_SLOT).
 *
 * And every key a script touches must be one of its KEYS. A cluster routes a
 * script, and follows a slot that is moving (ASK, TRYAGAIN), by its declared
 * keys only: while a slot migrates, a script sent to the importing node sees
 * an undeclared key that has not moved yet as empty (a ticket number counted
 * again from 1). Two guards keep it so, on one Redis as on a cluster:
 * - at load, a script whose `redis.call` builds its key from strings (`..`) or
 *   takes it from ARGV is refused (LuaKeyNotDeclared);
 * - at run time, each script starts with a guard that checks the key of every
 *   `redis.call`/`redis.pcall` against KEYS and fails the script
 *   (REDIS_KEY_NOT_DECLARED) before the command runs; a command the guard does
 *   not know (where its keys are) fails it too, until added to KEY_POSITIONS.
 * A script that cannot declare its keys yet says why on a line
 * `--- @undeclared-keys <why>`: it runs without either guard, and
 * `undeclaredKeys` names it (platform/test/lua-key-guard.test.ts lists them).
 *
 * Every script runs with a `#!lua` shebang (Redis 7 script flags); a script
 * file may start with its own `#!lua flags=…` (`no-writes` for one that only
 * reads). Not allowed: `allow-cross-slot-keys` and `no-cluster`, which would
 * give up what the guards keep.
 */

/** Runs one script: exactly as many keys as its file name says (all in one hash slot), then its arguments. Resolves with the script's reply. */
export type ScriptRunner = <T = string>(keys: readonly string[], args?: readonly (string | number | Buffer)[]) => Promise<T>;

/** What `defineScripts` needs of a connection (ioredis `Redis` or `Cluster`). */
export interface ScriptHost {
  /** Without `numberOfKeys`, the key count is the command's first argument (a script that takes more keys as needed). */
  defineCommand(name: string, definition: { numberOfKeys?: number; lua: string }): void;
}

const SHARED = new URL('./lua/', import.meta.url);
const INCLUDE = /^---\s*@include\s+"([\w-]+)"\s*$/gm;

export interface LoadedScript {
  name: string;
  /** The KEYS it takes; with `moreKeys`, the least it takes. */
  numberOfKeys: number;
  /** A `<name>-<keys>+.lua` script: more keys may follow the first `numberOfKeys`. */
  moreKeys: boolean;
  /** The script with its shebang, the key guard and its includes in place. */
  lua: string;
  /** Why the script touches keys it does not declare (its `--- @undeclared-keys` line); null for a script that declares them all. */
  undeclaredKeys: string | null;
}

/**
 * Where each command a script may call takes its keys: 1 the first argument,
 * 'all' every argument, 0 none (channels, the clock). A command missing here
 * fails the script that calls it: add it with its key position.
 */
export const KEY_POSITIONS: Readonly<Record<string, 1 | 'all' | 0>> = {
  ...Object.fromEntries(
    [
      'get', 'set', 'setnx', 'getdel', 'incr', 'incrby', 'decr', 'decrby', 'strlen', 'append',
      'expire', 'pexpire', 'expireat', 'pexpireat', 'persist', 'ttl', 'pttl', 'type',
      'hget', 'hset', 'hsetnx', 'hmget', 'hdel', 'hexists', 'hgetall', 'hkeys', 'hvals', 'hlen', 'hincrby',
      'sadd', 'srem', 'sismember', 'smembers', 'scard',
      'zadd', 'zrem', 'zscore', 'zcard', 'zcount', 'zrange', 'zrevrange', 'zrangebyscore', 'zrangebylex', 'zlexcount', 'zremrangebyscore', 'zpopmin', 'zincrby',
      'lpush', 'rpush', 'lpop', 'rpop', 'lrange', 'ltrim', 'llen',
      'xadd', 'xrange', 'xrevrange', 'xlen', 'xtrim',
    ].map((command) => [command, 1 as const]),
  ),
  ...Object.fromEntries(['del', 'unlink', 'exists', 'touch', 'mget'].map((command) => [command, 'all' as const])),
  ...Object.fromEntries(['time', 'publish', 'spublish'].map((command) => [command, 0 as const])),
};

/** A script that names a key its KEYS do not (found when it is loaded). */
export class LuaKeyNotDeclared extends Error {
  override readonly name = 'LuaKeyNotDeclared';
  readonly code = 'REDIS_KEY_NOT_DECLARED';
}

const SHEBANG = /^#!lua(?:[ \t]+flags=([\w,-]*))?[ \t]*\r?\n/;
const REFUSED_FLAGS = new Set(['allow-cross-slot-keys', 'no-cluster']);
const UNDECLARED = /^---\s*@undeclared-keys\s+(\S.*)$/m;
/** `redis.call('CMD', <first argument>`: what the load-time check reads. */
const CALL = /redis\.p?call\(\s*['"](\w+)['"]\s*,\s*([^,)]*)/g;

/**
 * Prepended to every script that declares its keys: `redis` is, for the rest
 * of the script (includes too), a stand-in whose `call`/`pcall` check the key
 * arguments against KEYS first. A local, so Redis's own table is untouched.
 */
const KEY_GUARD = `local redis = (function(host, keys)
  local positions = { ${Object.entries(KEY_POSITIONS)
    .map(([command, at]) => `${command} = ${at === 'all' ? -1 : at}`)
    .join(', ')} }
  local declared = {}
  for _, key in ipairs(keys) do declared[key] = true end
  local function check(command, ...)
    local at = positions[string.lower(tostring(command))]
    if at == nil then error('REDIS_KEY_NOT_DECLARED: the key guard does not know where ' .. tostring(command) .. ' takes its keys (KEY_POSITIONS, platform lua-scripts.ts)', 3) end
    if at == 0 then return end
    local n = at == -1 and select('#', ...) or 1
    for i = 1, n do
      local key = select(i, ...)
      if not declared[key] then error('REDIS_KEY_NOT_DECLARED: ' .. tostring(command) .. ' ' .. tostring(key) .. ' is not one of its KEYS', 3) end
    end
  end
  return setmetatable({
    call = function(command, ...) check(command, ...) return host.call(command, ...) end,
    pcall = function(command, ...) check(command, ...) return host.pcall(command, ...) end,
  }, { __index = host })
end)(redis, KEYS)
`;

/** Reads `<name>-<keys>.lua` from `folder` (a `file:` URL ending in `/`) with its includes. */
export function loadScript(folder: URL, name: string): LoadedScript {
  const pattern = new RegExp(`^${name.replace(/[^\w-]/g, '')}-(\\d+)(\\+?)\\.lua$`);
  const files = readdirSync(fileURLToPath(folder)).filter((file) => pattern.test(file));
  if (files.length !== 1) {
    throw new Error(`Lua script ${name}: expected one file ${name}-<keys>.lua in ${fileURLToPath(folder)}, found ${files.length ? files.join(', ') : 'none'}`);
  }
  const file = files[0]!;
  const [, keyCount, more] = pattern.exec(file)!;
  const numberOfKeys = Number(keyCount);
  const moreKeys = more === '+';
  let source = readFileSync(new URL(file, folder), 'utf8');
  const shebang = SHEBANG.exec(source);
  const flags = shebang?.[1] ? shebang[1].split(',').filter(Boolean) : [];
  const refused = flags.filter((flag) => REFUSED_FLAGS.has(flag));
  if (refused.length) throw new Error(`Lua script ${file}: flags ${refused.join(', ')} are not allowed (every key of a script is one of its KEYS, in one hash slot)`);
  if (shebang) source = source.slice(shebang[0].length);
  const undeclaredKeys = UNDECLARED.exec(source)?.[1]?.trim() ?? null;
  const body = expandIncludes(source, folder, new Set(), file);
  if (undeclaredKeys === null) checkDeclaredKeys(file, body);
  const head = flags.length ? `#!lua flags=${flags.join(',')}\n` : '#!lua\n';
  return { name, numberOfKeys, moreKeys, lua: head + (undeclaredKeys === null ? KEY_GUARD : '') + body, undeclaredKeys };
}

/** Refuses a script whose `redis.call` builds its key from strings or takes it from ARGV (the run-time guard catches the rest). */
function checkDeclaredKeys(file: string, lua: string): void {
  for (const [call, command, first] of lua.matchAll(CALL)) {
    if (KEY_POSITIONS[command!.toLowerCase()] === 0) continue;
    if (/\.\.|ARGV/.test(first!)) {
      throw new LuaKeyNotDeclared(`Lua script ${file}: \`${call.trim()}\` builds its key from strings or ARGV; pass it in KEYS (or say why not: --- @undeclared-keys <why>)`);
    }
  }
}

function expandIncludes(source: string, folder: URL, included: Set<string>, from: string): string {
  return source.replace(INCLUDE, (_line, include: string) => {
    if (included.has(include)) return `-- (${include} is already included above)`;
    included.add(include);
    const path = [new URL(`${include}.lua`, folder), new URL(`${include}.lua`, SHARED)].find((candidate) => {
      try {
        readFileSync(candidate);
        return true;
      } catch {
        return false;
      }
    });
    if (!path) throw new Error(`Lua include "${include}" (in ${from}) is neither in ${fileURLToPath(folder)} nor among the shared helpers`);
    return expandIncludes(readFileSync(path, 'utf8'), folder, included, `${include}.lua`);
  });
}

/**
 * Defines the named scripts of `folder` on the connection, each as the
 * command `<prefix>_<name>` (EVALSHA, loaded again by ioredis after a
 * restart), and returns a runner for each. A runner given the wrong number of
 * keys throws before anything reaches Redis.
 */
export function defineScripts<N extends string>(redis: ScriptHost, folder: URL, prefix: string, names: readonly N[]): Record<N, ScriptRunner> {
  const runners = {} as Record<N, ScriptRunner>;
  for (const name of names) {
    const script = loadScript(folder, name);
    const command = `${prefix}_${name.replaceAll('-', '_')}`;
    redis.defineCommand(command, script.moreKeys ? { lua: script.lua } : { numberOfKeys: script.numberOfKeys, lua: script.lua });
    // ioredis adds the defined command as a method of the connection; its types cannot know it.
    const run = (redis as unknown as Record<string, (...params: (string | number | Buffer)[]) => Promise<unknown>>)[command]!.bind(redis);
    runners[name] = ((keys: readonly string[], args: readonly (string | number | Buffer)[] = []) => {
      try {
        checkKeys(script, keys);
      } catch (error) {
        return Promise.reject(error);
      }
      return script.moreKeys ? run(keys.length, ...keys, ...args) : run(...keys, ...args);
    }) as ScriptRunner;
  }
  return runners;
}

/**
 * Runs a script loaded with `loadScript` by EVAL, on whichever connection the
 * caller holds (for code that is handed a connection per call rather than
 * owning one to define commands on).
 */
export async function evalScript<T = unknown>(
  redis: { eval(script: string, numberOfKeys: number, ...params: (string | number)[]): Promise<unknown> },
  script: LoadedScript,
  keys: readonly string[],
  args: readonly (string | number)[] = [],
): Promise<T> {
  checkKeys(script, keys);
  return (await redis.eval(script.lua, keys.length, ...keys, ...args)) as T;
}

/** As many keys as the script takes (at least that many for a `+` script), all in one hash slot; throws before anything reaches Redis. */
function checkKeys(script: LoadedScript, keys: readonly string[]): void {
  if (script.moreKeys ? keys.length < script.numberOfKeys : keys.length !== script.numberOfKeys) {
    throw new Error(`Lua script ${script.name} takes ${script.moreKeys ? 'at least ' : ''}${script.numberOfKeys} keys, was given ${keys.length}`);
  }
  assertOneSlot(`Lua script ${script.name}`, keys);
}
