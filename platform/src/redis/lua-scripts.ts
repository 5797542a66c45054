import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { assertOneSlot } from './hash-slot.js';

/**
 * Redis Lua scripts as files, loaded the same way in every service (BullMQ's
 * scheme). A script is `<name>-<keys>.lua`: its name says what it does and
 * how many KEYS it takes. A file without a key count is an include: a line
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
 */

/** Runs one script: exactly as many keys as its file name says (all in one hash slot), then its arguments. Resolves with the script's reply. */
export type ScriptRunner = <T = string>(keys: readonly string[], args?: readonly (string | number)[]) => Promise<T>;

/** What `defineScripts` needs of a connection (ioredis `Redis` or `Cluster`). */
export interface ScriptHost {
  defineCommand(name: string, definition: { numberOfKeys: number; lua: string }): void;
}

const SHARED = new URL('./lua/', import.meta.url);
const INCLUDE = /^---\s*@include\s+"([\w-]+)"\s*$/gm;

export interface LoadedScript {
  name: string;
  numberOfKeys: number;
  /** The script with its includes in place. */
  lua: string;
}

/** Reads `<name>-<keys>.lua` from `folder` (a `file:` URL ending in `/`) with its includes. */
export function loadScript(folder: URL, name: string): LoadedScript {
  const pattern = new RegExp(`^${name.replace(/[^\w-]/g, '')}-(\\d+)\\.lua$`);
  const files = readdirSync(fileURLToPath(folder)).filter((file) => pattern.test(file));
  if (files.length !== 1) {
    throw new Error(`Lua script ${name}: expected one file ${name}-<keys>.lua in ${fileURLToPath(folder)}, found ${files.length ? files.join(', ') : 'none'}`);
  }
  const file = files[0]!;
  const numberOfKeys = Number(pattern.exec(file)![1]);
  return { name, numberOfKeys, lua: expandIncludes(readFileSync(new URL(file, folder), 'utf8'), folder, new Set(), file) };
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
    redis.defineCommand(command, { numberOfKeys: script.numberOfKeys, lua: script.lua });
    // ioredis adds the defined command as a method of the connection; its types cannot know it.
    const run = (redis as unknown as Record<string, (...params: (string | number)[]) => Promise<unknown>>)[command]!.bind(redis);
    runners[name] = ((keys: readonly string[], args: readonly (string | number)[] = []) => {
      if (keys.length !== script.numberOfKeys) {
        return Promise.reject(new Error(`Lua script ${name} takes ${script.numberOfKeys} keys, was given ${keys.length}`));
      }
      try {
        assertOneSlot(`Lua script ${name}`, keys);
      } catch (error) {
        return Promise.reject(error);
      }
      return run(...keys, ...args);
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
  if (keys.length !== script.numberOfKeys) throw new Error(`Lua script ${script.name} takes ${script.numberOfKeys} keys, was given ${keys.length}`);
  assertOneSlot(`Lua script ${script.name}`, keys);
  return (await redis.eval(script.lua, script.numberOfKeys, ...keys, ...args)) as T;
}
