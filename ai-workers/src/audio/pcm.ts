import { AUDIO_TAP_SAMPLE_RATE } from '@clinic-hub/protocol';

const SAMPLE_RATE = AUDIO_TAP_SAMPLE_RATE;

/** Samples in `ms` milliseconds of 16 kHz audio. */
export const samplesIn = (ms: number) => Math.round((ms * SAMPLE_RATE) / 1000);

/** s16le bytes → float samples in [-1, 1). A trailing odd byte is ignored. */
export function s16leToFloat32(bytes: Uint8Array): Float32Array {
  const count = bytes.length >> 1;
  const view = new DataView(bytes.buffer, bytes.byteOffset, count * 2);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = view.getInt16(i * 2, true) / 32768;
  return out;
}

/** Float samples → s16le bytes (clipped). */
export function float32ToS16le(samples: Float32Array): Buffer {
  const out = Buffer.alloc(samples.length * 2);
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i]!));
    out.writeInt16LE(Math.round(s < 0 ? s * 32768 : s * 32767), i * 2);
  }
  return out;
}

export function concatFloat32(parts: readonly Float32Array[]): Float32Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Float32Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Root mean square of the samples (0 for none). */
export function rms(samples: Float32Array): number {
  if (samples.length === 0) return 0;
  let sum = 0;
  for (let i = 0; i < samples.length; i++) sum += samples[i]! * samples[i]!;
  return Math.sqrt(sum / samples.length);
}
