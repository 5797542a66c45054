import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { BenchReport, LatencyFigures, PhaseReport } from '../harness/bench-queue.js';

const REPO_ROOT = resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'bench-queue-smoke-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the real CLI, as `npm run bench:queue` does, small: both phases, 100 displays, 2 s of calls. */
function runBench(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolveRun) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'load-tests/harness/bench-queue.ts', ...args], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.on('exit', (code) => resolveRun({ code, output }));
  });
}

function ordered(f: Pick<LatencyFigures, 'p50_ms' | 'p95_ms' | 'p99_ms' | 'max_ms'>): void {
  expect(f.p50_ms).toBeGreaterThanOrEqual(0);
  expect(f.p95_ms!).toBeGreaterThanOrEqual(f.p50_ms!);
  expect(f.p99_ms!).toBeGreaterThanOrEqual(f.p95_ms!);
  if (f.max_ms !== null) expect(f.max_ms).toBeGreaterThanOrEqual(f.p99_ms!);
}

function sane(phase: PhaseReport, clients: number, calls: number): void {
  expect(phase.errors).toEqual([]);
  expect(phase.call_errors).toEqual({});
  expect(phase.clients_connected).toBe(clients);
  expect(phase.calls).toBe(calls);
  expect(phase.deliveries_expected).toBe(clients * (phase.calls + phase.warmup_calls));
  expect(phase.deliveries_received).toBe(phase.deliveries_expected);
  expect(phase.missing).toBe(0);
  expect(phase.duplicates).toBe(0);
  expect(phase.unexpected_called_events).toBe(0);
  expect(phase.ok).toBe(true);
  ordered(phase);
  ordered(phase.queue_op);
  // Every call made four queue events reach every display (issued, called, started, done) but the first in each room.
  expect(phase.events_by_type['ticket.called']).toBe(phase.deliveries_expected);
  expect(phase.messages_per_second!).toBeGreaterThan(0);
  expect(phase.queue_op_server.count).toBe(calls);
  expect(phase.hubs).toHaveLength(2);
  for (const hub of phase.hubs) {
    expect(hub.server).toBe(phase.server);
    expect(hub.cpu_percent!).toBeGreaterThan(0);
    expect(hub.peak_rss_mb!).toBeGreaterThan(10);
  }
  expect(phase.generator.processes).toBe(4);
  expect(phase.generator.cpu_percent!).toBeGreaterThan(0);
  expect(phase.generator.peak_rss_mb!).toBeGreaterThan(10);
  expect(phase.connect_seconds!).toBeGreaterThan(0);
}

describe('bench:queue', () => {
  it('runs both phases end to end and reports complete deliveries with ordered percentiles', { timeout: 180_000 }, async () => {
    const out = join(dir, 'queue.json');
    const { code, output } = await runBench(['--clients', '100', '--seconds', '2', '--warmup', '0.5', '--rate', '10', '--out', out]);
    expect(code, output).toBe(0);
    expect(output).toMatch(/\[uws\] connecting \d+\/100/);
    expect(output).toMatch(/call→display p99 \(ms\)/);
    const report = JSON.parse(readFileSync(out, 'utf8')) as Omit<BenchReport, 'phases'>;
    const phases = [report as PhaseReport, report.baseline!];
    expect(phases.map((p) => p.server)).toEqual(['uws', 'node']);
    for (const phase of phases) sane(phase, 100, 20);
    expect(report.clients).toBe(100);
    expect(report.p99_ratio_baseline_over_uws).toBeGreaterThan(0);
    expect(report.machine.cpus).toBeGreaterThan(0);
    expect(report.machine.node).toBe(process.version);
    expect(Number.isNaN(Date.parse(report.date))).toBe(false);
    // Everything it started is gone.
    for (const phase of phases) {
      for (const hub of phase.hubs) expect(() => process.kill(hub.pid, 0)).toThrow();
    }
  });
});
