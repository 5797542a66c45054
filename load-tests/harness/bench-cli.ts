/**
 * What a benchmark's command line shares: options or their error, Ctrl-C
 * that stops everything the run started, the table, the JSON report, and
 * the exit code (0 all delivered, 2 deliveries or connections failed,
 * 1 could not run, 64 bad options, 130 interrupted).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { Resources } from './resources.js';
import { now } from './time.js';

export interface BenchCli<O extends { out: string | null; profileDir: string | null }, R extends { ok: boolean }> {
  /** `bench:queue`, `bench:chat`: for messages. */
  name: string;
  /** Parses the arguments (exits after printing help); throws an Error whose message names the bad option. */
  parse(argv: string[]): O;
  run(options: O, log: (line: string) => void, resources: Resources): Promise<R>;
  format(report: R): string;
  /** What goes into the JSON file (default: the report). */
  written?(report: R): unknown;
}

export async function runBenchCli<O extends { out: string | null; profileDir: string | null }, R extends { ok: boolean }>(cli: BenchCli<O, R>): Promise<never> {
  let options: O;
  try {
    options = cli.parse(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n(--help lists the options)\n`);
    process.exit(64);
  }
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
    process.stderr.write(`${cli.name} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  }
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

/** A number option within bounds, or its default; throws naming the option otherwise. */
export function numberOption(name: string, value: string | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max) throw new Error(`--${name} must be a number from ${min} to ${max} (got "${value}")`);
  return n;
}
