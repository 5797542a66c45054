import type { ConsultLanguage } from '@clinic-hub/protocol';
import type { Logger } from 'pino';
import { concatFloat32, samplesIn } from '../audio/pcm.js';
import { AiError } from '../errors.js';
import type { ChunkOptions, CtcModel } from './ctc-model.js';
import type { SttEngine, SttStream, SttStreamHooks } from './engine-types.js';

export interface LocalCtcOptions {
  /** A partial is decoded after each this many ms of new speech (when the previous one is done). */
  partialIntervalMs: number;
  chunks: ChunkOptions;
}

/**
 * Speech-to-text with local CTC models through onnxruntime-node, one model
 * per consultation language. Partials decode the utterance so far while the
 * speaker talks; at most one partial per stream runs at a time, so a slow
 * model gives fewer partials, never a queue of them.
 */
export class LocalCtcEngine implements SttEngine {
  readonly kind = 'local-ctc';

  constructor(
    private readonly models: Partial<Record<ConsultLanguage, CtcModel>>,
    private readonly options: LocalCtcOptions,
  ) {}

  supports(language: ConsultLanguage): boolean {
    return this.models[language] !== undefined;
  }

  engineName(language: ConsultLanguage): string {
    return `local-ctc/${this.model(language).name}`.slice(0, 64);
  }

  openStream(language: ConsultLanguage, hooks: SttStreamHooks, log: Logger): SttStream {
    return new LocalCtcStream(this.model(language), this.options, hooks, log);
  }

  async close(): Promise<void> {
    await Promise.all(Object.values(this.models).map((model) => model?.release()));
  }

  private model(language: ConsultLanguage): CtcModel {
    const model = this.models[language];
    if (!model) throw new AiError('AI_MODEL_MISSING', `no speech-to-text model is configured for ${language} (AI_STT_MODEL_${language.toUpperCase()})`);
    return model;
  }
}

interface OpenUtterance {
  id: string;
  parts: Float32Array[];
  sinceDecode: number;
  decoding: boolean;
}

class LocalCtcStream implements SttStream {
  private current: OpenUtterance | null = null;
  private readonly pending = new Set<Promise<unknown>>();
  private readonly interval: number;

  constructor(
    private readonly model: CtcModel,
    private readonly options: LocalCtcOptions,
    private readonly hooks: SttStreamHooks,
    private readonly log: Logger,
  ) {
    this.interval = samplesIn(options.partialIntervalMs);
  }

  begin(utterance: string): void {
    this.current = { id: utterance, parts: [], sinceDecode: 0, decoding: false };
  }

  audio(samples: Float32Array): void {
    const utterance = this.current;
    if (!utterance) return;
    utterance.parts.push(samples);
    utterance.sinceDecode += samples.length;
    if (utterance.sinceDecode < this.interval || utterance.decoding) return;
    utterance.sinceDecode = 0;
    if (this.hooks.dropPartials()) {
      this.hooks.onPartialDropped();
      return;
    }
    utterance.decoding = true;
    const audio = concatFloat32(utterance.parts);
    this.track(
      this.model
        .transcribe(audio, this.options.chunks)
        .then((text) => {
          // A partial that arrives after its utterance ended would only overwrite the final on screen.
          if (this.current === utterance) this.hooks.onPartial(utterance.id, text);
        })
        .catch((error: unknown) => this.log.warn({ utterance: utterance.id, code: 'AI_ENGINE_FAILED', err: message(error) }, 'partial decode failed'))
        .finally(() => (utterance.decoding = false)),
    );
  }

  end(): Promise<string> {
    const utterance = this.current;
    this.current = null;
    if (!utterance) return Promise.resolve('');
    return this.track(this.model.transcribe(concatFloat32(utterance.parts), this.options.chunks));
  }

  async close(): Promise<void> {
    this.current = null;
    await Promise.allSettled([...this.pending]);
  }

  private track<T>(promise: Promise<T>): Promise<T> {
    this.pending.add(promise);
    void promise.finally(() => this.pending.delete(promise)).catch(() => undefined);
    return promise;
  }
}

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));
