/**
 * The worker's source lists, read from the meson.build files the mediasoup
 * package ships, so the build follows the package rather than a copy of its
 * lists. Only what the default release build of `mediasoup-worker` uses is
 * read; an `if` this reader does not know around one of those lists stops the
 * build (a new mediasoup version that changes its build must be looked at,
 * not guessed).
 */
import { readFileSync } from 'node:fs';

/** meson options at their defaults (meson_options.txt) for the conditions that wrap the lists read here. */
const KNOWN_CONDITIONS: Record<string, boolean> = {
  "not get_option('ms_use_builtin_bwe')": true,
  "get_option('ms_use_builtin_bwe')": false,
  "get_option('ms_build_tests')": false,
  "get_option('ms_build_fuzzer')": false,
  "host_machine.system() == 'windows'": false,
};

export class MesonReadError extends Error {
  readonly code = 'MEDIASOUP_BUILD_MESON_UNREADABLE';
}

/**
 * The items of the list `name` in a meson.build: `name = [...]` and every
 * `name += [...]` whose enclosing `if`s hold with the default options.
 */
export function readMesonList(file: string, name: string): string[] {
  const lines = readFileSync(file, 'utf8').split('\n');
  const items: string[] = [];
  const conditions: string[] = [];
  let found = false;
  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i]!.trim();
    const ifMatch = /^if (.+)$/.exec(line);
    if (ifMatch) {
      conditions.push(ifMatch[1]!.trim());
      continue;
    }
    if (line === 'else' || line.startsWith('elif ')) {
      // Not evaluated: a list read here under an else fails below as an unknown condition.
      conditions.push(`${line} of ${conditions.pop() ?? ''}`);
      continue;
    }
    if (line === 'endif') {
      conditions.pop();
      continue;
    }
    const assign = new RegExp(`^${name} (\\+?=) \\[(.*)$`).exec(line);
    if (!assign) continue;
    const listed: string[] = [];
    let rest = assign[2]!;
    for (;;) {
      for (const match of rest.matchAll(/'([^']+)'/g)) listed.push(match[1]!);
      if (rest.includes(']')) break;
      i += 1;
      if (i >= lines.length) throw new MesonReadError(`${file}: the list ${name} is not closed`);
      rest = lines[i]!;
    }
    const holds = conditions.every((condition) => {
      const known = KNOWN_CONDITIONS[condition];
      if (known === undefined) throw new MesonReadError(`${file}: ${name} is changed under "if ${condition}", which this build does not know`);
      return known;
    });
    if (assign[1] === '=' && found) items.length = 0;
    found = true;
    if (holds) items.push(...listed);
  }
  if (!found) throw new MesonReadError(`${file}: no list named ${name}`);
  return items;
}

/** The executable target's extra sources: `sources: common_sources + ['src/main.cpp']`. */
export function readExecutableExtraSources(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const target = /executable\(\s*'mediasoup-worker',[\s\S]*?sources: common_sources \+ \[([^\]]*)\]/.exec(text);
  if (!target) throw new MesonReadError(`${file}: the mediasoup-worker executable's sources are not "common_sources + [...]"`);
  return [...target[1]!.matchAll(/'([^']+)'/g)].map((match) => match[1]!);
}
