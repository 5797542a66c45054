import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { SfuBenchReport } from '../harness/bench-sfu.js';
import { expectOrdered, runBench } from './support/bench-run.js';

const dir = mkdtempSync(join(tmpdir(), 'bench-sfu-smoke-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Both engines: on mediasoup the publishers are test-kit's MediasoupNodePeer (simulcast), on werift its NodePeer.
describe.each(['werift', 'mediasoup'] as const)('bench:sfu on %s', (engine) => {
  it(`measures a room of three ${engine} publishers end to end and writes the report`, { timeout: 120_000 }, async () => {
    const out = join(dir, `sfu-${engine}.json`);
    // mediasoup's counts are read from its workers at each scrape; its publishers take longer to settle.
    const seconds = engine === 'mediasoup' ? ['--seconds', '6', '--warmup', '5'] : ['--seconds', '3', '--warmup', '2'];
    const { code, output } = await runBench('bench-sfu', ['--engines', engine, '--servers', 'sfu', '--rooms', '1', ...seconds, '--generators', '1', '--video', '320x180', '--video-kbps', '150', '--out', out]);
    expect(code, output).toBe(0);
    expect(output).toMatch(/sfu, one 3-party room: [\d.]+% of a core/);
    const report = JSON.parse(readFileSync(out, 'utf8')) as SfuBenchReport;
    expect(report.errors).toEqual([]);
    expect(report.ok).toBe(true);
    const [run] = report.runs;
    expect(run!.server).toBe('sfu');
    expect(run!.engine).toBe(engine);
    const step = run!.steps[0]!;
    expect(step).toMatchObject({ rooms: 1, participants: 3, incoming_streams: 6, forwarded_streams: 12 });
    expect(step.delivery).toMatchObject({ streams_expected: 12, streams_flowing: 12 });
    expect(step.delivery.min_audio_packets_per_second!).toBeGreaterThan(30);
    expect(step.media_server.cpu_percent!).toBeGreaterThan(0);
    expect(step.bitrate_kbps.out!).toBeGreaterThan(step.bitrate_kbps.in!);
    expect(step.first_frame.count).toBe(6);
    expect(step.lost_packets).toBeGreaterThanOrEqual(0);
    expect(report.summary).toEqual([
      expect.objectContaining({ engine, server: 'sfu', rooms: 1, forwarded_streams: 12, lost_packets: step.lost_packets, first_frame_p95_ms: step.first_frame.p95_ms }),
    ]);
    expect(report.summary[0]!.cpu_percent_per_room!).toBeGreaterThan(0);
    expect(report.summary[0]!.load_average!).toBeGreaterThan(0);
    expectOrdered(step.first_frame);
    // The processes it started are gone.
    expect(output).toMatch(/media-server pid (\d+)/);
    const pid = Number(/media-server pid (\d+)/.exec(output)![1]);
    expect(() => process.kill(pid, 0)).toThrow();
  });
});
