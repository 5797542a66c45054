import type { AudioClassifier } from './audio-classifier.js';
import type { EmotionEngine } from './engine-types.js';

/** Emotion scores from a local audio-classification model. */
export class LocalEmotionEngine implements EmotionEngine {
  readonly kind = 'local-emotion';

  constructor(private readonly classifier: AudioClassifier) {}

  get name(): string {
    return `local-emotion/${this.classifier.name}`.slice(0, 64);
  }

  classify(samples: Float32Array) {
    return this.classifier.classify(samples);
  }

  close(): Promise<void> {
    return this.classifier.release();
  }
}
