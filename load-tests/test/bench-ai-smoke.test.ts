import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { AiBenchReport } from '../harness/bench-ai.js';
import { expectOrdered, runBench } from './support/bench-run.js';

const dir = mkdtempSync(join(tmpdir(), 'bench-ai-smoke-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('bench:ai', () => {
  it('runs both engines end to end: every turn transcribed, ordered percentiles, worker figures', { timeout: 120_000 }, async () => {
    const out = join(dir, 'ai.json');
    const { code, output } = await runBench('bench-ai', ['--sessions', '1', '--seconds', '6', '--out', out]);
    expect(code, output).toBe(0);
    expect(output).toMatch(/speech end → final p50\/p95\/p99 \(ms\)/);
    const report = JSON.parse(readFileSync(out, 'utf8')) as AiBenchReport;
    expect(report.ok).toBe(true);
    expect(report.errors).toEqual([]);
    expect(report.engines.map((e) => e.engine)).toEqual(['local', 'deepgram']);
    for (const engine of report.engines) {
      expect(engine.turns).toBeGreaterThan(0);
      expect(engine.turns_missing).toBe(0);
      expect(engine.finals).toBeGreaterThanOrEqual(engine.turns);
      expect(engine.emotions).toBe(engine.finals);
      for (const f of [engine.speech_end_to_final, engine.speech_end_to_emotion, engine.speech_start_to_first_partial]) {
        expect(f.count).toBeGreaterThan(0);
        expectOrdered(f);
      }
      // A final cannot come before the VAD has heard the silence that ends the utterance.
      expect(engine.speech_end_to_final.p50_ms!).toBeGreaterThan(100);
      expect(engine.worker.cpu_percent).toBeGreaterThan(0);
      expect(engine.worker.peak_rss_mb).toBeGreaterThan(50);
      expect(engine.vad_ms_per_audio_second).toBeGreaterThan(0);
    }
    expect(report.vad_standalone_ms_per_audio_second).toBeGreaterThan(0);
  });
});
