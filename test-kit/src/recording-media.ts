import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** One encoded frame of a pre-encoded file, with its presentation time. */
export interface EncodedFrame {
  data: Buffer;
  /** ms from the start of the file. */
  timeMs: number;
  keyframe: boolean;
}

export interface EncodedMedia {
  video: EncodedFrame[];
  audio: EncodedFrame[];
  /** Channels of the Opus stream (from its OpusHead). */
  audioChannels: number;
}

/**
 * Makes pre-encoded media with ffmpeg (lavfi sources): VP8 in IVF (a
 * keyframe every `keyframeEverySeconds`) and Opus in Ogg (20 ms frames), and
 * parses both, so a test publisher can send real encoded media without a
 * browser.
 */
export async function makeEncodedMedia(
  dir: string,
  options: {
    seconds: number;
    toneHz?: number;
    /** Speech instead of a tone: espeak-ng saying this (voice `en` unless given), padded with silence to `seconds`. */
    speech?: { text: string; voice?: string };
    audioChannels?: 1 | 2;
    video?: boolean;
    keyframeEverySeconds?: number;
  },
): Promise<EncodedMedia> {
  const seconds = String(options.seconds);
  const channels = options.audioChannels ?? 2;
  let source = ['-f', 'lavfi', '-i', `sine=frequency=${options.toneHz ?? 440}:sample_rate=48000:duration=${seconds}`];
  let ogg = join(dir, `tone-${options.toneHz ?? 440}-${channels}.ogg`);
  if (options.speech) {
    const wav = join(dir, `speech-${channels}.wav`);
    await run('espeak-ng', ['-v', options.speech.voice ?? 'en', '-w', wav, options.speech.text]);
    source = ['-i', wav, '-af', `aresample=48000,apad=whole_dur=${seconds}`, '-t', seconds];
    ogg = join(dir, `speech-${channels}.ogg`);
  }
  await run('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-y',
    ...source,
    '-ac', String(channels), '-c:a', 'libopus', '-b:a', '64k', '-frame_duration', '20', '-application', 'audio', ogg,
  ]);
  const audio = parseOggOpus(await readFile(ogg));
  let video: EncodedFrame[] = [];
  if (options.video !== false) {
    const ivf = join(dir, 'testsrc.ivf');
    const gop = String(Math.round(30 * (options.keyframeEverySeconds ?? 1)));
    await run('ffmpeg', [
      '-hide_banner', '-loglevel', 'error', '-y',
      '-f', 'lavfi', '-i', `testsrc=size=320x240:rate=30:duration=${seconds}`,
      '-c:v', 'libvpx', '-b:v', '300k', '-g', gop, '-keyint_min', gop, '-deadline', 'realtime', '-cpu-used', '8', '-f', 'ivf', ivf,
    ]);
    video = parseIvf(await readFile(ivf));
  }
  return { video, audio: audio.frames, audioChannels: audio.channels };
}

/** IVF: a 32-byte file header, then per frame a 12-byte header (size, pts) and the frame. */
export function parseIvf(file: Buffer): EncodedFrame[] {
  if (file.toString('ascii', 0, 4) !== 'DKIF') throw new Error('not an IVF file');
  const headerLength = file.readUInt16LE(6);
  const rate = file.readUInt32LE(16);
  const scale = file.readUInt32LE(20);
  const frames: EncodedFrame[] = [];
  for (let offset = headerLength; offset + 12 <= file.length; ) {
    const size = file.readUInt32LE(offset);
    const pts = Number(file.readBigUInt64LE(offset + 4));
    const data = file.subarray(offset + 12, offset + 12 + size);
    // VP8 frame tag: bit 0 of the first byte is 0 for a keyframe.
    frames.push({ data, timeMs: (pts * scale * 1000) / rate, keyframe: (data[0]! & 1) === 0 });
    offset += 12 + size;
  }
  return frames;
}

/** Ogg Opus: packets across pages (lacing), the first two being OpusHead and OpusTags. */
export function parseOggOpus(file: Buffer): { channels: number; frames: EncodedFrame[] } {
  const packets: Buffer[] = [];
  let pending: Buffer[] = [];
  for (let offset = 0; offset + 27 <= file.length; ) {
    if (file.toString('ascii', offset, offset + 4) !== 'OggS') throw new Error(`no Ogg page at byte ${offset}`);
    const segments = file[offset + 26]!;
    const table = file.subarray(offset + 27, offset + 27 + segments);
    let position = offset + 27 + segments;
    for (const lacing of table) {
      pending.push(file.subarray(position, position + lacing));
      position += lacing;
      if (lacing < 255) {
        packets.push(Buffer.concat(pending));
        pending = [];
      }
    }
    offset = position;
  }
  const head = packets[0];
  if (!head || head.toString('ascii', 0, 8) !== 'OpusHead') throw new Error('no OpusHead');
  const channels = head[9]!;
  // Every packet made here holds one 20 ms frame (-frame_duration 20).
  const frames = packets.slice(2).map((data, i) => ({ data, timeMs: i * 20, keyframe: true }));
  return { channels, frames };
}
