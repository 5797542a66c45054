import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { BenchReport, PhaseReport } from '../harness/bench-queue.js';
import { expectOrdered, runBench } from './support/bench-run.js';

const dir = mkdtempSync(join(tmpdir(), 'bench-queue-smoke-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

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
  expectOrdered(phase);
  expectOrdered(phase.queue_op);
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
    const { code, output } = await runBench('bench-queue', ['--clients', '100', '--seconds', '2', '--warmup', '0.5', '--rate', '10', '--out', out]);
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
