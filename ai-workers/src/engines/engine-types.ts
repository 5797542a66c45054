import type { ConsultLanguage } from '@clinic-hub/protocol';
import type { Logger } from 'pino';
import type { LabelProbability } from './audio-classifier.js';

/** What a speech-to-text stream tells the participant's pipeline, besides the final texts it returns. */
export interface SttStreamHooks {
  /** A partial transcript of the utterance so far. */
  onPartial(utterance: string, text: string): void;
  /** True while the worker is behind the audio: partial work is skipped (finals never are). */
  dropPartials(): boolean;
  /** A partial was skipped because of dropPartials(). */
  onPartialDropped(): void;
}

/**
 * One participant's speech-to-text: utterances one after another, each
 * `begin`, its speech audio (16 kHz float samples, in order), `end`. `end`
 * resolves with the final text; the next utterance may begin before it does.
 */
export interface SttStream {
  begin(utterance: string): void;
  audio(samples: Float32Array): void;
  end(): Promise<string>;
  /** No more utterances: finish the pending ones, release the connection. */
  close(): Promise<void>;
}

export interface SttEngine {
  /** `local-ctc` or `deepgram`: the metric label. */
  readonly kind: string;
  /** Whether it can transcribe this language (a local engine needs a model for it). */
  supports(language: ConsultLanguage): boolean;
  /** Named in each result's `engine` (model or service), e.g. `local-ctc/wav2vec2-ja`. */
  engineName(language: ConsultLanguage): string;
  openStream(language: ConsultLanguage, hooks: SttStreamHooks, log: Logger): SttStream;
  close(): Promise<void>;
}

export interface EmotionEngine {
  readonly kind: string;
  readonly name: string;
  classify(samples: Float32Array): Promise<LabelProbability[]>;
  close(): Promise<void>;
}
