import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { CliError } from '../cli-error.js';
import { examples, handle, jsonOption, type Runtime } from '../command-kit.js';

/** The Node harness, in the same repository as this CLI (load-tests/harness/). */
const HARNESS_DIR = fileURLToPath(new URL('../../../load-tests/harness/', import.meta.url));

/** Scenario → harness script. `all` is `npm run bench`: the display ramp (uWS vs Node) and chat. */
const SCENARIOS: Record<string, { script: string; what: string }> = {
  all: { script: 'bench-all.ts', what: 'display fan-out ramp, uWS against the Node baseline, then chat; JSON + SVG chart' },
  queue: { script: 'bench-queue.ts', what: 'display fan-out at one size, uWS then the Node baseline' },
  chat: { script: 'bench-chat.ts', what: 'chat send → ack → delivery, and notifications' },
  sfu: { script: 'bench-sfu.ts', what: 'media-server CPU and memory per room and per forwarded stream, first-frame times' },
  ai: { script: 'bench-ai.ts', what: 'speech end → transcript and → emotion per engine, VAD cost, worker CPU and RSS' },
};

/** What the harness's exit codes mean (load-tests/harness/bench-cli.ts). */
const HARNESS_EXIT = { ok: 0, failedDeliveries: 2, badOptions: 64, interrupted: 130 } as const;

export function registerBenchCommand(program: Command, runtime: Runtime): void {
  const bench = program
    .command('bench')
    .summary('run a latency benchmark against a stack it starts on this machine')
    .description(
      [
        'Runs one of the load-test harness scenarios on this machine: it starts its own Redis and hub',
        'nodes on 127.0.0.1, measures, prints p50/p95/p99, messages/s, CPU and RSS, and stops everything.',
        'Options after `--` go to the harness (`clinic bench queue -- --help` lists them).',
        '',
        'Scenarios:',
        ...Object.entries(SCENARIOS).map(([name, s]) => `  ${name.padEnd(6)} ${s.what}`),
      ].join('\n'),
    )
    .argument('[scenario]', `one of ${Object.keys(SCENARIOS).join(', ')}`, 'all')
    .argument('[harness-options...]', 'passed to the harness after --')
    .addOption(jsonOption());
  examples(bench, [
    'clinic bench                                  # the release check: ramp + chat, table and chart',
    'clinic bench queue -- --clients 5000 --rate 10',
    'clinic bench chat --json | jq .chat.send_to_delivery.p99_ms',
  ]);
  handle(bench, runtime, async ({ out, env }, options, args) => {
    const [scenario = 'all', ...harnessArgs] = args;
    const chosen = SCENARIOS[scenario];
    if (!chosen) throw new CliError('USAGE', { message: `unknown scenario "${scenario}"`, detail: `choose one of ${Object.keys(SCENARIOS).join(', ')}` });
    const script = join(HARNESS_DIR, chosen.script);
    if (!existsSync(script)) throw new CliError('BENCH_NOT_FOUND', { detail: script });

    // --json: the harness writes its report to a file of ours, its progress goes to stderr, the report to stdout.
    const reportDir = options.json ? mkdtempSync(join(tmpdir(), 'clinic-bench-')) : null;
    const reportFile = reportDir ? join(reportDir, 'report.json') : null;
    try {
      const code = await runHarness(script, reportFile ? [...harnessArgs, '--out', reportFile] : harnessArgs, Boolean(options.json), env);
      if (code === HARNESS_EXIT.badOptions) throw new CliError('USAGE', { message: 'the harness refused its options (see above)' });
      if (code === HARNESS_EXIT.interrupted) throw new CliError('BENCH_ERROR', { message: 'interrupted' });
      if (code !== HARNESS_EXIT.ok && code !== HARNESS_EXIT.failedDeliveries) throw new CliError('BENCH_ERROR', { detail: `harness exit code ${code}` });
      if (reportFile) out.data(JSON.parse(readFileSync(reportFile, 'utf8')));
      if (code === HARNESS_EXIT.failedDeliveries) throw new CliError('BENCH_FAILED');
    } finally {
      if (reportDir) rmSync(reportDir, { recursive: true, force: true });
    }
  });
}

function runHarness(script: string, args: string[], json: boolean, env: NodeJS.ProcessEnv): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
      cwd: join(HARNESS_DIR, '../..'),
      env,
      // Progress stays visible either way; with --json, stdout is kept for the report.
      stdio: ['ignore', json ? process.stderr : 'inherit', 'inherit'],
    });
    // Ctrl-C reaches the harness too (same process group); it stops what it started and exits 130.
    child.once('error', reject);
    child.once('exit', (code) => resolve(code));
  });
}
