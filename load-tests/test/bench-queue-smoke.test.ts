import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { AnyPhaseReport, BenchReport, FanoutKind, PhaseReport } from '../harness/bench-queue.js';
import type { ComparisonPhaseReport } from '../harness/comparison-phase.js';
import { expectOrdered, runBench } from './support/bench-run.js';

const dir = mkdtempSync(join(tmpdir(), 'bench-queue-smoke-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const CLIENTS = 40;
const SECONDS = 1;
const RATES = [10, 20];

/** What every phase must show, whatever served the displays: every call reached every display exactly once. */
function delivered(phase: AnyPhaseReport, rate: number): void {
  const calls = rate * SECONDS;
  expect(phase.errors, phase.server).toEqual([]);
  expect(phase.clients_connected).toBe(CLIENTS);
  expect(phase.rate_per_second).toBe(rate);
  expect(phase.calls).toBe(calls);
  expect(phase.deliveries_expected).toBe(CLIENTS * (phase.calls + phase.warmup_calls));
  expect(phase.deliveries_received, phase.server).toBe(phase.deliveries_expected);
  expect(phase.missing).toBe(0);
  expect(phase.duplicates).toBe(0);
  expect(phase.unexpected_called_events).toBe(0);
  expect(phase.malformed).toBe(0);
  expect(phase.disconnects).toBe(0);
  expect(phase.ok).toBe(true);
  expectOrdered(phase);
  // Every call's events reach every display: issued, called, started, and done but in a room's first call.
  expect(phase.events_by_type['ticket.called']).toBe(phase.deliveries_expected);
  expect(phase.events_by_type['ticket.started']).toBe(phase.deliveries_expected);
  expect(phase.events_by_type['ticket.issued']).toBe(phase.deliveries_expected);
  expect(phase.messages_per_second!).toBeGreaterThan(0);
  expect(phase.bytes_per_call.payload!).toBeGreaterThan(500);
  expect(phase.bytes_per_call.wire!).toBeGreaterThanOrEqual(phase.bytes_per_call.payload!);
  expect(phase.server_cpu.ms_per_1000_deliveries!).toBeGreaterThan(0);
  expect(phase.server_cpu.peak_rss_mb!).toBeGreaterThan(1);
  expect(phase.generator.processes).toBe(4);
  expect(phase.generator.cpu_percent!).toBeGreaterThan(0);
  expect(phase.timeline).toHaveLength(calls);
}

function hubPhase(phase: PhaseReport, server: 'uws' | 'node'): void {
  expect(phase.server).toBe(server);
  expect(phase.call_errors).toEqual({});
  expectOrdered(phase.queue_op);
  expect(phase.queue_op_server.count).toBe(phase.calls);
  expect(phase.hubs).toHaveLength(2);
  expect(phase.server_cpu.processes).toBe(2);
  for (const hub of phase.hubs) {
    expect(hub.server).toBe(server);
    expect(hub.cpu_percent!).toBeGreaterThan(0);
    expect(hub.peak_rss_mb!).toBeGreaterThan(10);
  }
  expect(phase.server_cpu.with_redis_ms_per_1000_deliveries!).toBeGreaterThanOrEqual(phase.server_cpu.ms_per_1000_deliveries!);
}

function comparisonPhase(phase: ComparisonPhaseReport, server: 'limit' | 'mosquitto' | 'nats'): void {
  expect(phase.server).toBe(server);
  expect(phase.servers).toHaveLength(server === 'limit' ? 2 : 1);
  expect(phase.software).toMatch({ limit: /^uWebSockets\.js /, mosquitto: /^mosquitto 2\./, nats: /^nats-server 2\./ }[server]);
  expect(phase.wire).toMatch({ limit: /Engine\.IO/, mosquitto: /MQTT 3\.1\.1 over WebSocket, QoS 0/, nats: /NATS over WebSocket/ }[server]);
}

describe('bench:queue', () => {
  it('runs the hub, its baseline, the limit, Mosquitto and NATS at two rates; every delivery arrives on each; the JSON has them side by side', { timeout: 300_000 }, async () => {
    const out = join(dir, 'queue.json');
    const { code, output } = await runBench('bench-queue', ['--clients', String(CLIENTS), '--seconds', String(SECONDS), '--warmup', '0.5', '--rate', RATES.join(','), '--out', out]);
    expect(code, output).toBe(0);
    expect(output).toMatch(/\[uws\] connecting \d+\/40/);
    expect(output).toMatch(/\[mosquitto\] servers up: mosquitto pid \d+/);
    expect(output).toMatch(/call→display p99 \(ms\)/);
    expect(output).toMatch(/server CPU ms per 1,000 deliveries/);
    expect(output).toMatch(/^sweep: 40 displays$/m);
    expect(output).toMatch(/^aim at 10 calls\/s: hub \(uws\) p99 .* the limit's .*; below mosquitto .* and nats .*: (met|MISSED); CPU per 1,000 deliveries/m);

    const report = JSON.parse(readFileSync(out, 'utf8')) as Omit<BenchReport, 'phases' | 'rates'>;
    expect(report).not.toHaveProperty('phases');
    expect(report).not.toHaveProperty('rates');
    // The top level is the hub on uWS at the first rate; beside it the baseline, the limit and the peers.
    hubPhase(report as PhaseReport, 'uws');
    hubPhase(report.baseline!, 'node');
    comparisonPhase(report.limit!, 'limit');
    comparisonPhase(report.peers!.mosquitto!, 'mosquitto');
    comparisonPhase(report.peers!.nats!, 'nats');
    const first = [report as PhaseReport, report.baseline!, report.limit!, report.peers!.mosquitto!, report.peers!.nats!];
    for (const phase of first) delivered(phase, RATES[0]!);
    // The same events and the same bytes per call: every server carried the hub's own queue events.
    for (const phase of first) {
      expect(phase.events_by_type, phase.server).toEqual(report.events_by_type);
      expect(Math.abs(phase.bytes_per_call.payload! - report.bytes_per_call!.payload!), phase.server).toBeLessThanOrEqual(report.bytes_per_call!.payload! * 0.02);
    }

    const comparison = report.comparison!;
    expect(comparison.hub).toBe('uws');
    expect(Object.keys(comparison.over_limit).sort()).toEqual(['mosquitto', 'nats', 'node', 'uws']);
    for (const ratios of Object.values(comparison.over_limit)) {
      expect(ratios.p99).toBeGreaterThan(0);
      expect(ratios.cpu_per_1000_deliveries).toBeGreaterThan(0);
    }
    expect(comparison.over_limit.uws!.p99).toBeCloseTo(report.p99_ms! / report.limit!.p99_ms!, 1);
    for (const verdict of Object.values(comparison.aim)) expect(typeof verdict).toBe('boolean');

    // The sweep: every server at each rate.
    expect(report.sweep!.map((s) => s.rate_per_second)).toEqual(RATES);
    for (const entry of report.sweep!) {
      const kinds: FanoutKind[] = ['uws', 'node', 'limit', 'mosquitto', 'nats'];
      expect(Object.keys(entry.phases)).toEqual(kinds);
      for (const kind of kinds) {
        delivered({ ...entry.phases[kind]!, timeline: Array(entry.rate_per_second * SECONDS) } as AnyPhaseReport, entry.rate_per_second);
        expect(entry.phases[kind]!.events_by_type, kind).toEqual(entry.phases.uws!.events_by_type);
      }
      // 30 calls at 20/s: rooms are called a second time, which finishes their first patient.
      if (entry.rate_per_second === 20) expect(entry.phases.uws!.events_by_type['ticket.done']).toBe(10 * CLIENTS);
      expect(entry.phases.uws).not.toHaveProperty('timeline');
      expect(typeof entry.comparison.aim.p99_within_limit_factor).toBe('boolean');
    }
    expect(report.ok).toBe(true);
    expect(report.redis_mode).toBe('single');
    expect(report.redis!.replica_cpu_percent).toBeNull();
    expect(report.machine.node).toBe(process.version);
    expect(Number.isNaN(Date.parse(report.date))).toBe(false);
  });

  it('runs the hub on a Sentinel group it starts (--redis sentinel): every delivery arrives, each change waited for the replica', { timeout: 180_000 }, async () => {
    const out = join(dir, 'queue-sentinel.json');
    const { code, output } = await runBench('bench-queue', ['--redis', 'sentinel', '--servers', 'uws', '--clients', String(CLIENTS), '--seconds', String(SECONDS), '--warmup', '0.5', '--rate', '10', '--out', out]);
    expect(code, output).toBe(0);
    expect(output).toMatch(/Sentinel group: master pid \d+ on redis:\/\/127\.0\.0\.1:\d+, replica pid \d+/);
    expect(output).toMatch(/Sentinel: master \+ replica \(WAIT 1\)/);
    const report = JSON.parse(readFileSync(out, 'utf8')) as Omit<BenchReport, 'phases' | 'rates'>;
    hubPhase(report as PhaseReport, 'uws');
    delivered(report as PhaseReport, 10);
    expect(report.redis_mode).toBe('sentinel');
    expect(report.redis!.cpu_percent!).toBeGreaterThan(0);
    expect(report.redis!.replica_cpu_percent!).toBeGreaterThan(0);
    expect(report.redis!.total_cpu_percent).toBeCloseTo(report.redis!.cpu_percent! + report.redis!.replica_cpu_percent!, 0);
  });

  it('runs the hub on a Redis Cluster it starts (--redis cluster): every delivery arrives; Redis CPU is every node\'s', { timeout: 180_000 }, async () => {
    const out = join(dir, 'queue-cluster.json');
    const { code, output } = await runBench('bench-queue', ['--redis', 'cluster', '--servers', 'uws', '--clients', String(CLIENTS), '--seconds', String(SECONDS), '--warmup', '0.5', '--rate', '10', '--out', out]);
    expect(code, output).toBe(0);
    const started = /Redis Cluster: 3 masters \+ 3 replicas, pids ((?:\d+ \(\d+\)(?:, )?){6}); clinic bench on master pid (\d+) port (\d+)/.exec(output);
    expect(started, output).not.toBeNull();
    expect(started![1]).toContain(`${started![2]} (${started![3]})`);
    expect(output).toMatch(/Cluster: 3 masters \+ 3 replicas \(WAIT 1 on the shard\)/);
    const report = JSON.parse(readFileSync(out, 'utf8')) as Omit<BenchReport, 'phases' | 'rates'>;
    hubPhase(report as PhaseReport, 'uws');
    delivered(report as PhaseReport, 10);
    expect(report.redis_mode).toBe('cluster');
    // The clinic's master did the work; the other five nodes (its replica among them) applied or idled.
    expect(report.redis!.cpu_percent!).toBeGreaterThan(0);
    expect(report.redis!.replica_cpu_percent!).toBeGreaterThan(0);
    expect(report.redis!.total_cpu_percent).toBeCloseTo(report.redis!.cpu_percent! + report.redis!.replica_cpu_percent!, 0);
    expect(report.redis!.commands_per_second!).toBeGreaterThan(0);
  });
});
