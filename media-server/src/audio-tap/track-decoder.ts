import { OpusDecoder } from 'opus-decoder';
import { AUDIO_TAP_CHUNK_MS, AUDIO_TAP_SAMPLE_RATE } from '@clinic-hub/protocol';
import { Decimator } from './decimator.js';

const OPUS_RATE = 48_000;
const TICKS_PER_MS = OPUS_RATE / 1000;
export const CHUNK_SAMPLES = (AUDIO_TAP_SAMPLE_RATE * AUDIO_TAP_CHUNK_MS) / 1000;
/** A jump in RTP time beyond this (packet loss, DTX, mute) starts a new run with its own wall-clock time. */
const GAP_TICKS = 3 * 20 * TICKS_PER_MS;

/** One chunk of 16 kHz mono s16le, `t` the wall-clock ms of its first sample. */
export interface PcmChunk {
  t: number;
  pcm: Buffer;
}

/**
 * One published Opus track → 16 kHz mono PCM in AUDIO_TAP_CHUNK_MS chunks.
 *
 * Opus is decoded at 48 kHz (opus-decoder, libopus in WASM), channels are
 * averaged to mono, then decimated by 3 (decimator.ts). Time: the first
 * packet's RTP timestamp is pinned to the wall clock when it arrives, and
 * every later sample's time follows from RTP time, so chunks carry sender
 * time, not arrival jitter. Late or repeated packets are dropped; a gap ends
 * the current chunk early and the next starts at the gap's end.
 */
export class TrackDecoder {
  private readonly decoder: OpusDecoder<48_000>;
  private readonly decimator = new Decimator();
  readonly ready: Promise<void>;
  /** Unwrapped RTP time of the next expected sample; null before the first packet. */
  private nextTicks: number | null = null;
  private lastRaw = 0;
  private wrapOffset = 0;
  private anchor: { ticks: number; wallMs: number } | null = null;
  /** Wall-clock ms of the current run's first output sample, and samples output in it so far. */
  private run: { startMs: number; samples: number } | null = null;
  private chunk = new Int16Array(CHUNK_SAMPLES);
  private chunkLength = 0;
  private chunkStartMs = 0;
  decodeErrors = 0;

  constructor(channels: number) {
    this.decoder = new OpusDecoder<48_000>({ channels: Math.min(2, Math.max(1, channels)), sampleRate: OPUS_RATE });
    this.ready = this.decoder.ready;
  }

  /** Unwraps the 32-bit RTP timestamp into a growing number of 48 kHz ticks. */
  private unwrap(raw: number): number {
    if (this.nextTicks !== null) {
      const delta = (raw - this.lastRaw) | 0;
      if (delta > 0 && raw < this.lastRaw) this.wrapOffset += 2 ** 32;
      else if (delta < 0 && raw > this.lastRaw) this.wrapOffset -= 2 ** 32;
    }
    this.lastRaw = raw;
    return raw + this.wrapOffset;
  }

  /** Decodes one packet; returns the chunks it completed (a gap also closes the one in progress). */
  push(payload: Buffer, rtpTimestamp: number, arrivedAtMs: number): PcmChunk[] {
    const out: PcmChunk[] = [];
    const ticks = this.unwrap(rtpTimestamp);
    if (this.anchor === null) this.anchor = { ticks, wallMs: arrivedAtMs };
    if (this.nextTicks !== null && ticks < this.nextTicks) return out;
    if (this.nextTicks === null || ticks - this.nextTicks > GAP_TICKS) {
      const partial = this.flush();
      if (partial) out.push(partial);
      this.decimator.reset();
      this.run = { startMs: this.anchor.wallMs + (ticks - this.anchor.ticks) / TICKS_PER_MS, samples: 0 };
    }
    const decoded = this.decoder.decodeFrame(payload);
    if (decoded.errors.length > 0 || decoded.samplesDecoded === 0) {
      this.decodeErrors++;
      this.nextTicks = ticks + 20 * TICKS_PER_MS;
      return out;
    }
    this.nextTicks = ticks + decoded.samplesDecoded;
    const mono = downmix(decoded.channelData, decoded.samplesDecoded);
    for (const sample of this.decimator.process(mono)) {
      if (this.chunkLength === 0) this.chunkStartMs = this.run!.startMs + (this.run!.samples * 1000) / AUDIO_TAP_SAMPLE_RATE;
      this.chunk[this.chunkLength++] = Math.max(-32768, Math.min(32767, Math.round(sample * 32767)));
      this.run!.samples++;
      if (this.chunkLength === CHUNK_SAMPLES) out.push(this.take());
    }
    return out;
  }

  private take(): PcmChunk {
    const pcm = Buffer.alloc(this.chunkLength * 2);
    for (let i = 0; i < this.chunkLength; i++) pcm.writeInt16LE(this.chunk[i]!, i * 2);
    this.chunkLength = 0;
    return { t: Math.round(this.chunkStartMs), pcm };
  }

  /** The chunk in progress, shorter than AUDIO_TAP_CHUNK_MS (at the end, or before a gap). */
  flush(): PcmChunk | null {
    return this.chunkLength > 0 ? this.take() : null;
  }

  /** Wall-clock ms just after the last sample output (for the `end` entry). */
  endMs(): number {
    return this.run ? Math.round(this.run.startMs + (this.run.samples * 1000) / AUDIO_TAP_SAMPLE_RATE) : Date.now();
  }

  free(): void {
    this.decoder.free();
  }
}

function downmix(channels: Float32Array[], samples: number): Float32Array {
  if (channels.length === 1) return channels[0]!.subarray(0, samples);
  const mono = new Float32Array(samples);
  for (const channel of channels) for (let i = 0; i < samples; i++) mono[i]! += channel[i]! / channels.length;
  return mono;
}

