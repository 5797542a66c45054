/**
 * What a benchmark's command line shares: its option table (parsed,
 * checked, --help written from it), Ctrl-C that stops everything the run
 * started, the table, the JSON report, and the exit code (0 all delivered,
 * 2 deliveries or connections failed, 1 could not run, 64 bad options,
 * 130 interrupted).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT } from './hub-process.js';
import { Resources } from './resources.js';
import { now } from './time.js';

interface OptionWords {
  /** The flag without `--`; by default the key in kebab-case (`chatMembers` → `chat-members`). */
  flag?: string;
  /** What --help shows for the value: `N`, `MS`, `FILE`. */
  arg?: string;
  help: string;
}

/**
 * One option of a benchmark. Numbers are checked against their bounds
 * (`integer` ones rounded after the check); `list: true` takes several,
 * comma-separated, each checked. Defaults go through the same checks.
 */
export type BenchOption = OptionWords &
  (
    | { kind: 'number' | 'integer'; min: number; max: number; list?: false; default: number }
    | { kind: 'number' | 'integer'; min: number; max: number; list: true; default: readonly number[] }
    | { kind: 'choice'; choices: readonly string[]; list?: false; default: string }
    | { kind: 'choice'; choices: readonly string[]; list: true; default: readonly string[] }
    /** No default: null when not given. `defaultHelp`: --help's words for a default worked out later. */
    | { kind: 'string'; default?: string; defaultHelp?: string }
    | { kind: 'boolean' }
  );

type OptionTable = Record<string, BenchOption>;

type ItemValue<O> = O extends { kind: 'number' | 'integer' }
  ? number
  : O extends { kind: 'choice'; choices: readonly (infer C)[] }
    ? C
    : O extends { kind: 'boolean' }
      ? boolean
      : O extends { default: string }
        ? string
        : string | null;

export type OptionValues<T extends OptionTable> = { -readonly [K in keyof T]: T[K] extends { list: true } ? ItemValue<T[K]>[] : ItemValue<T[K]> };

/** What every benchmark takes: `--out FILE` / `--no-out`, `--profile DIR` (and `--help`). */
export interface CommonOptions {
  /** Where to write the JSON report; null: do not write. */
  out: string | null;
  /** Write V8 CPU profiles of the processes the benchmark starts into this directory. */
  profileDir: string | null;
}

export interface BenchCommandLineSpec<T extends OptionTable, O> {
  /** The npm script: `bench:queue`. */
  name: string;
  /** The JSON report's default path, from the repository root. */
  report: string;
  /** What `--profile` profiles: `every hub node and generator process`. */
  profiles: string;
  options: T;
  /** Checks across options and values worked out from several; throws naming the option. */
  finish?(values: OptionValues<T> & CommonOptions): O;
}

export interface BenchCommandLine<O extends CommonOptions> {
  name: string;
  /** The --help text. */
  help: string;
  /** The options, or the help text when asked for; throws an Error whose message names the bad option. */
  parse(argv: string[]): { options: O } | { help: string };
  /** What no arguments give. */
  defaults: O;
}

/** A benchmark's command line from its option table. */
export function benchCommandLine<const T extends OptionTable, O extends CommonOptions = OptionValues<T> & CommonOptions>(
  spec: BenchCommandLineSpec<T, O>,
): BenchCommandLine<O> {
  const entries = Object.entries(spec.options).map(([key, option]) => ({ key, flag: option.flag ?? key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`), option }));
  const defaultReport = resolve(REPO_ROOT, spec.report);
  const parseArgsOptions = {
    ...Object.fromEntries(entries.map(({ flag, option }) => [flag, { type: option.kind === 'boolean' ? ('boolean' as const) : ('string' as const) }])),
    out: { type: 'string' as const },
    'no-out': { type: 'boolean' as const },
    profile: { type: 'string' as const },
    help: { type: 'boolean' as const, short: 'h' },
  };
  const help = helpText(`npm run ${spec.name} -- [options]`, [
    ...entries.map(({ flag, option }) => optionLine(flag, option)),
    ['--out FILE', `JSON report (default ${spec.report})`],
    ['--no-out', 'no JSON report'],
    ['--profile DIR', `--cpu-prof ${spec.profiles} into DIR`],
    ['-h, --help', 'this text'],
  ]);
  const build = (values: Record<string, string | boolean | undefined>): O => {
    const read = Object.fromEntries(entries.map(({ key, flag, option }) => [key, readOption(flag, option, values[flag])]));
    const out = values['no-out'] ? null : typeof values.out === 'string' && values.out ? resolve(values.out) : defaultReport;
    const profileDir = typeof values.profile === 'string' && values.profile ? resolve(values.profile) : null;
    const all = { ...read, out, profileDir } as OptionValues<T> & CommonOptions;
    return spec.finish ? spec.finish(all) : (all as unknown as O);
  };
  return {
    name: spec.name,
    help,
    parse(argv) {
      const { values } = parseArgs({ args: argv, options: parseArgsOptions, strict: true });
      return values.help ? { help } : { options: build(values) };
    },
    defaults: build({}),
  };
}

/** Everything but where the run writes its files: the `options` a JSON report records. */
export function reportedOptions<O extends CommonOptions>({ out: _out, profileDir: _profileDir, ...shown }: O): Omit<O, keyof CommonOptions> {
  return shown;
}

function readOption(flag: string, option: BenchOption, given: string | boolean | undefined): unknown {
  if (option.kind === 'boolean') return given === true;
  const text = typeof given === 'string' ? given : undefined;
  if (option.kind === 'string') return text ?? option.default ?? null;
  if (option.list) return (text ?? option.default.join(',')).split(',').map((item) => readItem(flag, option, item.trim()));
  return readItem(flag, option, text ?? String(option.default));
}

function readItem(flag: string, option: Extract<BenchOption, { kind: 'number' | 'integer' | 'choice' }>, text: string): number | string {
  if (option.kind === 'choice') {
    if (!option.choices.includes(text)) throw new Error(`--${flag} takes ${choiceWords(option)} (got "${text}")`);
    return text;
  }
  const n = Number(text);
  if (!Number.isFinite(n) || n < option.min || n > option.max) throw new Error(`--${flag} must be a number from ${option.min} to ${option.max} (got "${text}")`);
  return option.kind === 'integer' ? Math.round(n) : n;
}

/** `uws or node`; for lists, `uws and/or node`. */
function choiceWords(option: Extract<BenchOption, { kind: 'choice' }>): string {
  const { choices } = option;
  if (choices.length < 2) return choices.join('');
  return `${choices.slice(0, -1).join(', ')} ${option.list ? 'and/or' : 'or'} ${choices.at(-1)}`;
}

/** `--clients N` and its help with the default and what it takes: `… (default 2000; 1 to 20000)`. */
function optionLine(flag: string, option: BenchOption): [string, string] {
  if (option.kind === 'boolean') return [`--${flag}`, option.help];
  if (option.kind === 'string') {
    const shown = option.defaultHelp ?? option.default;
    return [`--${flag} ${option.arg ?? 'VALUE'}`, shown ? `${option.help} (default ${shown})` : option.help];
  }
  const arg = option.arg ?? (option.list ? 'LIST' : option.kind === 'choice' ? 'KIND' : 'N');
  const shownDefault = option.list ? option.default.join(',') : String(option.default);
  const takes = option.kind === 'choice' ? choiceWords(option) : `${option.list ? 'each ' : ''}${option.min} to ${option.max}`;
  return [`--${flag} ${arg}`, `${option.help} (default ${shownDefault}; ${takes})`];
}

function helpText(usage: string, lines: [string, string][]): string {
  const width = Math.max(...lines.map(([left]) => left.length));
  return [usage, ...lines.map(([left, right]) => `  ${left.padEnd(width)}  ${right}`), ''].join('\n');
}

export interface BenchCli<O extends CommonOptions, R extends { ok: boolean }> {
  commandLine: BenchCommandLine<O>;
  run(options: O, log: (line: string) => void, resources: Resources): Promise<R>;
  format(report: R): string;
  /** What goes into the JSON file (default: the report). */
  written?(report: R): unknown;
}

export async function runBenchCli<O extends CommonOptions, R extends { ok: boolean }>(cli: BenchCli<O, R>): Promise<never> {
  const name = cli.commandLine.name;
  let parsed: { options: O } | { help: string };
  try {
    parsed = cli.commandLine.parse(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n(--help lists the options)\n`);
    process.exit(64);
  }
  if ('help' in parsed) {
    process.stdout.write(parsed.help);
    process.exit(0);
  }
  const { options } = parsed;
  const log = (line: string) => process.stdout.write(`${line}\n`);
  const resources = new Resources();
  let interrupted = false;
  const interrupt = (signal: string) => {
    if (interrupted) {
      log(`${signal} again: exiting without waiting`);
      process.exit(130);
    }
    interrupted = true;
    log(`${signal}: stopping generator processes, hub processes and redis-server…`);
    void resources.stopAll(log).finally(() => process.exit(130));
  };
  process.on('SIGINT', () => interrupt('SIGINT'));
  process.on('SIGTERM', () => interrupt('SIGTERM'));

  const started = now();
  let report: R;
  try {
    report = await cli.run(options, log, resources);
  } catch (error) {
    if (interrupted) return new Promise<never>(() => undefined);
    process.stderr.write(`${name} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    await resources.stopAll(log);
    process.exit(1);
  }
  // Whatever the run left registered (redis-server, media-server, generators) stops before the process exits:
  // they run detached and would outlive it.
  await resources.stopAll(log);
  log('');
  log(cli.format(report));
  if (options.out) {
    mkdirSync(dirname(options.out), { recursive: true });
    writeFileSync(options.out, `${JSON.stringify(cli.written ? cli.written(report) : report, null, 2)}\n`);
    log(`report: ${options.out}`);
  }
  if (options.profileDir) log(`CPU profiles: ${options.profileDir}/<process>/ (open the largest in Chrome DevTools → Performance, or speedscope)`);
  log(`total ${((now() - started) / 1000).toFixed(1)} s`);
  if (!report.ok) {
    log('delivery or connection errors: see "errors" in the report');
    process.exit(2);
  }
  process.exit(0);
}
