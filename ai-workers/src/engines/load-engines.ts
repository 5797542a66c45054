import type { AiWorkerConfig } from '../config.js';
import { SileroVad } from '../vad/silero-vad.js';
import { AudioClassifier } from './audio-classifier.js';
import { CtcModel, DEFAULT_CHUNKS } from './ctc-model.js';
import { DeepgramEngine } from './deepgram-engine.js';
import type { EmotionEngine, SttEngine } from './engine-types.js';
import { LocalCtcEngine } from './local-ctc-engine.js';
import { LocalEmotionEngine } from './local-emotion-engine.js';

export interface Engines {
  vad: SileroVad;
  stt: SttEngine;
  emotion: EmotionEngine | null;
  close(): Promise<void>;
}

/**
 * Loads what the configuration names, from the models directory only. A
 * missing or broken model throws an AiError that says which file and which
 * command fixes it; the worker stops on it.
 */
export async function loadEngines(config: AiWorkerConfig): Promise<Engines> {
  const onnx = { threads: config.models.threads, verify: config.models.verify };
  const vad = await SileroVad.load(config.vad.modelPath);
  let stt: SttEngine;
  if (config.stt.engine === 'local') {
    const models: { ja?: CtcModel; en?: CtcModel } = {};
    for (const language of ['ja', 'en'] as const) {
      const name = config.stt.models[language];
      if (name) models[language] = await CtcModel.load(config.models.dir, name, onnx);
    }
    stt = new LocalCtcEngine(models, { partialIntervalMs: config.stt.partialIntervalMs, chunks: DEFAULT_CHUNKS });
  } else {
    stt = new DeepgramEngine({ apiKey: config.stt.apiKey, url: config.stt.url, model: config.stt.model, keepAliveMs: config.stt.keepAliveMs, finalizeTimeoutMs: 2000, maxFinalWaitMs: 15_000 });
  }
  const emotion = config.emotion ? new LocalEmotionEngine(await AudioClassifier.load(config.models.dir, config.emotion.model, onnx)) : null;
  return {
    vad,
    stt,
    emotion,
    async close() {
      await Promise.allSettled([vad.release(), stt.close(), emotion?.close()]);
    },
  };
}
