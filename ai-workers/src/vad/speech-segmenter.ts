import { samplesIn } from '../audio/pcm.js';
import { VAD_FRAME_SAMPLES } from './silero-vad.js';

export interface SegmenterOptions {
  /** A frame is speech at or above this probability. */
  threshold: number;
  /** An utterance ends only after frames below this probability (hysteresis). */
  negThreshold: number;
  /** Bursts shorter than this are not utterances (coughs, clicks). */
  minSpeechMs: number;
  /** This much silence ends an utterance. */
  minSilenceMs: number;
  /** Audio kept before the first speech frame and after the last. */
  speechPadMs: number;
  /** Longer utterances are cut here and a new one starts at once. */
  maxUtteranceMs: number;
}

export const DEFAULT_SEGMENTER_OPTIONS: SegmenterOptions = {
  threshold: 0.5,
  negThreshold: 0.35,
  minSpeechMs: 250,
  minSilenceMs: 400,
  speechPadMs: 96,
  maxUtteranceMs: 15_000,
};

/** Sample indices count from the stream's first sample. */
export type SegmentEvent =
  | { type: 'start'; startSample: number }
  | { type: 'audio'; samples: Float32Array }
  | { type: 'end'; endSample: number; reason: 'silence' | 'max-length' | 'flush' };

/**
 * Turns per-frame speech probabilities into utterances, as they happen:
 * `start` once speech has lasted minSpeechMs (with speechPadMs of audio
 * before it), `audio` for each frame of the utterance, `end` after
 * minSilenceMs of silence. Frames of a pause are held back until the pause
 * either ends the utterance (then only speechPadMs of it is sent) or turns
 * out to be a breath inside it (then all of it is sent). Synchronous and
 * deterministic: the same frames and probabilities give the same events.
 */
export class SpeechSegmenter {
  private readonly padFrames: number;
  private readonly minSpeechFrames: number;
  private readonly minSilenceFrames: number;
  private readonly maxFrames: number;
  /** Frames seen so far. */
  private frameCount = 0;
  private state: 'idle' | 'pending' | 'speech' = 'idle';
  /** Idle: the last padFrames frames. Pending: pre-roll plus the frames since speech began. */
  private held: Float32Array[] = [];
  /** Speech: frames of a pause, not yet sent. */
  private pause: Float32Array[] = [];
  private startFrame = 0;
  private pendingSpeechFrames = 0;
  private pendingSilenceFrames = 0;

  constructor(readonly options: SegmenterOptions = DEFAULT_SEGMENTER_OPTIONS) {
    const frames = (ms: number) => Math.ceil(samplesIn(ms) / VAD_FRAME_SAMPLES);
    this.padFrames = frames(options.speechPadMs);
    this.minSpeechFrames = Math.max(1, frames(options.minSpeechMs));
    this.minSilenceFrames = Math.max(1, frames(options.minSilenceMs));
    this.maxFrames = Math.max(this.minSpeechFrames + 1, frames(options.maxUtteranceMs));
  }

  /** True when nothing is held: no utterance, and no speech that may become one. */
  get idle(): boolean {
    return this.state === 'idle';
  }

  push(frame: Float32Array, probability: number): SegmentEvent[] {
    const index = this.frameCount++;
    const speech = probability >= this.options.threshold;
    const silence = probability < this.options.negThreshold;
    const events: SegmentEvent[] = [];
    switch (this.state) {
      case 'idle': {
        if (speech) {
          this.state = 'pending';
          this.startFrame = index - this.held.length;
          this.held.push(frame);
          this.pendingSpeechFrames = 1;
          this.pendingSilenceFrames = 0;
          if (this.pendingSpeechFrames >= this.minSpeechFrames) this.begin(events);
        } else {
          this.held.push(frame);
          if (this.held.length > this.padFrames) this.held.shift();
        }
        break;
      }
      case 'pending': {
        this.held.push(frame);
        if (silence) this.pendingSilenceFrames++;
        else {
          this.pendingSilenceFrames = 0;
          this.pendingSpeechFrames++;
        }
        if (this.pendingSilenceFrames >= this.minSilenceFrames) {
          // Too short to be an utterance: back to listening, keeping the last frames as pre-roll.
          this.state = 'idle';
          this.held = this.padFrames > 0 ? this.held.slice(-this.padFrames) : [];
        } else if (this.pendingSpeechFrames >= this.minSpeechFrames) {
          this.begin(events);
        }
        break;
      }
      case 'speech': {
        if (silence || (this.pause.length > 0 && !speech)) {
          this.pause.push(frame);
          if (this.pause.length >= this.minSilenceFrames) this.finish(events, 'silence');
        } else {
          for (const held of this.pause) events.push({ type: 'audio', samples: held });
          this.pause = [];
          events.push({ type: 'audio', samples: frame });
        }
        if (this.state === 'speech' && index + 1 - this.startFrame >= this.maxFrames) {
          this.finish(events, 'max-length');
          // The speaker is still talking: the next utterance starts right here, with no pre-roll.
          if (!silence) {
            this.state = 'speech';
            this.held = [];
            this.startFrame = index + 1;
            events.push({ type: 'start', startSample: this.startFrame * VAD_FRAME_SAMPLES });
          }
        }
        break;
      }
    }
    return events;
  }

  /** The stream ended (participant left, consultation over): close any utterance. */
  flush(): SegmentEvent[] {
    const events: SegmentEvent[] = [];
    if (this.state === 'pending' && this.pendingSpeechFrames >= Math.ceil(this.minSpeechFrames / 2)) this.begin(events);
    if (this.state === 'speech') this.finish(events, 'flush');
    this.state = 'idle';
    this.held = [];
    this.pause = [];
    return events;
  }

  private begin(events: SegmentEvent[]): void {
    this.state = 'speech';
    this.pause = [];
    events.push({ type: 'start', startSample: this.startFrame * VAD_FRAME_SAMPLES });
    for (const frame of this.held) events.push({ type: 'audio', samples: frame });
    this.held = [];
  }

  private finish(events: SegmentEvent[], reason: 'silence' | 'max-length' | 'flush'): void {
    const trailing = this.pause.slice(0, this.padFrames);
    for (const frame of trailing) events.push({ type: 'audio', samples: frame });
    const endFrame = this.frameCount - this.pause.length + trailing.length;
    events.push({ type: 'end', endSample: endFrame * VAD_FRAME_SAMPLES, reason });
    // What followed the kept padding is the pre-roll of whatever comes next.
    this.held = this.padFrames > 0 ? this.pause.slice(trailing.length).slice(-this.padFrames) : [];
    this.pause = [];
    this.state = 'idle';
  }
}
