import { createHash } from 'node:crypto';
import type { AiEmotion, AiTranscript, ConsultLanguage, ConsultRole } from '@clinic-hub/protocol';
import type { Logger } from 'pino';
import { concatFloat32, s16leToFloat32, samplesIn } from '../audio/pcm.js';
import type { LabelProbability } from '../engines/audio-classifier.js';
import { StressSmoother, arousalOf, instantStressOf } from '../engines/emotion-scores.js';
import type { EmotionEngine, SttEngine, SttStream } from '../engines/engine-types.js';
import { errorCode } from '../errors.js';
import type { AiMetrics } from '../metrics.js';
import { VAD_FRAME_SAMPLES, type SileroVad, type SileroVadStream } from '../vad/silero-vad.js';
import { SpeechSegmenter, type SegmentEvent, type SegmenterOptions } from '../vad/speech-segmenter.js';
import { maxStreamId, type AudioEntry } from './audio-entry.js';
import { SessionSupersededError, type ResultSink } from './result-sink.js';
import { SampleClock } from './sample-clock.js';

export interface PipelineContext {
  consult: string;
  language: ConsultLanguage;
  participant: string;
  role: ConsultRole;
  vad: SileroVad;
  segmenter: SegmenterOptions;
  stt: SttEngine;
  emotion: EmotionEngine | null;
  sink: ResultSink;
  metrics: AiMetrics;
  log: Logger;
  /** True while the worker is behind the audio: partials are dropped. */
  behind(): boolean;
  stressTauSeconds: number;
  /** Where a resumed session left this participant: its last stress index and stream position. */
  initialStress: number | null;
  checkpoint: string;
}

/** A gap in the audio longer than this (packet loss, mute) is fed to the VAD as silence, so an utterance cut by it ends. */
const GAP_MS = 200;
/** Entries re-read before an idle point on resume: the VAD's pre-roll and a little warm-up. */
const RESUME_LOOKBACK_ENTRIES = 2;
/** Commits retried this often when Redis is away, before the session gives up on the utterance (it is redone on resume). */
const COMMIT_ATTEMPTS = 40;

interface OpenUtterance {
  id: string;
  startSample: number;
  startMs: number;
  parts: Float32Array[];
  partials: number;
}

/**
 * One participant of a live session: their audio entries → Silero VAD →
 * utterances → speech-to-text (partials while speaking, a final at the end)
 * and emotion scores → the result sink, one utterance after another.
 */
export class ParticipantPipeline {
  /** Entries up to this id are accounted for (persisted by the sink's commits and the session's progress saves). */
  checkpoint: string;
  private readonly vad: SileroVadStream;
  private readonly segmenter: SpeechSegmenter;
  private readonly clock = new SampleClock();
  private readonly stt: SttStream;
  private readonly stress: StressSmoother;
  private readonly tag: string;
  private residual = new Float32Array(0);
  /** Samples appended so far (the segmenter's sample index space). */
  private appended = 0;
  private expectedT: number | null = null;
  private recentPrevIds: string[] = [];
  private open: OpenUtterance | null = null;
  private chain: Promise<void> = Promise.resolve();
  private pendingCommits = 0;
  private aborted = false;

  constructor(private readonly ctx: PipelineContext) {
    this.checkpoint = ctx.checkpoint;
    this.vad = ctx.vad.createStream();
    this.segmenter = new SpeechSegmenter(ctx.segmenter);
    this.stress = new StressSmoother(ctx.stressTauSeconds, ctx.initialStress);
    this.tag = createHash('sha256').update(ctx.participant).digest('hex').slice(0, 8);
    this.stt = ctx.stt.openStream(ctx.language, {
      onPartial: (utterance, text) => this.onPartial(utterance, text),
      dropPartials: () => ctx.behind(),
      onPartialDropped: () => ctx.metrics.partialsDropped.inc(),
    }, ctx.log);
  }

  /** No open utterance and nothing waiting to be committed. */
  get idle(): boolean {
    return this.segmenter.idle && this.pendingCommits === 0;
  }

  get commitsPending(): number {
    return this.pendingCommits;
  }

  /** One audio entry (in stream order); `prevId` is the id of the stream entry before it. */
  async push(entry: AudioEntry, prevId: string): Promise<void> {
    this.recentPrevIds.push(prevId);
    if (this.recentPrevIds.length > RESUME_LOOKBACK_ENTRIES + 1) this.recentPrevIds.shift();
    if (this.expectedT !== null && entry.t - this.expectedT > GAP_MS) {
      const silence = Math.min(entry.t - this.expectedT, this.ctx.segmenter.minSilenceMs + 100);
      this.clock.anchor(this.appended, this.expectedT);
      await this.feed(new Float32Array(samplesIn(silence)));
    }
    this.clock.anchor(this.appended, entry.t);
    const samples = s16leToFloat32(entry.pcm);
    await this.feed(samples);
    this.expectedT = entry.t + (samples.length * 1000) / 16000;
    this.ctx.metrics.audioSeconds.inc(samples.length / 16000);
    if (this.idle) {
      this.checkpoint = maxStreamId(this.checkpoint, this.recentPrevIds[0]!);
      this.clock.prune(Math.max(0, this.appended - 16000));
    }
  }

  /** The participant left (or the session ends): close the utterance in progress, wait for its results. */
  async finish(): Promise<void> {
    this.handle(this.segmenter.flush());
    await this.chain;
    await this.stt.close();
  }

  /** The session stops without finishing (worker shutting down): drop what is open; it is redone on resume. */
  async abandon(): Promise<void> {
    this.aborted = true;
    this.open = null;
    // Not awaited: a cloud engine may wait for finals nobody will write now.
    void this.stt.close().catch(() => undefined);
  }

  private async feed(samples: Float32Array): Promise<void> {
    const all = this.residual.length ? concatFloat32([this.residual, samples]) : samples;
    this.appended += samples.length;
    let offset = 0;
    for (; offset + VAD_FRAME_SAMPLES <= all.length; offset += VAD_FRAME_SAMPLES) {
      const frame = all.slice(offset, offset + VAD_FRAME_SAMPLES);
      const started = performance.now();
      const probability = await this.vad.process(frame);
      this.ctx.metrics.vadSeconds.inc((performance.now() - started) / 1000);
      this.handle(this.segmenter.push(frame, probability));
    }
    this.residual = all.slice(offset);
  }

  private handle(events: SegmentEvent[]): void {
    for (const event of events) {
      if (event.type === 'start') {
        const startMs = this.clock.toMs(event.startSample);
        this.open = { id: `${this.tag}-${startMs.toString(36)}`, startSample: event.startSample, startMs, parts: [], partials: 0 };
        this.stt.begin(this.open.id);
      } else if (event.type === 'audio') {
        if (!this.open) continue;
        this.open.parts.push(event.samples);
        this.stt.audio(event.samples);
      } else if (this.open) {
        this.closeUtterance(this.open, this.clock.toMs(event.endSample));
        this.open = null;
      }
    }
  }

  private onPartial(utterance: string, text: string): void {
    const open = this.open;
    if (!open || open.id !== utterance || this.aborted) return;
    if (this.ctx.behind()) {
      this.ctx.metrics.partialsDropped.inc();
      return;
    }
    if (open.partials++ === 0) this.ctx.metrics.firstPartialLatency.observe({ engine: this.ctx.stt.kind }, Math.max(0, Date.now() - open.startMs) / 1000);
    const transcript: AiTranscript = {
      ...this.base(open.id, open.startMs, this.clock.toMs(this.appended)),
      kind: 'partial',
      text: text.slice(0, 4000),
      language: this.ctx.language,
    };
    this.ctx.sink.publishPartial(transcript).catch((error: unknown) => this.ctx.log.debug({ err: String(error) }, 'partial not published'));
  }

  private closeUtterance(utterance: OpenUtterance, endMs: number): void {
    const audio = concatFloat32(utterance.parts);
    const final = this.stt.end();
    const emotion: Promise<LabelProbability[]> | null = this.ctx.emotion ? this.ctx.emotion.classify(audio) : null;
    // Should the worker die now, the next one re-reads from here: a little before this point, all of it silence or the next utterance.
    const resumeAfter = this.recentPrevIds[0]!;
    const seconds = audio.length / 16000;
    this.pendingCommits++;
    this.chain = this.chain
      .then(() => this.commitUtterance(utterance, endMs, seconds, final, emotion, resumeAfter))
      .catch((error: unknown) => {
        if (error instanceof SessionSupersededError) this.aborted = true;
        else this.ctx.log.error({ utterance: utterance.id, err: String(error) }, 'utterance not committed; it is redone when the session resumes');
      })
      .finally(() => this.pendingCommits--);
  }

  private async commitUtterance(utterance: OpenUtterance, endMs: number, seconds: number, finalText: Promise<string>, labels: Promise<LabelProbability[]> | null, resumeAfter: string): Promise<void> {
    const [text, scores] = await Promise.allSettled([finalText, labels ?? Promise.resolve(null)]);
    if (this.aborted) return;
    const engine = this.ctx.stt.engineName(this.ctx.language);
    let final: AiTranscript | null = null;
    if (text.status === 'rejected') this.engineFailed(utterance.id, 'speech-to-text', text.reason);
    else if (text.value.trim() !== '') {
      final = { ...this.base(utterance.id, utterance.startMs, endMs), kind: 'final', text: text.value.trim().slice(0, 4000), language: this.ctx.language };
    }
    let emotion: AiEmotion | null = null;
    let stress: number | null = null;
    if (scores.status === 'rejected') this.engineFailed(utterance.id, 'emotion', scores.reason);
    else if (scores.value && this.ctx.emotion) {
      stress = this.stress.update(instantStressOf(scores.value), seconds);
      emotion = {
        ...this.base(utterance.id, utterance.startMs, endMs),
        engine: this.ctx.emotion.name,
        labels: scores.value.slice(0, 16).map(({ label, p }) => ({ label: label.slice(0, 32), p: Math.min(1, Math.max(0, p)) })),
        arousal: arousalOf(scores.value),
        stress,
      };
    }
    const checkpoint = maxStreamId(this.checkpoint, resumeAfter);
    for (let attempt = 1; ; attempt++) {
      try {
        await this.ctx.sink.commit({ participant: this.ctx.participant, final, emotion, checkpoint, stress });
        break;
      } catch (error) {
        if (this.aborted || attempt >= COMMIT_ATTEMPTS || error instanceof SessionSupersededError) throw error;
        await new Promise((r) => setTimeout(r, 250 * Math.min(attempt, 8)));
      }
    }
    this.checkpoint = checkpoint;
    const now = Date.now();
    this.ctx.metrics.utterances.inc({ engine: this.ctx.stt.kind });
    if (final) this.ctx.metrics.finalLatency.observe({ engine: this.ctx.stt.kind }, Math.max(0, now - endMs) / 1000);
    if (emotion) this.ctx.metrics.emotionLatency.observe({ engine: this.ctx.emotion!.kind }, Math.max(0, now - endMs) / 1000);
    this.ctx.log.debug({ utterance: utterance.id, seconds: Math.round(seconds * 10) / 10, final: final !== null, emotion: emotion !== null, engine }, 'utterance committed');
  }

  private engineFailed(utterance: string, stage: string, reason: unknown): void {
    const code = errorCode(reason) === 'INTERNAL' ? 'AI_ENGINE_FAILED' : errorCode(reason);
    this.ctx.metrics.errors.inc({ code });
    this.ctx.log.warn({ utterance, stage, code, err: reason instanceof Error ? reason.message : String(reason) }, 'engine failed on an utterance; skipped');
  }

  private base(utterance: string, startMs: number, endMs: number) {
    return {
      consult: this.ctx.consult,
      participant: this.ctx.participant,
      role: this.ctx.role,
      utterance,
      startMs,
      endMs,
      engine: this.ctx.stt.engineName(this.ctx.language),
    };
  }
}
