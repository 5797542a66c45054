import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { expect } from 'vitest';
import { isRunning } from '@clinic-hub/test-kit/processes';
import type { LatencyFigures } from '../../harness/report.js';

const REPO_ROOT = resolve(import.meta.dirname, '../../..');

/** Starts a benchmark's real CLI (`load-tests/harness/NAME.ts`), as its npm script does. */
export function startBench(script: string, args: string[]): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', 'tsx', `load-tests/harness/${script}.ts`, ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, output: () => output, exited };
}

/** The processes a benchmark's output says it started ("… pid N", "pids N, M"); there is at least one. */
export function pidsNamedIn(output: string): number[] {
  const pids = [...output.matchAll(/\bpids? (\d+(?:, \d+)*)/g)].flatMap((m) => m[1]!.split(', ').map(Number));
  expect(pids.length, 'the benchmark names the processes it starts').toBeGreaterThan(0);
  return pids;
}

/** Runs a benchmark's CLI to the end; every process it said it started is gone by then. */
export async function runBench(script: string, args: string[]): Promise<{ code: number | null; output: string }> {
  const run = startBench(script, args);
  const code = await run.exited;
  const output = run.output();
  // A grandchild (a mediasoup-worker) ends on its own once its parent has gone: give it a moment.
  const named = pidsNamedIn(output);
  for (const deadline = Date.now() + 5000; named.some(isRunning) && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 100));
  expect(named.filter(isRunning), `processes ${script} left running`).toEqual([]);
  return { code, output };
}

/** p50 ≤ p95 ≤ p99 ≤ max (max may be unknown for histogram figures). */
export function expectOrdered(f: Pick<LatencyFigures, 'p50_ms' | 'p95_ms' | 'p99_ms' | 'max_ms'>): void {
  expect(f.p50_ms).toBeGreaterThanOrEqual(0);
  expect(f.p95_ms!).toBeGreaterThanOrEqual(f.p50_ms!);
  expect(f.p99_ms!).toBeGreaterThanOrEqual(f.p95_ms!);
  if (f.max_ms !== null) expect(f.max_ms).toBeGreaterThanOrEqual(f.p99_ms!);
}
