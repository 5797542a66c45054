import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { AiError } from '../errors.js';
import { pullHint, readJson } from '../models/model-folder.js';

/** The parts of a Wav2Vec2FeatureExtractor's preprocessor_config.json that raw-waveform models need. */
const PreprocessorConfig = z.object({
  sampling_rate: z.number().default(16000),
  do_normalize: z.boolean().default(true),
  padding_value: z.number().default(0),
  return_attention_mask: z.boolean().default(false),
});

/**
 * Prepares raw 16 kHz audio as the model was trained to see it, the way
 * transformers' Wav2Vec2FeatureExtractor does: with do_normalize, zero mean
 * and unit variance over the input (each chunk on its own, as the
 * transformers pipeline does when it chunks).
 */
export class FeatureExtractor {
  private constructor(
    readonly doNormalize: boolean,
    readonly paddingValue: number,
  ) {}

  static fromFolder(dir: string, model: string): FeatureExtractor {
    const file = join(dir, 'preprocessor_config.json');
    if (!existsSync(file)) throw new AiError('AI_MODEL_MISSING', `model "${model}" has no preprocessor_config.json: ${pullHint(model, true)}`);
    const parsed = PreprocessorConfig.safeParse(readJson(file, model));
    if (!parsed.success) throw new AiError('AI_MODEL_INVALID', `${file}: ${parsed.error.issues[0]?.path.join('.')} ${parsed.error.issues[0]?.message}`);
    if (parsed.data.sampling_rate !== 16000) {
      throw new AiError('AI_MODEL_INVALID', `model "${model}" expects ${parsed.data.sampling_rate} Hz audio; the audio tap gives 16000 Hz`);
    }
    return new FeatureExtractor(parsed.data.do_normalize, parsed.data.padding_value);
  }

  /** A copy of the samples, normalised if the model wants it, padded to at least `minSamples`. */
  prepare(samples: Float32Array, minSamples = 0): Float32Array {
    const out = new Float32Array(Math.max(samples.length, minSamples)).fill(this.paddingValue);
    if (!this.doNormalize) {
      out.set(samples);
      return out;
    }
    let mean = 0;
    for (let i = 0; i < samples.length; i++) mean += samples[i]!;
    mean /= Math.max(1, samples.length);
    let variance = 0;
    for (let i = 0; i < samples.length; i++) variance += (samples[i]! - mean) ** 2;
    variance /= Math.max(1, samples.length);
    const scale = 1 / Math.sqrt(variance + 1e-7);
    for (let i = 0; i < samples.length; i++) out[i] = (samples[i]! - mean) * scale;
    return out;
  }
}
