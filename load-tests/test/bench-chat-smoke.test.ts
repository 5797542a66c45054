import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ChatBenchReport } from '../harness/bench-chat.js';
import type { LatencyFigures } from '../harness/report.js';
import { isRunning } from '@clinic-hub/test-kit/processes';
import { expectOrdered, pidsNamedIn, runBench, startBench } from './support/bench-run.js';

const dir = mkdtempSync(join(tmpdir(), 'bench-chat-smoke-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function ordered(f: LatencyFigures): void {
  expect(f.count).toBeGreaterThan(0);
  expectOrdered(f);
}

/** Every process the run printed a pid for (redis-server, hub nodes, generator processes, notification worker). */
describe('bench:chat', () => {
  it('runs chat and notifications end to end: complete deliveries, no duplicates, ordered percentiles', { timeout: 180_000 }, async () => {
    const out = join(dir, 'chat.json');
    const { code, output } = await runBench('bench-chat', ['--members', '50', '--seconds', '2', '--warmup', '0.5', '--notifications', '20', '--notify-warmup', '5', '--out', out]);
    expect(code, output).toBe(0);
    expect(output).toMatch(/\[chat\] connecting \d+\/50/);
    expect(output).toMatch(/send→delivery p99 \(ms\)/);
    expect(output).toMatch(/enqueue→provider p99 \(ms\)/);

    const report = JSON.parse(readFileSync(out, 'utf8')) as ChatBenchReport;
    const chat = report.chat;
    expect(chat.errors).toEqual([]);
    expect(chat.send_errors).toEqual({});
    expect(chat.members_connected).toBe(50);
    expect(chat.messages).toBe(40);
    expect(chat.warmup_messages).toBe(10);
    expect(chat.deliveries_expected).toBe(50 * 50);
    expect(chat.deliveries_received).toBe(chat.deliveries_expected);
    expect(chat.missing).toBe(0);
    expect(chat.duplicates).toBe(0);
    expect(chat.out_of_order).toBe(0);
    expect(chat.unexpected_messages).toBe(0);
    expect(chat.events_by_name['chat:message']).toBe(chat.deliveries_expected);
    ordered(chat.send_to_ack);
    ordered(chat.send_to_delivery);
    expect(chat.send_to_delivery.count).toBe(50 * 40);
    // A member cannot get a message before its sender wrote it.
    expect(chat.send_to_delivery.p50_ms!).toBeGreaterThan(0);
    expect(chat.delivery_by_node).toHaveLength(2);
    expect(chat.delivery_by_node.reduce((a, n) => a + n.members, 0)).toBe(50);
    for (const node of chat.delivery_by_node) {
      expect(node.members).toBeGreaterThan(0);
      ordered(node);
    }
    expect(chat.send_server.count).toBe(40);
    expect(chat.deliveries_per_second!).toBeGreaterThan(0);
    expect(chat.timeline).toHaveLength(40);
    expect(chat.hubs).toHaveLength(2);
    for (const hub of chat.hubs) {
      expect(hub.server).toBe('uws');
      expect(hub.cpu_percent!).toBeGreaterThan(0);
      expect(hub.peak_rss_mb!).toBeGreaterThan(10);
    }
    expect(chat.generator.cpu_percent!).toBeGreaterThan(0);
    expect(chat.ok).toBe(true);

    const notify = report.notifications!;
    expect(notify.errors).toEqual([]);
    expect(notify.notifications).toBe(20);
    expect(notify.received).toBe(25);
    expect(notify.missing).toBe(0);
    expect(notify.duplicates).toBe(0);
    ordered(notify.enqueue_to_provider);
    expect(notify.enqueue_to_provider.count).toBe(20);
    ordered(notify.enqueue_call);
    expect(notify.worker.cpu_percent!).toBeGreaterThan(0);
    expect(notify.ok).toBe(true);

    expect(report.ok).toBe(true);
    expect(report.machine.cpus).toBeGreaterThan(0);
    expect(report.machine.node).toBe(process.version);
    expect(Number.isNaN(Date.parse(report.date))).toBe(false);
    // Everything it started is gone.
    for (const pid of pidsNamedIn(output)) expect(isRunning(pid), `pid ${pid}`).toBe(false);
  });

  it('stops everything it started on Ctrl-C', { timeout: 60_000 }, async () => {
    const run = startBench('bench-chat', ['--members', '50', '--seconds', '30', '--no-out']);
    const deadline = Date.now() + 45_000;
    while (!/\[chat\] measuring/.test(run.output()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(run.output()).toMatch(/\[chat\] measuring/);
    run.child.kill('SIGINT');
    expect(await run.exited).toBe(130);
    for (const pid of pidsNamedIn(run.output())) expect(isRunning(pid), `pid ${pid}`).toBe(false);
  });
});
