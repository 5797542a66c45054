import { AI_RESULT_FIELD, type AiResultMessage, type AiTranscript, type ConsultRole } from '@clinic-hub/protocol';
import type { Redis } from 'ioredis';
import { float32ToS16le } from '@clinic-hub/ai-workers/audio';
import { espeakSpeech } from './speech.js';

export interface Track {
  participant: string;
  role: ConsultRole;
  /** The participant's microphone for the whole conversation (silence while others speak). */
  samples: Float32Array;
}

const CHUNK = 1600;

/**
 * Writes tracks to a consultation's audio stream exactly as the media-server's
 * audio tap does: every 100 ms one entry per participant (fields p, r, t,
 * pcm as s16le), then an `end` entry each. `speed` 1 is real time; higher
 * writes faster than the audio's own clock (`t` still advances 100 ms per chunk).
 */
export async function feedConversation(
  redis: Redis,
  key: string,
  tracks: Track[],
  options: { t0?: number; speed?: number; end?: boolean; fromChunk?: number; toChunk?: number; onChunk?: (index: number) => void | Promise<void> } = {},
): Promise<{ t0: number; chunks: number }> {
  const t0 = options.t0 ?? Date.now();
  const speed = options.speed ?? 1;
  const chunks = Math.max(...tracks.map((t) => Math.ceil(t.samples.length / CHUNK)));
  const wallStart = Date.now() - ((options.fromChunk ?? 0) * 100) / speed;
  for (let i = options.fromChunk ?? 0; i < Math.min(chunks, options.toChunk ?? chunks); i++) {
    // A chunk is written once its 100 ms have been captured, as the audio tap does.
    const due = wallStart + ((i + 1) * 100) / speed;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const pipeline = redis.pipeline();
    for (const track of tracks) {
      const piece = track.samples.subarray(i * CHUNK, (i + 1) * CHUNK);
      if (piece.length === 0) continue;
      pipeline.xadd(key, '*', 'p', track.participant, 'r', track.role, 't', String(t0 + i * 100), 'pcm', float32ToS16le(piece));
    }
    await pipeline.exec();
    await options.onChunk?.(i);
  }
  if (options.end !== false && (options.toChunk === undefined || options.toChunk >= chunks)) {
    for (const track of tracks) await redis.xadd(key, '*', 'p', track.participant, 'r', track.role, 't', String(t0 + chunks * 100), 'end', '1');
  }
  return { t0, chunks };
}

/** Lays out who speaks when: each turn's speech placed at its offset (seconds) on the right participant's track. */
export function conversation(seconds: number, turns: { participant: string; role: ConsultRole; at: number; speech: Float32Array }[]): Track[] {
  const length = Math.round(seconds * 16000);
  const byParticipant = new Map<string, Track>();
  for (const turn of turns) {
    let track = byParticipant.get(turn.participant);
    if (!track) byParticipant.set(turn.participant, (track = { participant: turn.participant, role: turn.role, samples: new Float32Array(length) }));
    track.samples.set(turn.speech.subarray(0, Math.max(0, length - Math.round(turn.at * 16000))), Math.round(turn.at * 16000));
  }
  return [...byParticipant.values()];
}

/** One turn of a conversation: who speaks, from when (seconds), what (16 kHz samples). */
export interface Turn {
  participant: string;
  role: ConsultRole;
  at: number;
  speech: Float32Array;
}

/**
 * Turns taken in order by two speakers (the first speaks the first line, the
 * second the next, …), each line spoken by espeak-ng, the first from 0.5 s,
 * each next 1.2 s after the one before ends; `seconds`: the conversation's
 * length, half a second after the last. Lay them out with `conversation`.
 */
export function spokenTurns(lines: readonly string[], speakers: readonly [Omit<Turn, 'at' | 'speech'>, Omit<Turn, 'at' | 'speech'>]): { turns: Turn[]; seconds: number } {
  let at = 0.5;
  const turns = lines.map((line, i) => {
    const speech = espeakSpeech(line);
    const turn = { ...speakers[i % 2]!, at, speech };
    at += speech.length / 16000 + 1.2;
    return turn;
  });
  return { turns, seconds: at + 0.5 };
}

/** The final transcripts stored in an AI results stream (a consultation's `ai` or `record` stream, a recording's transcript), in order. */
export async function storedFinals(
  redis: { xrange(key: string, start: string, end: string): Promise<[string, string[]][]> },
  key: string,
): Promise<{ type: 'transcript'; payload: AiTranscript }[]> {
  return (await redis.xrange(key, '-', '+'))
    .map(([, fields]) => JSON.parse(fields[fields.indexOf(AI_RESULT_FIELD) + 1]!) as AiResultMessage)
    .filter((m): m is { type: 'transcript'; payload: AiTranscript } => m.type === 'transcript' && m.payload.kind === 'final');
}
