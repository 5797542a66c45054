import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CtcModel } from '../src/engines/ctc-model.js';
import { LocalCtcEngine } from '../src/engines/local-ctc-engine.js';
import { AiError } from '../src/errors.js';
import { ENGLISH_VOCAB, JAPANESE_VOCAB, tonesFor, writeCtcFixture, type CtcFixture } from '@clinic-hub/test-kit/fixture-models';
import { silence, sequence } from '@clinic-hub/test-kit/speech';
import { tempDir } from '@clinic-hub/test-kit/tmp';

/**
 * The local CTC engine with fixture models this suite writes (tones in,
 * known tokens out). They check feature handling, chunking, decoding and the
 * streaming path; they recognise no speech.
 */
const tmp = tempDir();
const options = { threads: 1, verify: true };
let en: CtcFixture;
let ja: CtcFixture;
let enModel: CtcModel;
let jaModel: CtcModel;

beforeAll(async () => {
  en = writeCtcFixture(join(tmp.dir, 'ctc-en'), { vocab: ENGLISH_VOCAB });
  ja = writeCtcFixture(join(tmp.dir, 'ctc-ja'), { vocab: JAPANESE_VOCAB, tokenizerJson: true });
  enModel = await CtcModel.load(tmp.dir, 'ctc-en', options);
  jaModel = await CtcModel.load(tmp.dir, 'ctc-ja', options);
});
afterAll(async () => {
  await enModel?.release();
  await jaModel?.release();
  tmp.cleanup();
});

describe('CTC model (fixture)', () => {
  it('decodes a tone sequence to its text: repeats collapse only without a blank between, the delimiter is a space', async () => {
    expect(await enModel.transcribe(tonesFor(en, 'HELLO WORLD'))).toBe('HELLO WORLD');
    expect(await enModel.transcribe(tonesFor(en, "DON'T STOP"))).toBe("DON'T STOP");
    // Without a gap two equal tones are one run: CTC collapses them.
    expect(await enModel.transcribe(tonesFor(en, 'LL', { gapMs: 0 }))).toBe('L');
    expect(await enModel.transcribe(silence(1))).toBe('');
  });

  it('decodes Japanese kana (vocabulary from tokenizer.json)', async () => {
    expect(await jaModel.transcribe(tonesFor(ja, 'きのうから あたまが いたい'))).toBe('きのうから あたまが いたい');
  });

  it('normalises as preprocessor_config.json says: a quiet input decodes only with do_normalize', async () => {
    const quiet = tonesFor(en, 'QUIET', { amplitude: 0.05 });
    expect(await enModel.transcribe(quiet)).toBe('QUIET');
    writeCtcFixture(join(tmp.dir, 'ctc-raw'), { vocab: ENGLISH_VOCAB, doNormalize: false });
    const raw = await CtcModel.load(tmp.dir, 'ctc-raw', options);
    expect(await raw.transcribe(quiet)).toBe('');
    expect(await raw.transcribe(tonesFor(en, 'LOUD', { amplitude: 0.9 }))).toBe('LOUD');
    await raw.release();
  });

  it('chunks long audio with strides and gives the same frames as one pass', async () => {
    const text = 'THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG';
    const audio = sequence(silence(0.3), tonesFor(en, text), silence(0.3)).samples;
    const whole = await enModel.frameIds(audio, { chunkSeconds: 60, strideSeconds: 0 });
    // Chunks on the frame grid (1.6 s = 80 frames, strides 20 frames): exactly the frames of one pass, none twice, none lost.
    const aligned = await enModel.frameIds(audio, { chunkSeconds: 1.6, strideSeconds: 0.4 });
    expect(aligned).toEqual(whole);
    // Chunks off the grid: the frames shift by a fraction, the text is the same.
    const shifted = await enModel.frameIds(audio, { chunkSeconds: 1.55, strideSeconds: 0.37 });
    console.log(`${(audio.length / 16000).toFixed(1)} s: ${whole.length} frames in one pass, ${shifted.length} in 1.55 s chunks with 0.37 s strides`);
    expect(Math.abs(shifted.length - whole.length)).toBeLessThanOrEqual(3);
    expect(enModel.tokenizer.decodeIds(shifted)).toBe(text);
  });

  it('streams: partials of the utterance so far, then the final', async () => {
    const engine = new LocalCtcEngine({ en: enModel }, { partialIntervalMs: 300, chunks: { chunkSeconds: 20, strideSeconds: 2.5 } });
    const partials: string[] = [];
    let dropping = false;
    let dropped = 0;
    const stream = engine.openStream('en', { onPartial: (_u, text) => partials.push(text), dropPartials: () => dropping, onPartialDropped: () => dropped++ }, pino({ level: 'silent' }));
    const audio = tonesFor(en, 'GOOD MORNING DOCTOR');
    stream.begin('u1');
    for (let i = 0; i < audio.length; i += 512) {
      stream.audio(audio.subarray(i, i + 512));
      await new Promise((r) => setTimeout(r, 2));
    }
    const final = await stream.end();
    expect(final).toBe('GOOD MORNING DOCTOR');
    expect(partials.length).toBeGreaterThan(2);
    // Each partial is a prefix of the final text (the tones so far).
    for (const p of partials) expect('GOOD MORNING DOCTOR'.startsWith(p.slice(0, -1))).toBe(true);
    // Behind: partials are skipped and counted, the final still comes.
    dropping = true;
    stream.begin('u2');
    stream.audio(tonesFor(en, 'YES'));
    expect(await stream.end()).toBe('YES');
    expect(dropped).toBe(1);
    await stream.close();
    expect(engine.engineName('en')).toBe('local-ctc/ctc-en');
    expect(() => engine.openStream('ja', { onPartial() {}, dropPartials: () => false, onPartialDropped() {} }, pino({ level: 'silent' }))).toThrow(/AI_STT_MODEL_JA/);
  });

  it('refuses a missing or broken model with the file and the command', async () => {
    await expect(CtcModel.load(tmp.dir, 'nope', options)).rejects.toThrow(/AI_MODEL_MISSING.*clinic models pull nope/);
    writeCtcFixture(join(tmp.dir, 'broken'), { vocab: ENGLISH_VOCAB });
    writeFileSync(join(tmp.dir, 'broken', 'model.onnx'), 'not onnx');
    const error = await CtcModel.load(tmp.dir, 'broken', options).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AiError);
    expect((error as AiError).code).toBe('AI_MODEL_INVALID');
    expect((error as Error).message).toMatch(/broken\/model\.onnx.*clinic models pull broken --force/);
    // A vocabulary that does not fit the logits.
    writeCtcFixture(join(tmp.dir, 'small'), { vocab: ENGLISH_VOCAB });
    writeFileSync(join(tmp.dir, 'small', 'vocab.json'), JSON.stringify({ ...ENGLISH_VOCAB, EXTRA: 40 }));
    await expect(CtcModel.load(tmp.dir, 'small', options)).rejects.toThrow(/32 classes but its vocabulary has 41/);
  });
});
