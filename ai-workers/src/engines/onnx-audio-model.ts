import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { AiError } from '../errors.js';
import { pullHint } from '../models/model-folder.js';

export interface OnnxOptions {
  /** Threads for one inference (onnxruntime's intra-op pool). */
  threads: number;
}

/**
 * A raw-waveform model as Optimum exports it: `input_values` [batch,
 * samples] (and `attention_mask` when the export has one) → `logits`.
 */
export class OnnxAudioModel {
  private constructor(
    readonly name: string,
    private readonly session: ort.InferenceSession,
    private readonly withMask: boolean,
  ) {}

  static async load(dir: string, name: string, options: OnnxOptions): Promise<OnnxAudioModel> {
    const path = join(dir, 'model.onnx');
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(path, {
        intraOpNumThreads: options.threads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
      });
    } catch (error) {
      throw new AiError('AI_MODEL_INVALID', `${path} cannot be loaded (${error instanceof Error ? error.message.split('\n')[0] : String(error)}): ${pullHint(name, true)}`, { cause: error });
    }
    if (!session.inputNames.includes('input_values')) {
      throw new AiError('AI_MODEL_INVALID', `${path} has inputs ${session.inputNames.join(', ')}; a raw-waveform export takes input_values`);
    }
    if (!session.outputNames.includes('logits')) {
      throw new AiError('AI_MODEL_INVALID', `${path} has outputs ${session.outputNames.join(', ')}; the export must give logits`);
    }
    return new OnnxAudioModel(name, session, session.inputNames.includes('attention_mask'));
  }

  /** Runs one input; returns the logits and their shape. */
  async run(input: Float32Array): Promise<{ data: Float32Array; dims: readonly number[] }> {
    const feeds: Record<string, ort.Tensor> = { input_values: new ort.Tensor('float32', input, [1, input.length]) };
    if (this.withMask) feeds.attention_mask = new ort.Tensor('int64', new BigInt64Array(input.length).fill(1n), [1, input.length]);
    const result = await this.session.run(feeds);
    const logits = result.logits!;
    return { data: logits.data as Float32Array, dims: logits.dims };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
