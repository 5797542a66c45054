import { describe, expect, it } from 'vitest';
import { cleanEnv, runCli } from '@clinic-hub/test-kit/run-cli';

describe('clinic bench', () => {
  it('runs a harness scenario and prints its report as JSON, progress kept off stdout', { timeout: 180_000 }, async () => {
    const run = await runCli(
      ['bench', 'queue', '--json', '--', '--clients', '60', '--seconds', '1', '--warmup', '0', '--rate', '5', '--servers', 'uws', '--nodes', '1', '--workers', '1', '--settle', '1'],
      { env: cleanEnv(), timeoutMs: 170_000 },
    );
    expect(run.code, run.stderr).toBe(0);
    const report = run.json<{ server: string; clients: number; calls: number; deliveries_received: number; deliveries_expected: number; p99_ms: number; hubs: { cpu_percent: number }[] }>();
    expect(report.server).toBe('uws');
    expect(report.clients).toBe(60);
    expect(report.calls).toBe(5);
    expect(report.deliveries_received).toBe(report.deliveries_expected);
    expect(report.p99_ms).toBeGreaterThan(0);
    expect(report.hubs).toHaveLength(1);
    // The harness's progress lines went to stderr.
    expect(run.stderr).toMatch(/connecting \d+\/60/);
  });

  it('refuses an unknown scenario and bad harness options as usage errors (exit 2)', async () => {
    const unknown = await runCli(['bench', 'fanout', '--json'], { env: cleanEnv() });
    expect(unknown.code).toBe(2);
    expect(unknown.error()).toMatchObject({ code: 'USAGE', detail: expect.stringContaining('queue') });

    const bad = await runCli(['bench', 'queue', '--', '--clients', 'many'], { env: cleanEnv() });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--clients must be a number/);
  });
});
