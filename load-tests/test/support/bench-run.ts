import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { expect } from 'vitest';
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

/** Runs a benchmark's CLI to the end. */
export async function runBench(script: string, args: string[]): Promise<{ code: number | null; output: string }> {
  const run = startBench(script, args);
  const code = await run.exited;
  return { code, output: run.output() };
}

/** p50 ≤ p95 ≤ p99 ≤ max (max may be unknown for histogram figures). */
export function expectOrdered(f: Pick<LatencyFigures, 'p50_ms' | 'p95_ms' | 'p99_ms' | 'max_ms'>): void {
  expect(f.p50_ms).toBeGreaterThanOrEqual(0);
  expect(f.p95_ms!).toBeGreaterThanOrEqual(f.p50_ms!);
  expect(f.p99_ms!).toBeGreaterThanOrEqual(f.p95_ms!);
  if (f.max_ms !== null) expect(f.max_ms).toBeGreaterThanOrEqual(f.p99_ms!);
}
