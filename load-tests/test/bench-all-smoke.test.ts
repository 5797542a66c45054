import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { BenchAllReport, StepSide } from '../harness/bench-all.js';
import type { FanoutKind } from '../harness/bench-queue.js';
import { expectOrdered, runBench } from './support/bench-run.js';
import { xmlProblems } from './support/xml-well-formed.js';

const dir = mkdtempSync(join(tmpdir(), 'bench-all-smoke-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const KINDS: FanoutKind[] = ['uws', 'node', 'limit', 'mosquitto', 'nats'];

function sane(side: StepSide, server: FanoutKind, clients: number): void {
  expect(side.errors).toEqual([]);
  expect(side.ok).toBe(true);
  expect(side.server).toBe(server);
  expect(side.clients).toBe(clients);
  expect(side.clients_connected).toBe(clients);
  expect(side.calls).toBe(10);
  expect(side.deliveries_expected).toBeGreaterThan(10 * clients);
  expect(side.deliveries_received).toBe(side.deliveries_expected);
  expect(side.missing).toBe(0);
  expect(side.duplicates).toBe(0);
  expectOrdered(side);
  expect(side.messages_per_second!).toBeGreaterThan(0);
  expect(side.server_cpu!.ms_per_1000_deliveries!).toBeGreaterThan(0);
  if (server === 'uws' || server === 'node') {
    expect(side.server_actual).toEqual([server, server]);
    expect(side.hubs).toHaveLength(2);
    for (const hub of side.hubs) {
      expect(hub.cpu_percent!).toBeGreaterThan(0);
      expect(hub.peak_rss_mb!).toBeGreaterThan(10);
    }
  } else {
    expect(side.hubs).toEqual([]);
    expect(side.server_cpu!.processes).toBe(server === 'limit' ? 2 : 1);
  }
  expect(side.generator.cpu_percent!).toBeGreaterThan(0);
}

describe('bench (all scenarios, connection ramp)', () => {
  it('runs the ramp for the hub (uws, node), the limit and the peers, and chat; writes the JSON and a well-formed chart', { timeout: 300_000 }, async () => {
    const out = join(dir, 'bench.json');
    const { code, output } = await runBench('bench-all', [
      '--steps', '40,80', '--seconds', '1', '--warmup', '0.5', '--rate', '10',
      '--chat-members', '50', '--notifications', '10', '--out', out,
    ]);
    expect(code, output).toBe(0);
    expect(output).toMatch(/node\/uws p99/);
    expect(output).toMatch(/uws\/limit p99/);
    expect(output).toMatch(/send → delivery p50/);

    const report = JSON.parse(readFileSync(out, 'utf8')) as BenchAllReport;
    expect(report.fanout.steps.map((s) => s.clients)).toEqual([40, 80]);
    for (const step of report.fanout.steps) {
      for (const kind of KINDS) sane(step[kind]!, kind, step.clients);
      expect(step.p99_ratio_node_over_uws).toBeGreaterThan(0);
      expect(step.comparison!.over_limit.uws!.p99).toBeGreaterThan(0);
    }
    const chat = report.chat!;
    expect('error' in chat, JSON.stringify(chat).slice(0, 500)).toBe(false);
    if ('error' in chat) return;
    expect(chat.ok).toBe(true);
    expect(chat.chat.members_connected).toBe(50);
    expect(chat.chat.missing).toBe(0);
    expectOrdered(chat.chat.send_to_delivery);
    expect(chat.notifications!.missing).toBe(0);
    expect(report.ok).toBe(true);
    expect(report.machine.node).toBe(process.version);

    // The chart, next to the JSON: well-formed, a line per series (5 servers × p99/p50), a point per step.
    const svg = readFileSync(join(dir, 'bench-latency.svg'), 'utf8');
    expect(xmlProblems(svg)).toEqual([]);
    const lines = [...svg.matchAll(/<polyline [^>]*points="([^"]*)"/g)].map((m) => m[1]!.split(' ').length);
    expect(lines).toEqual(KINDS.flatMap(() => [2, 2]));
    expect(svg).toContain('>connected displays</text>');

    // Everything it started is gone: hub nodes, redis-servers, the notification worker.
    const pids = [...output.matchAll(/\bpid (\d+)/g)].map((m) => Number(m[1]));
    for (const step of report.fanout.steps) for (const hub of [...step.uws!.hubs, ...step.node!.hubs]) pids.push(hub.pid);
    expect(pids.length).toBeGreaterThan(16);
    for (const pid of pids) expect(() => process.kill(pid, 0), `pid ${pid}`).toThrow();
  });
});
