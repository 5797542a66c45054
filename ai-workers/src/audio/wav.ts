import { AiError } from '../errors.js';
import { s16leToFloat32 } from './pcm.js';

export interface WavAudio {
  sampleRate: number;
  channels: number;
  /** Interleaved s16le samples of the data chunk. */
  pcm: Buffer;
}

/**
 * Reads a PCM WAV file (16-bit integer samples, the format espeak-ng, sox and
 * ffmpeg write). Other encodings are refused with AI_AUDIO_INVALID.
 */
export function parseWav(file: Buffer): WavAudio {
  if (file.length < 12 || file.toString('ascii', 0, 4) !== 'RIFF' || file.toString('ascii', 8, 12) !== 'WAVE') {
    throw new AiError('AI_AUDIO_INVALID', 'not a RIFF/WAVE file');
  }
  let offset = 12;
  let format: { audioFormat: number; channels: number; sampleRate: number; bits: number } | null = null;
  while (offset + 8 <= file.length) {
    const id = file.toString('ascii', offset, offset + 4);
    // A streamed WAV (espeak-ng writing to a pipe) leaves its sizes at 0xFFFFFFFF: read to the end.
    const declared = file.readUInt32LE(offset + 4);
    const size = Math.min(declared, file.length - offset - 8);
    const body = offset + 8;
    if (id === 'fmt ') {
      format = {
        audioFormat: file.readUInt16LE(body),
        channels: file.readUInt16LE(body + 2),
        sampleRate: file.readUInt32LE(body + 4),
        bits: file.readUInt16LE(body + 14),
      };
    } else if (id === 'data') {
      if (!format) throw new AiError('AI_AUDIO_INVALID', 'data chunk before fmt chunk');
      const extensible = format.audioFormat === 0xfffe;
      if ((format.audioFormat !== 1 && !extensible) || format.bits !== 16) {
        throw new AiError('AI_AUDIO_INVALID', `WAV must be 16-bit PCM (got format ${format.audioFormat}, ${format.bits} bits)`);
      }
      return { sampleRate: format.sampleRate, channels: format.channels, pcm: file.subarray(body, body + size - (size % (2 * format.channels))) };
    }
    offset = body + size + (size % 2);
  }
  throw new AiError('AI_AUDIO_INVALID', 'no data chunk');
}

/** 16 kHz mono float samples from a WAV file that already is 16 kHz mono (resample with sox or ffmpeg first). */
export function wavToMono16k(file: Buffer): Float32Array {
  const wav = parseWav(file);
  if (wav.sampleRate !== 16_000 || wav.channels !== 1) {
    throw new AiError('AI_AUDIO_INVALID', `expected 16 kHz mono, got ${wav.sampleRate} Hz, ${wav.channels} channels`);
  }
  return s16leToFloat32(wav.pcm);
}

/** A 16-bit PCM WAV file of mono samples. */
export function encodeWav(pcm: Buffer, sampleRate = 16_000): Buffer {
  const header = Buffer.alloc(44);
  header.write('RIFF', 0, 'ascii');
  header.writeUInt32LE(36 + pcm.length, 4);
  header.write('WAVE', 8, 'ascii');
  header.write('fmt ', 12, 'ascii');
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(1, 22);
  header.writeUInt32LE(sampleRate, 24);
  header.writeUInt32LE(sampleRate * 2, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36, 'ascii');
  header.writeUInt32LE(pcm.length, 40);
  return Buffer.concat([header, pcm]);
}
