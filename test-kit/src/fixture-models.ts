import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GraphBuilder } from './onnx-builder.js';

/**
 * Fixture models the test suite writes itself, in the layout Hugging Face
 * Optimum exports (model.onnx + vocab.json/tokenizer_config.json +
 * preprocessor_config.json + config.json), with the real exports' input and
 * output names and ranks. Their weights are chosen so that a known input
 * gives a known answer. They test feature handling, chunking, decoding,
 * label mapping and the streaming path — they recognise no speech and make
 * no accuracy claim.
 */

/** Samples per logit frame, as wav2vec2's convolutional front end (20 ms). */
export const CTC_FIXTURE_FRAME = 320;

/** wav2vec2-base-960h's vocabulary (letters, apostrophe, `|` between words). */
export const ENGLISH_VOCAB: Record<string, number> = Object.fromEntries(
  ['<pad>', '<s>', '</s>', '<unk>', '|', 'E', 'T', 'A', 'O', 'N', 'I', 'H', 'S', 'R', 'D', 'L', 'U', 'M', 'W', 'C', 'F', 'G', 'Y', 'P', 'B', 'V', 'K', "'", 'X', 'J', 'Q', 'Z'].map((t, i) => [t, i]),
);

/** A kana vocabulary in the style of the Japanese XLSR fine-tunes (characters, `|` between words). */
export const JAPANESE_VOCAB: Record<string, number> = Object.fromEntries(
  ['<pad>', '<s>', '</s>', '<unk>', '|', ...'あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをんがぎぐげござじずぜぞだでどばびぶべぼっゃゅょー'].map((t, i) => [t, i]),
);

/** Tokens from this id on each have a tone; lower ids (pad, s, /s, unk) never win a frame except pad (blank). */
const FIRST_TONED_ID = 4;
const toneHz = (id: number) => 300 + 100 * (id - FIRST_TONED_ID);

export interface CtcFixture {
  dir: string;
  vocab: Record<string, number>;
  frequencyOf(token: string): number;
}

export interface CtcFixtureOptions {
  vocab: Record<string, number>;
  /** preprocessor_config.json do_normalize. */
  doNormalize?: boolean;
  /** A token wins a frame when its tone's energy (amplitude²) beats this; below it the frame is blank. */
  blankThreshold?: number;
  /** Write tokenizer.json (fast tokenizer) instead of vocab.json. */
  tokenizerJson?: boolean;
}

/**
 * A CTC "speech recogniser" whose logits follow simple features of the
 * input: each 20 ms frame is projected onto a cosine and a sine at one
 * frequency per token (multiples of 100 Hz, orthogonal over the frame), the
 * squared projections summed give that tone's energy (amplitude² of a pure
 * tone), and the logit of a token is its tone's energy; blank's logit is a
 * constant threshold. So a sequence of tones separated by short silences
 * decodes to the tokens of those tones.
 */
export function writeCtcFixture(dir: string, options: CtcFixtureOptions): CtcFixture {
  const vocab = options.vocab;
  const size = Object.keys(vocab).length;
  const toned = Object.values(vocab).filter((id) => id >= FIRST_TONED_ID).sort((a, b) => a - b);
  const K = toned.length;
  if (toneHz(toned.at(-1)!) >= 7900) throw new Error('vocabulary too large for 100 Hz tone spacing below 8 kHz');
  const g = new GraphBuilder();
  const x = g.input('input_values', ['batch_size', 'sequence_length']);
  // frames = floor(n / 320); keep frames*320 samples; reshape to [batch, frames, 320]
  const shape = g.op('Shape', [x]);
  const n = g.op('Gather', [shape, g.ints([], [1])], { axis: 0 });
  const frameSize = g.ints([], [CTC_FIXTURE_FRAME]);
  const used = g.op('Mul', [g.op('Div', [n, frameSize]), frameSize]);
  const end = g.op('Unsqueeze', [used, g.ints([1], [0])]);
  const sliced = g.op('Slice', [x, g.ints([1], [0]), end, g.ints([1], [1])]);
  const framed = g.op('Reshape', [sliced, g.ints([3], [0, -1, CTC_FIXTURE_FRAME])]);
  // [320, 2K]: cos and sin of each token's tone, scaled so a tone of amplitude A has energy A².
  const basis = new Float32Array(CTC_FIXTURE_FRAME * 2 * K);
  toned.forEach((id, k) => {
    const w = (2 * Math.PI * toneHz(id)) / 16000;
    for (let t = 0; t < CTC_FIXTURE_FRAME; t++) {
      basis[t * 2 * K + 2 * k] = Math.cos(w * t) / (CTC_FIXTURE_FRAME / 2);
      basis[t * 2 * K + 2 * k + 1] = Math.sin(w * t) / (CTC_FIXTURE_FRAME / 2);
    }
  });
  const projected = g.op('MatMul', [framed, g.floats([CTC_FIXTURE_FRAME, 2 * K], basis)]);
  const squared = g.op('Mul', [projected, projected]);
  const pairSum = new Float32Array(2 * K * K);
  for (let k = 0; k < K; k++) {
    pairSum[2 * k * K + k] = 1;
    pairSum[(2 * k + 1) * K + k] = 1;
  }
  const energy = g.op('MatMul', [squared, g.floats([2 * K, K], pairSum)]);
  // [K, V]: tone k → its token's column; bias: blank at the threshold, the other untoned tokens far below.
  const toLogits = new Float32Array(K * size);
  toned.forEach((id, k) => (toLogits[k * size + id] = 1));
  const bias = new Float32Array(size).fill(-10);
  bias[vocab['<pad>']!] = options.blankThreshold ?? 0.3;
  toned.forEach((id) => (bias[id] = 0));
  g.op('Add', [g.op('MatMul', [energy, g.floats([K, size], toLogits)]), g.floats([size], bias)], {}, 'logits');
  g.output('logits', ['batch_size', 'frames', size]);

  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'model.onnx'), g.encode('ctc-fixture'));
  if (options.tokenizerJson) {
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify({ version: '1.0', model: { type: 'WordLevel', vocab, unk_token: '<unk>' }, added_tokens: [] }));
  } else {
    writeFileSync(join(dir, 'vocab.json'), JSON.stringify(vocab));
  }
  writeFileSync(
    join(dir, 'tokenizer_config.json'),
    JSON.stringify({ tokenizer_class: 'Wav2Vec2CTCTokenizer', pad_token: '<pad>', unk_token: '<unk>', bos_token: '<s>', eos_token: '</s>', word_delimiter_token: '|', do_lower_case: false }),
  );
  writeFileSync(join(dir, 'special_tokens_map.json'), JSON.stringify({ pad_token: '<pad>', unk_token: '<unk>', bos_token: '<s>', eos_token: '</s>' }));
  writeFileSync(
    join(dir, 'preprocessor_config.json'),
    JSON.stringify({ feature_extractor_type: 'Wav2Vec2FeatureExtractor', feature_size: 1, sampling_rate: 16000, padding_side: 'right', padding_value: 0, do_normalize: options.doNormalize ?? true, return_attention_mask: false }),
  );
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ architectures: ['Wav2Vec2ForCTC'], model_type: 'wav2vec2', vocab_size: size, pad_token_id: vocab['<pad>'] }));
  const tokenOf = new Map(Object.entries(vocab));
  return {
    dir,
    vocab,
    frequencyOf(token: string) {
      const id = tokenOf.get(token);
      if (id === undefined || id < FIRST_TONED_ID) throw new Error(`no tone for ${JSON.stringify(token)}`);
      return toneHz(id);
    },
  };
}

/**
 * The tone sequence a CTC fixture decodes to `text`: each character (a space
 * is the word delimiter `|`) a tone of toneMs, then gapMs of silence.
 */
export function tonesFor(fixture: CtcFixture, text: string, options: { amplitude?: number; toneMs?: number; gapMs?: number } = {}): Float32Array {
  const amplitude = options.amplitude ?? 0.5;
  const tone = Math.round(((options.toneMs ?? 100) * 16000) / 1000);
  const gap = Math.round(((options.gapMs ?? 40) * 16000) / 1000);
  const chars = [...text].map((c) => (c === ' ' ? '|' : c));
  const out = new Float32Array(chars.length * (tone + gap));
  chars.forEach((c, i) => {
    const w = (2 * Math.PI * fixture.frequencyOf(c)) / 16000;
    for (let t = 0; t < tone; t++) out[i * (tone + gap) + t] = amplitude * Math.sin(w * t);
  });
  return out;
}

export interface EmotionFixture {
  dir: string;
  labels: string[];
  /** The logits the model computes for an input of this RMS (the test's own reference). */
  logitsFor(rms: number): number[];
}

/**
 * An audio classifier whose probabilities follow signal energy: logits are
 * linear in the input's RMS (quiet → sad, moderate → neutral, loud → angry,
 * happy in between). id2label in config.json maps the logits to names; the
 * ids may be given in any order to test that mapping.
 */
export function writeEmotionFixture(dir: string, options: { id2label?: Record<number, string>; doNormalize?: boolean } = {}): EmotionFixture {
  const id2label = options.id2label ?? { 0: 'neutral', 1: 'happy', 2: 'angry', 3: 'sad' };
  const slopeOf: Record<string, [number, number]> = { neutral: [0, 1], happy: [8, -0.5], angry: [16, -2], sad: [-20, 2] };
  const ids = Object.keys(id2label).map(Number).sort((a, b) => a - b);
  const weights = ids.map((id) => slopeOf[id2label[id]!]?.[0] ?? 0);
  const biases = ids.map((id) => slopeOf[id2label[id]!]?.[1] ?? 0);
  const g = new GraphBuilder();
  const x = g.input('input_values', ['batch_size', 'sequence_length']);
  const meanSquare = g.op('ReduceMean', [g.op('Mul', [x, x])], { axes: [1], keepdims: 1 });
  const rms = g.op('Sqrt', [meanSquare]);
  g.op('Add', [g.op('MatMul', [rms, g.floats([1, ids.length], weights)]), g.floats([ids.length], biases)], {}, 'logits');
  g.output('logits', ['batch_size', ids.length]);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'model.onnx'), g.encode('emotion-fixture'));
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({
      architectures: ['Wav2Vec2ForSequenceClassification'],
      model_type: 'wav2vec2',
      id2label: Object.fromEntries(ids.map((id) => [String(id), id2label[id]])),
      label2id: Object.fromEntries(ids.map((id) => [id2label[id], id])),
    }),
  );
  writeFileSync(
    join(dir, 'preprocessor_config.json'),
    JSON.stringify({ feature_extractor_type: 'Wav2Vec2FeatureExtractor', feature_size: 1, sampling_rate: 16000, padding_value: 0, do_normalize: options.doNormalize ?? false, return_attention_mask: false }),
  );
  return {
    dir,
    labels: ids.map((id) => id2label[id]!),
    logitsFor: (value: number) => ids.map((_, i) => weights[i]! * value + biases[i]!),
  };
}
