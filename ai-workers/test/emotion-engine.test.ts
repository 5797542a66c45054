import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { rms } from '../src/audio/pcm.js';
import { AudioClassifier, softmax } from '../src/engines/audio-classifier.js';
import { StressSmoother, arousalOf, canonicalLabel, instantStressOf } from '../src/engines/emotion-scores.js';
import { writeEmotionFixture } from '@clinic-hub/test-kit/fixture-models';
import { espeakSpeech } from '@clinic-hub/test-kit/speech';
import { tempDir } from '@clinic-hub/test-kit/tmp';

/**
 * The local emotion engine with a fixture classifier whose logits are linear
 * in the input's RMS: the test computes the expected probabilities itself
 * from the audio. A check of feature handling and label mapping, not of
 * emotion recognition.
 */
const tmp = tempDir();
const options = { threads: 1, verify: true };
afterAll(() => tmp.cleanup());

const tone = (amplitude: number, seconds = 1) => new Float32Array(seconds * 16000).map((_, i) => amplitude * Math.sin((2 * Math.PI * 220 * i) / 16000));

describe('audio classifier (fixture)', () => {
  it('gives softmax probabilities named by id2label, highest first, following the signal energy', async () => {
    const fixture = writeEmotionFixture(join(tmp.dir, 'ser'));
    const model = await AudioClassifier.load(tmp.dir, 'ser', options);
    const speech = espeakSpeech('I am worried about the results.', { voice: 'en' });
    for (const audio of [tone(0.02), tone(0.15), tone(0.45), speech]) {
      const labels = await model.classify(audio);
      const expected = softmax(fixture.logitsFor(rms(audio)));
      expect(labels.map((l) => l.label).sort()).toEqual([...fixture.labels].sort());
      for (const { label, p } of labels) expect(p).toBeCloseTo(expected[fixture.labels.indexOf(label)]!, 4);
      expect(labels.reduce((s, l) => s + l.p, 0)).toBeCloseTo(1, 5);
      for (let i = 1; i < labels.length; i++) expect(labels[i - 1]!.p).toBeGreaterThanOrEqual(labels[i]!.p);
    }
    expect((await model.classify(tone(0.02)))[0]!.label).toBe('sad');
    expect((await model.classify(tone(0.1)))[0]!.label).toBe('neutral');
    expect((await model.classify(tone(0.45)))[0]!.label).toBe('angry');
    await model.release();
  });

  it('maps labels by their ids, in whatever order config.json lists them', async () => {
    writeEmotionFixture(join(tmp.dir, 'shuffled'), { id2label: { 0: 'ang', 1: 'sad', 2: 'neu', 3: 'hap' } });
    const model = await AudioClassifier.load(tmp.dir, 'shuffled', options);
    expect(model.labels).toEqual(['ang', 'sad', 'neu', 'hap']);
    expect((await model.classify(tone(0.45)))[0]!.label).toBe('ang');
    expect((await model.classify(tone(0.02)))[0]!.label).toBe('sad');
    await model.release();
  });

  it('refuses labels that do not fit the logits, and a config without id2label', async () => {
    writeEmotionFixture(join(tmp.dir, 'three'));
    writeFileSync(join(tmp.dir, 'three', 'config.json'), JSON.stringify({ id2label: { 0: 'a', 1: 'b', 2: 'c' } }));
    await expect(AudioClassifier.load(tmp.dir, 'three', options)).rejects.toThrow(/AI_MODEL_INVALID.*\[1, 4\].*3 labels/);
    writeFileSync(join(tmp.dir, 'three', 'config.json'), JSON.stringify({ labels: [] }));
    await expect(AudioClassifier.load(tmp.dir, 'three', options)).rejects.toThrow(/id2label/);
  });
});

describe('arousal and stress', () => {
  it('weights labels (abbreviations too) and smooths stress by utterance length', () => {
    expect(canonicalLabel('ANG')).toBe('angry');
    const calm = [{ label: 'neu', p: 0.9 }, { label: 'ang', p: 0.1 }];
    const upset = [{ label: 'angry', p: 0.8 }, { label: 'neutral', p: 0.2 }];
    expect(arousalOf(upset)).toBeGreaterThan(arousalOf(calm));
    expect(instantStressOf(upset)).toBeCloseTo(0.8 * 1 + 0.2 * 0.1, 6);
    const smoother = new StressSmoother(20);
    expect(smoother.update(instantStressOf(calm), 3)).toBeCloseTo(instantStressOf(calm), 6);
    const afterShort = new StressSmoother(20, smoother.current).update(instantStressOf(upset), 1);
    const afterLong = new StressSmoother(20, smoother.current).update(instantStressOf(upset), 10);
    expect(afterShort).toBeGreaterThan(smoother.current!);
    expect(afterLong).toBeGreaterThan(afterShort);
    expect(afterLong).toBeLessThan(instantStressOf(upset));
    expect(arousalOf([{ label: 'something-else', p: 1 }])).toBe(0.5);
  });
});
