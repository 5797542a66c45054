import { join } from 'node:path';
import { z } from 'zod';
import { AiError } from '../errors.js';
import { openModelFolder, pullHint, readJson } from '../models/model-folder.js';
import { FeatureExtractor } from './feature-extractor.js';
import { OnnxAudioModel, type OnnxOptions } from './onnx-audio-model.js';

export interface LabelProbability {
  label: string;
  p: number;
}

const ClassifierConfig = z.object({ id2label: z.record(z.string(), z.string().min(1)) });

/** Longer utterances are classified on their first 30 s (wav2vec2 classifiers are trained on clips of a few seconds). */
const MAX_SAMPLES = 30 * 16000;
const MIN_SAMPLES = 400;

/**
 * An audio-classification model (Wav2Vec2ForSequenceClassification and
 * kin) in Optimum's layout: logits [1, labels] → softmax → the names from
 * config.json's id2label.
 */
export class AudioClassifier {
  private constructor(
    readonly name: string,
    private readonly model: OnnxAudioModel,
    private readonly features: FeatureExtractor,
    readonly labels: string[],
  ) {}

  static async load(modelsDir: string, name: string, options: OnnxOptions & { verify: boolean }): Promise<AudioClassifier> {
    const { dir } = await openModelFolder(modelsDir, name, 'audio-classification', options);
    const config = ClassifierConfig.safeParse(readJson(join(dir, 'config.json'), name));
    if (!config.success) throw new AiError('AI_MODEL_INVALID', `model "${name}": config.json has no id2label map: ${pullHint(name, true)}`);
    const entries = Object.entries(config.data.id2label).map(([id, label]) => [Number(id), label] as const);
    const labels: string[] = [];
    for (const [id, label] of entries) {
      if (!Number.isInteger(id) || id < 0 || id >= entries.length) throw new AiError('AI_MODEL_INVALID', `model "${name}": id2label ids must be 0…${entries.length - 1} (got ${id})`);
      labels[id] = label;
    }
    const features = FeatureExtractor.fromFolder(dir, name);
    const model = await OnnxAudioModel.load(dir, name, options);
    const probe = new Float32Array(16000).map((_, i) => 0.05 * Math.sin(i / 5));
    const { dims } = await model.run(features.prepare(probe, MIN_SAMPLES));
    if (dims.length !== 2 || dims[1] !== labels.length) {
      throw new AiError('AI_MODEL_INVALID', `model "${name}" gives logits of shape [${dims.join(', ')}] but config.json names ${labels.length} labels`);
    }
    return new AudioClassifier(name, model, features, labels);
  }

  /** Per-label probabilities, highest first, summing to 1. */
  async classify(samples: Float32Array): Promise<LabelProbability[]> {
    const input = this.features.prepare(samples.subarray(0, MAX_SAMPLES), MIN_SAMPLES);
    const { data } = await this.model.run(input);
    return softmax(Array.from(data.subarray(0, this.labels.length)))
      .map((p, i) => ({ label: this.labels[i]!, p }))
      .sort((a, b) => b.p - a.p);
  }

  async release(): Promise<void> {
    await this.model.release();
  }
}

export function softmax(logits: number[]): number[] {
  const max = Math.max(...logits);
  const exps = logits.map((v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((v) => v / sum);
}
