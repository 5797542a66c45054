/**
 * Support for the consultation page's AI end-to-end test: speech WAVs for
 * Chromium's fake microphone, a browser that speaks them, an AI worker
 * process with the suite's fixture models, what the doctor's page shows as
 * it appears, and what the fixture engines must make of the audio the
 * media-server's tap wrote (worked out here, offline, from the same audio).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { consultKeys, type ConsultRole } from '@clinic-hub/protocol';
import type { Redis } from 'ioredis';
import type { Browser, BrowserContext } from 'playwright-core';
import { s16leToFloat32 } from '@clinic-hub/ai-workers/audio';
import type { CtcModel } from '@clinic-hub/ai-workers';
import { parseAudioEntry } from '@clinic-hub/ai-workers';
import type { SileroVad } from '@clinic-hub/ai-workers/vad';
import { detectSpeech } from '@clinic-hub/ai-workers/vad';
import type { SegmenterOptions } from '@clinic-hub/ai-workers/vad';
import { fixtureWorkerEnv } from '@clinic-hub/test-kit/worker-fixtures';
import { childNodeArgs } from '@clinic-hub/test-kit/hub-node';
import { launchChromium, mediaFlags } from '@clinic-hub/test-kit/browser';

const REPO_ROOT = resolve(import.meta.dirname, '../../..');

/**
 * espeak-ng speech (Japanese in kana) padded with silence, as a 48 kHz mono
 * 16-bit WAV for `--use-file-for-fake-audio-capture` (Chromium plays it in a loop).
 */
export function speechWav(file: string, text: string, options: { voice: string; silenceBefore: number; silenceAfter: number }): void {
  const raw = `${file}.espeak.wav`;
  execFileSync('espeak-ng', ['-v', options.voice, '-s', '150', '-w', raw, text]);
  execFileSync('sox', [raw, '-r', '48000', '-c', '1', '-b', '16', file, 'pad', String(options.silenceBefore), String(options.silenceAfter)]);
}

/** Headless Chromium with DESIGN.md's flags and a fake camera whose microphone is the WAV file. */
export function launchSpeakingChromium(wav: string): Promise<Browser> {
  return launchChromium(mediaFlags(wav));
}

export interface AiWorkerProcess {
  process: ChildProcess;
  logs(): string;
  stop(): Promise<void>;
}

/** `npm run ai:worker` as its own process with the fixture models (ai-workers/test/support). */
export function startAiWorkerProcess(redisUrl: string, modelsDir: string, workerId: string): AiWorkerProcess {
  const child = spawn(process.execPath, childNodeArgs(resolve(REPO_ROOT, 'ai-workers/src/main.ts')), {
    cwd: REPO_ROOT,
    env: { ...process.env, ...fixtureWorkerEnv(redisUrl, modelsDir, { AI_WORKER_ID: workerId, LOG_LEVEL: 'warn' }) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-20_000)));
  child.stderr!.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-20_000)));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    process: child,
    logs: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** A transcript line or an emotion trend as the page showed it, and when (the page's Date.now()). */
export type SeenOnPage =
  | { kind: 'partial' | 'final'; participant: string; role: string; utterance: string; startMs: number; endMs: number; at: number }
  | { kind: 'emotion'; participant: string; role: string; utterances: number; stress: number; endMs: number; at: number };

/**
 * Reports every new transcript line, every line that turns final and every
 * emotion trend update of every page of the context, as it happens, from a
 * MutationObserver the page cannot tell from its own code.
 */
export async function watchAiPanel(context: BrowserContext, onSeen: (seen: SeenOnPage & { page: string }) => void): Promise<void> {
  await context.exposeFunction('__reportAiPanel', (seen: SeenOnPage & { page: string }) => onSeen(seen));
  // A string: this file is type-checked without the DOM library; the script runs in the page.
  await context.addInitScript(`(() => {
    const reported = new Set();
    const look = () => {
      for (const line of document.querySelectorAll('.ai-line')) {
        const d = line.dataset;
        const key = 'line/' + d.participant + '/' + d.utterance + '/' + d.kind;
        if (reported.has(key)) continue;
        reported.add(key);
        window.__reportAiPanel({ page: location.pathname, kind: d.kind, participant: d.participant, role: d.role, utterance: d.utterance, startMs: Number(d.startMs), endMs: Number(d.endMs), at: Date.now() });
      }
      for (const trend of document.querySelectorAll('.ai-speaker-trend')) {
        const d = trend.dataset;
        const key = 'emotion/' + d.participant + '/' + d.utterances;
        if (reported.has(key)) continue;
        reported.add(key);
        window.__reportAiPanel({ page: location.pathname, kind: 'emotion', participant: d.participant, role: d.role, utterances: Number(d.utterances), stress: Number(d.stress), endMs: Number(d.endMs), at: Date.now() });
      }
    };
    new MutationObserver(look).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-kind', 'data-utterances'] });
  })()`);
}

export interface ExpectedFinal {
  participant: string;
  role: ConsultRole;
  startMs: number;
  endMs: number;
  text: string;
}

/**
 * What the worker must have made of each participant's audio in the
 * consultation's audio stream: the same entries fed the same way (a gap of
 * more than 200 ms as silence, a fresh pipeline after an `end` entry),
 * segmented by the same VAD rules, each utterance through the same CTC
 * model; times from the entries' `t` as the worker's sample clock has them.
 * The last utterance of a participant may be cut where the stream ends now.
 */
export async function expectedFinalsFromTap(redis: Redis, clinic: string, consult: string, vad: SileroVad, ctc: CtcModel, segmenter: SegmenterOptions): Promise<ExpectedFinal[]> {
  const GAP_MS = 200;
  interface Run { role: ConsultRole; parts: Float32Array[]; length: number; anchors: { sample: number; t: number }[]; expectedT: number | null }
  const finished: { participant: string; run: Run }[] = [];
  const open = new Map<string, Run>();
  const entries = (await redis.xrangeBuffer(consultKeys(clinic, consult).audio, '-', '+')) as [Buffer, Buffer[]][];
  for (const [idBuffer, fields] of entries) {
    const entry = parseAudioEntry(idBuffer.toString('latin1'), fields);
    if (!('participant' in entry)) continue;
    let run = open.get(entry.participant);
    if (entry.end) {
      if (run) finished.push({ participant: entry.participant, run });
      open.delete(entry.participant);
      continue;
    }
    if (!run) open.set(entry.participant, (run = { role: entry.role, parts: [], length: 0, anchors: [], expectedT: null }));
    if (run.expectedT !== null && entry.t - run.expectedT > GAP_MS) {
      const silenceMs = Math.min(entry.t - run.expectedT, segmenter.minSilenceMs + 100);
      run.anchors.push({ sample: run.length, t: run.expectedT });
      const silence = new Float32Array(Math.round((silenceMs * 16000) / 1000));
      run.parts.push(silence);
      run.length += silence.length;
    }
    run.anchors.push({ sample: run.length, t: entry.t });
    const samples = s16leToFloat32(entry.pcm);
    run.parts.push(samples);
    run.length += samples.length;
    run.expectedT = entry.t + (samples.length * 1000) / 16000;
  }
  for (const [participant, run] of open) finished.push({ participant, run });

  const out: ExpectedFinal[] = [];
  for (const { participant, run } of finished) {
    const samples = new Float32Array(run.length);
    let offset = 0;
    for (const part of run.parts) {
      samples.set(part, offset);
      offset += part.length;
    }
    const toMs = (sample: number) => {
      let anchor = run.anchors[0]!;
      for (const a of run.anchors) {
        if (a.sample > sample) break;
        anchor = a;
      }
      return Math.round(anchor.t + ((sample - anchor.sample) * 1000) / 16000);
    };
    for (const segment of await detectSpeech(vad, samples, segmenter)) {
      const text = (await ctc.transcribe(samples.subarray(segment.startSample, segment.endSample))).trim();
      out.push({ participant, role: run.role, startMs: toMs(segment.startSample), endMs: toMs(segment.endSample), text });
    }
  }
  return out;
}
