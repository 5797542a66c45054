import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { wavToMono16k } from '@clinic-hub/ai-workers/audio';

const CACHE = join(tmpdir(), 'clinic-hub-ai-audio');

function cached(key: string, make: (file: string) => void): Float32Array {
  mkdirSync(CACHE, { recursive: true });
  const file = join(CACHE, `${createHash('sha256').update(key).digest('hex').slice(0, 16)}.wav`);
  if (!existsSync(file)) make(file);
  return wavToMono16k(readFileSync(file));
}

/**
 * Speech made by espeak-ng (write Japanese in kana), resampled to 16 kHz mono
 * by sox. Deterministic for a given text, voice and speed.
 */
export function espeakSpeech(text: string, options: { voice?: string; wordsPerMinute?: number } = {}): Float32Array {
  const voice = options.voice ?? 'en';
  const speed = String(options.wordsPerMinute ?? 160);
  return cached(`espeak|${voice}|${speed}|${text}`, (file) => {
    const raw = `${file}.raw.wav`;
    execFileSync('espeak-ng', ['-v', voice, '-s', speed, '-w', raw, text]);
    execFileSync('sox', [raw, '-r', '16000', '-c', '1', '-b', '16', file]);
  });
}

/** Noise from sox's synth (white, pink or brown), 16 kHz mono, at a volume between 0 and 1. */
export function soxNoise(kind: 'whitenoise' | 'pinknoise' | 'brownnoise', seconds: number, volume: number): Float32Array {
  return cached(`sox|${kind}|${seconds}|${volume}`, (file) => {
    execFileSync('sox', ['-n', '-r', '16000', '-c', '1', '-b', '16', file, 'synth', String(seconds), kind, 'vol', String(volume)]);
  });
}

export const silence = (seconds: number) => new Float32Array(Math.round(seconds * 16000));

/** Pieces one after another; returns the samples and where each piece starts (sample index). */
export function sequence(...pieces: Float32Array[]): { samples: Float32Array; starts: number[] } {
  const starts: number[] = [];
  let length = 0;
  for (const piece of pieces) {
    starts.push(length);
    length += piece.length;
  }
  const samples = new Float32Array(length);
  pieces.forEach((piece, i) => samples.set(piece, starts[i]));
  return { samples, starts };
}

/** Where the sound really is: first and last sample whose 10 ms window is above the level, relative to the piece. */
export function soundExtent(samples: Float32Array, level = 0.01): { first: number; last: number } {
  const window = 160;
  let first = -1;
  let last = -1;
  for (let i = 0; i + window <= samples.length; i += window) {
    let peak = 0;
    for (let j = i; j < i + window; j++) peak = Math.max(peak, Math.abs(samples[j]!));
    if (peak >= level) {
      if (first < 0) first = i;
      last = i + window;
    }
  }
  return { first, last };
}
