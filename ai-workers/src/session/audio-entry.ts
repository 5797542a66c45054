import { AUDIO_TAP_SAMPLE_RATE, ConsultRole } from '@clinic-hub/protocol';
import { AiError } from '../errors.js';

/** One entry of consultKeys(..).audio, checked. */
export interface AudioEntry {
  id: string;
  participant: string;
  role: ConsultRole;
  /** Wall-clock ms of the first sample. */
  t: number;
  /** s16le 16 kHz mono; empty on an `end` entry. */
  pcm: Buffer;
  end: boolean;
}

/** More than this in one entry is not the audio tap's 100 ms chunks. */
const MAX_PCM_BYTES = AUDIO_TAP_SAMPLE_RATE * 2 * 2;

/** Fields of a stream entry as XREAD returns them (name, value, name, value …) → an AudioEntry, or an AI_AUDIO_INVALID error saying what is wrong. */
export function parseAudioEntry(id: string, fields: readonly Buffer[]): AudioEntry | AiError {
  const map = new Map<string, Buffer>();
  for (let i = 0; i + 1 < fields.length; i += 2) map.set(fields[i]!.toString('latin1'), fields[i + 1]!);
  const participant = map.get('p')?.toString('utf8') ?? '';
  if (participant.length < 1 || participant.length > 128) return new AiError('AI_AUDIO_INVALID', `entry ${id}: p (participant id) missing or longer than 128`);
  const role = ConsultRole.safeParse(map.get('r')?.toString('utf8'));
  if (!role.success) return new AiError('AI_AUDIO_INVALID', `entry ${id}: r is not a consultation role`);
  const t = Number(map.get('t')?.toString('latin1'));
  if (!Number.isFinite(t) || t <= 0) return new AiError('AI_AUDIO_INVALID', `entry ${id}: t is not a time in ms`);
  const end = map.get('end')?.toString('latin1') === '1';
  const pcm = map.get('pcm') ?? Buffer.alloc(0);
  if (!end && pcm.length === 0) return new AiError('AI_AUDIO_INVALID', `entry ${id}: no pcm`);
  if (pcm.length % 2 !== 0) return new AiError('AI_AUDIO_INVALID', `entry ${id}: pcm has an odd number of bytes (s16le expected)`);
  if (pcm.length > MAX_PCM_BYTES) return new AiError('AI_AUDIO_INVALID', `entry ${id}: pcm of ${pcm.length} bytes (at most ${MAX_PCM_BYTES})`);
  return { id, participant, role: role.data, t, pcm, end };
}

/** Stream ids (`ms-seq`) in order: negative, zero or positive like a comparator. */
export function compareStreamIds(a: string, b: string): number {
  const [am = '0', as = '0'] = a.split('-');
  const [bm = '0', bs = '0'] = b.split('-');
  const ms = BigInt(am) - BigInt(bm);
  if (ms !== 0n) return ms < 0n ? -1 : 1;
  const seq = BigInt(as) - BigInt(bs);
  return seq === 0n ? 0 : seq < 0n ? -1 : 1;
}

export const maxStreamId = (a: string, b: string) => (compareStreamIds(a, b) >= 0 ? a : b);
export const minStreamId = (a: string, b: string) => (compareStreamIds(a, b) <= 0 ? a : b);
