import { AiError } from '../errors.js';
import { openModelFolder } from '../models/model-folder.js';
import { CtcTokenizer } from './ctc-tokenizer.js';
import { FeatureExtractor } from './feature-extractor.js';
import { OnnxAudioModel, type OnnxOptions } from './onnx-audio-model.js';

export interface ChunkOptions {
  /** Audio longer than this is cut into chunks of this length… */
  chunkSeconds: number;
  /** …overlapping by this much on each side; the overlap's logits are dropped (as transformers' pipeline does). */
  strideSeconds: number;
}

export const DEFAULT_CHUNKS: ChunkOptions = { chunkSeconds: 20, strideSeconds: 2.5 };

/** wav2vec2's convolutional front end needs at least one 400-sample receptive field. */
const MIN_SAMPLES = 400;

/**
 * A CTC speech-to-text model (wav2vec2, HuBERT, data2vec-audio fine-tuned
 * with CTC) in Optimum's layout, decoded greedily.
 */
export class CtcModel {
  private constructor(
    readonly name: string,
    private readonly model: OnnxAudioModel,
    private readonly features: FeatureExtractor,
    readonly tokenizer: CtcTokenizer,
  ) {}

  static async load(modelsDir: string, name: string, options: OnnxOptions & { verify: boolean }): Promise<CtcModel> {
    const { dir } = await openModelFolder(modelsDir, name, 'ctc', options);
    const tokenizer = CtcTokenizer.fromFolder(dir, name);
    const features = FeatureExtractor.fromFolder(dir, name);
    const model = await OnnxAudioModel.load(dir, name, options);
    const ctc = new CtcModel(name, model, features, tokenizer);
    // One second of quiet through the model: the shapes must be [1, frames, vocabulary].
    const probe = new Float32Array(16000).map((_, i) => 0.01 * Math.sin(i / 7));
    const { dims } = await model.run(features.prepare(probe, MIN_SAMPLES));
    if (dims.length !== 3 || dims[0] !== 1 || !(dims[1]! > 0)) {
      throw new AiError('AI_MODEL_INVALID', `model "${name}" gives logits of shape [${dims.join(', ')}]; a CTC model gives [batch, frames, vocabulary]`);
    }
    if (dims[2]! < tokenizer.size) {
      throw new AiError('AI_MODEL_INVALID', `model "${name}" gives ${dims[2]} classes but its vocabulary has ${tokenizer.size} tokens`);
    }
    return ctc;
  }

  /** Logits frames for 16 kHz samples, chunked with strides when long. */
  async frameIds(samples: Float32Array, chunks: ChunkOptions = DEFAULT_CHUNKS): Promise<number[]> {
    const chunkLength = Math.round(chunks.chunkSeconds * 16000);
    const stride = Math.round(chunks.strideSeconds * 16000);
    if (samples.length <= chunkLength) return this.argmaxFrames(samples, 0, 0);
    const step = chunkLength - 2 * stride;
    if (step <= 0) throw new Error('chunkSeconds must be more than twice strideSeconds');
    const ids: number[] = [];
    for (let start = 0; ; start += step) {
      const end = Math.min(start + chunkLength, samples.length);
      const isLast = end >= samples.length;
      ids.push(...(await this.argmaxFrames(samples.subarray(start, end), start === 0 ? 0 : stride, isLast ? 0 : stride)));
      if (isLast) break;
    }
    return ids;
  }

  async transcribe(samples: Float32Array, chunks: ChunkOptions = DEFAULT_CHUNKS): Promise<string> {
    return this.tokenizer.decodeIds(await this.frameIds(samples, chunks));
  }

  async release(): Promise<void> {
    await this.model.release();
  }

  private async argmaxFrames(chunk: Float32Array, leftSamples: number, rightSamples: number): Promise<number[]> {
    const input = this.features.prepare(chunk, MIN_SAMPLES);
    const { data, dims } = await this.model.run(input);
    const frames = dims[1]!;
    const classes = dims[2]!;
    const ratio = frames / input.length;
    const from = Math.round(leftSamples * ratio);
    const to = frames - Math.round(rightSamples * ratio);
    const ids: number[] = [];
    for (let t = from; t < to; t++) {
      let best = 0;
      for (let c = 1; c < classes; c++) if (data[t * classes + c]! > data[t * classes + best]!) best = c;
      ids.push(best);
    }
    return ids;
  }
}
