import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SileroVad, VAD_FRAME_SAMPLES } from '../src/vad/silero-vad.js';
import { detectSpeech } from '../src/vad/detect-speech.js';
import { DEFAULT_SEGMENTER_OPTIONS, SpeechSegmenter } from '../src/vad/speech-segmenter.js';
import { espeakSpeech, sequence, silence, soundExtent, soxNoise } from '@clinic-hub/test-kit/speech';

/**
 * The real Silero VAD model (through onnxruntime-node) on espeak-ng speech
 * with known silence around it, and on noise.
 */
let vad: SileroVad;
beforeAll(async () => {
  vad = await SileroVad.load();
});
afterAll(async () => {
  await vad.release();
});

const ms = (samples: number) => Math.round(samples / 16);
const PAD = ms(Math.ceil((DEFAULT_SEGMENTER_OPTIONS.speechPadMs * 16) / VAD_FRAME_SAMPLES) * VAD_FRAME_SAMPLES);

describe('Silero VAD on espeak-ng speech', () => {
  it('finds an utterance where each sentence is (English and Japanese in kana), none in the silence around them', async () => {
    const english = espeakSpeech('The patient reports a mild headache since yesterday morning.', { voice: 'en' });
    const japanese = espeakSpeech('きのうから あたまが すこし いたいです', { voice: 'ja' });
    const { samples, starts } = sequence(silence(1.2), english, silence(1.6), japanese, silence(1.2));
    const truth = [
      { piece: 'en', start: starts[1]! + soundExtent(english).first, end: starts[1]! + soundExtent(english).last },
      { piece: 'ja', start: starts[3]! + soundExtent(japanese).first, end: starts[3]! + soundExtent(japanese).last },
    ];
    const started = performance.now();
    const segments = await detectSpeech(vad, samples);
    const elapsed = performance.now() - started;
    console.log(
      `VAD: ${(samples.length / 16000).toFixed(1)} s of audio in ${elapsed.toFixed(0)} ms (${((elapsed / samples.length) * 16000).toFixed(1)} ms per audio second);`,
      'speech (ms):', truth.map((t) => `${t.piece} ${ms(t.start)}–${ms(t.end)}`).join(', '),
      '; segments (ms):', segments.map((s) => `${ms(s.startSample)}–${ms(s.endSample)}`).join(', '),
    );
    expect(segments.length).toBeGreaterThanOrEqual(2);
    // Every segment lies within a sentence (plus the padding and one frame of slack): nothing in the silences.
    const slack = PAD + 64;
    for (const segment of segments) {
      const home = truth.find((t) => ms(segment.startSample) >= ms(t.start) - slack && ms(segment.endSample) <= ms(t.end) + slack);
      expect(home, `segment ${ms(segment.startSample)}–${ms(segment.endSample)} ms lies outside the speech`).toBeDefined();
    }
    // Each sentence is covered, from near its first sound to near its last.
    for (const t of truth) {
      const inside = segments.filter((s) => s.endSample > t.start && s.startSample < t.end);
      expect(inside.length, `no segment in the ${t.piece} sentence`).toBeGreaterThanOrEqual(1);
      expect(ms(inside[0]!.startSample - t.start)).toBeLessThan(300);
      expect(ms(t.end - inside.at(-1)!.endSample)).toBeLessThan(400);
      const covered = inside.reduce((sum, s) => sum + Math.min(s.endSample, t.end) - Math.max(s.startSample, t.start), 0);
      expect(covered / (t.end - t.start)).toBeGreaterThan(0.8);
    }
  });

  it('finds no speech in white, pink or brown noise, nor in silence', async () => {
    for (const [kind, volume] of [['whitenoise', 0.3], ['pinknoise', 0.3], ['brownnoise', 0.5]] as const) {
      const noise = soxNoise(kind, 4, volume);
      const segments = await detectSpeech(vad, noise);
      console.log(`${kind} at ${volume}: ${segments.length} segments`);
      expect(segments, kind).toEqual([]);
    }
    const random = new Float32Array(3 * 16000);
    let seed = 42;
    for (let i = 0; i < random.length; i++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      random[i] = (seed / 2 ** 31 - 0.5) * 0.4;
    }
    expect(await detectSpeech(vad, random)).toEqual([]);
    expect(await detectSpeech(vad, silence(3))).toEqual([]);
  });

  it('finds the speech inside noise, and each stream keeps its own state', async () => {
    const speech = espeakSpeech('Please take a deep breath and hold it.', { voice: 'en' });
    const noise = soxNoise('whitenoise', 6, 0.02);
    const mixed = noise.slice();
    const at = 2 * 16000;
    for (let i = 0; i < speech.length && at + i < mixed.length; i++) mixed[at + i]! += speech[i]!;
    const segments = await detectSpeech(vad, mixed);
    console.log('speech in noise, segments (ms):', segments.map((s) => `${ms(s.startSample)}–${ms(s.endSample)}`).join(', '));
    expect(segments.length).toBeGreaterThanOrEqual(1);
    expect(ms(segments[0]!.startSample)).toBeGreaterThan(2000 - PAD - 64);
    // Two interleaved streams give the same answer as one stream alone.
    const a = vad.createStream();
    const b = vad.createStream();
    const alone = vad.createStream();
    for (let offset = 0; offset + VAD_FRAME_SAMPLES <= 64 * VAD_FRAME_SAMPLES; offset += VAD_FRAME_SAMPLES) {
      const frame = mixed.subarray(at + offset, at + offset + VAD_FRAME_SAMPLES);
      const pa = await a.process(frame);
      await b.process(noise.subarray(offset, offset + VAD_FRAME_SAMPLES));
      expect(pa).toBeCloseTo(await alone.process(frame), 5);
    }
  });
});

describe('SpeechSegmenter', () => {
  const frame = new Float32Array(VAD_FRAME_SAMPLES);
  const run = (probabilities: number[]) => {
    const segmenter = new SpeechSegmenter({ ...DEFAULT_SEGMENTER_OPTIONS, minSpeechMs: 96, minSilenceMs: 160, speechPadMs: 64, maxUtteranceMs: 640 });
    const events = probabilities.flatMap((p) => segmenter.push(frame, p));
    return [...events, ...segmenter.flush()].map((e) => (e.type === 'audio' ? 'a' : e.type === 'start' ? `start@${e.startSample / VAD_FRAME_SAMPLES}` : `end@${e.endSample / VAD_FRAME_SAMPLES}:${e.reason}`));
  };

  it('starts after minSpeech with pre-roll, holds pauses back, ends after minSilence with padding', () => {
    // frames: 0-3 silence, 4-9 speech, 10 a breath, 11-12 speech, 13-19 silence
    const p = [0, 0, 0, 0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.1, 0.9, 0.9, 0, 0, 0, 0, 0, 0, 0];
    const events = run(p);
    // start at frame 2 (2 frames of pre-roll before frame 4)
    expect(events[0]).toBe('start@2');
    expect(events.filter((e) => e === 'a').length).toBe(2 + 6 + 1 + 2 + 2);
    expect(events).toContain('end@15:silence');
    expect(events.filter((e) => e.startsWith('start')).length).toBe(1);
  });

  it('drops bursts shorter than minSpeech and cuts utterances at maxUtterance', () => {
    expect(run([0, 0.9, 0, 0, 0, 0, 0, 0])).toEqual([]);
    const long = run(Array.from({ length: 45 }, () => 0.9));
    expect(long.filter((e) => e.startsWith('start')).length).toBe(3);
    expect(long.filter((e) => e.includes('max-length')).length).toBe(2);
    expect(long.at(-1)).toBe('end@45:flush');
  });
});
