import type { RedisClient } from '@clinic-hub/platform/redis';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { AI_RESULT_FIELD, AiEmotion, AiTranscript, type AiRecordingJob, type AiResultMessage, type ConsultRole } from '@clinic-hub/protocol';
import type { Logger } from 'pino';
import { getRecording, openRecordingFile, recordingKeys, RecordingError, replaceRecordingTranscript, type RecordingKey } from '@clinic-hub/recordings';
import { s16leToFloat32 } from '../audio/pcm.js';
import type { AiWorkerConfig } from '../config.js';
import { StressSmoother, arousalOf, instantStressOf } from '../engines/emotion-scores.js';
import type { Engines } from '../engines/load-engines.js';
import { AiError } from '../errors.js';
import type { AiMetrics } from '../metrics.js';
import { segmenterOptions } from '../session/ai-session.js';
import { detectSpeech } from '../vad/detect-speech.js';

/** One participant's audio of a recording (one file segment), decoded to 16 kHz mono. */
export interface RecordingTrack {
  participant: string;
  role: ConsultRole;
  /** Wall-clock ms of the first sample. */
  startedAt: number;
  samples: Float32Array;
}

/** Where a whole recording's audio comes from. Throws AI_RECORDING_UNAVAILABLE when it cannot be read (not retried). */
export interface RecordingAudioSource {
  tracks(job: AiRecordingJob): AsyncIterable<RecordingTrack>;
}

/** The transcript of a whole recording: a stream of AiResultMessage JSON (field AI_RESULT_FIELD), beside the recording's metadata, purged with it. */
export const recordingTranscriptKey = (clinic: string, recording: string) => recordingKeys(clinic, recording).transcript;

export interface RecordingTranscriptSummary {
  tracks: number;
  utterances: number;
  audioSeconds: number;
}

/**
 * The `ai-recordings` job: every participant's audio of a finalised
 * recording → VAD → speech-to-text and emotion per utterance → the
 * recording's transcript stream, written in one script at the end (a retried
 * job replaces it whole, never appends twice), expiring with the recording.
 */
export async function transcribeRecording(
  job: AiRecordingJob,
  deps: { redis: RedisClient; engines: Engines; source: RecordingAudioSource; config: AiWorkerConfig; metrics: AiMetrics; log: Logger },
): Promise<RecordingTranscriptSummary> {
  const { engines, config } = deps;
  const messages: AiResultMessage[] = [];
  const smoothers = new Map<string, StressSmoother>();
  let tracks = 0;
  let audioSeconds = 0;
  const engine = engines.stt.engineName(job.language);
  for await (const track of deps.source.tracks(job)) {
    tracks++;
    audioSeconds += track.samples.length / 16000;
    const segments = await detectSpeech(engines.vad, track.samples, segmenterOptions(config));
    const stream = engines.stt.openStream(job.language, { onPartial() {}, dropPartials: () => true, onPartialDropped() {} }, deps.log);
    const tag = createHash('sha256').update(track.participant).digest('hex').slice(0, 8);
    const smoother = smoothers.get(track.participant) ?? new StressSmoother(config.stressTauSeconds);
    smoothers.set(track.participant, smoother);
    try {
      for (const segment of segments) {
        const audio = track.samples.subarray(segment.startSample, segment.endSample);
        const startMs = Math.round(track.startedAt + segment.startSample / 16);
        const endMs = Math.round(track.startedAt + segment.endSample / 16);
        const base = { consult: job.consult, participant: track.participant, role: track.role, utterance: `${tag}-${startMs.toString(36)}`, startMs, endMs, engine };
        stream.begin(base.utterance);
        stream.audio(audio);
        const [text, labels] = await Promise.allSettled([stream.end(), engines.emotion ? engines.emotion.classify(audio) : Promise.resolve(null)]);
        if (text.status === 'fulfilled' && text.value.trim()) {
          messages.push({ type: 'transcript', payload: AiTranscript.parse({ ...base, kind: 'final', text: text.value.trim().slice(0, 4000), language: job.language }) });
        } else if (text.status === 'rejected') {
          deps.metrics.errors.inc({ code: 'AI_ENGINE_FAILED' });
          deps.log.warn({ utterance: base.utterance, code: 'AI_ENGINE_FAILED', err: String(text.reason) }, 'speech-to-text failed on an utterance of a recording');
        }
        if (labels.status === 'fulfilled' && labels.value && engines.emotion) {
          const stress = smoother.update(instantStressOf(labels.value), audio.length / 16000);
          messages.push({ type: 'emotion', payload: AiEmotion.parse({ ...base, engine: engines.emotion.name, labels: labels.value.slice(0, 16), arousal: arousalOf(labels.value), stress }) });
        }
      }
    } finally {
      await stream.close();
    }
  }
  messages.sort((a, b) => a.payload.startMs - b.payload.startMs || (a.type === b.type ? 0 : a.type === 'transcript' ? -1 : 1));
  const kept = await replaceRecordingTranscript(deps.redis, job.clinic, job.recording, AI_RESULT_FIELD, messages.map((message) => JSON.stringify(message)));
  // Purged while it was being transcribed: nothing is written, and nothing is left to retry.
  if (!kept) throw new AiError('AI_RECORDING_UNAVAILABLE', `recording ${job.recording} was purged while it was being transcribed; no transcript kept`);
  const utterances = messages.filter((m) => m.type === 'transcript').length;
  deps.log.info({ recording: job.recording, tracks, utterances, audioSeconds: Math.round(audioSeconds) }, 'recording transcribed');
  return { tracks, utterances, audioSeconds };
}

/** Any audio container ffmpeg reads (the recordings' WebM/Opus) → 16 kHz mono samples. */
export async function decodeAudio(input: Readable): Promise<Float32Array> {
  const ffmpeg = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-i', 'pipe:0', '-vn', '-ac', '1', '-ar', '16000', '-f', 's16le', 'pipe:1'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const chunks: Buffer[] = [];
  let stderr = '';
  ffmpeg.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
  ffmpeg.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
  input.on('error', () => ffmpeg.stdin.destroy());
  ffmpeg.stdin.on('error', () => undefined);
  input.pipe(ffmpeg.stdin);
  const code = await new Promise<number | null>((resolve, reject) => {
    ffmpeg.once('error', (error) => reject(new AiError('AI_RECORDING_UNAVAILABLE', `cannot run ffmpeg: ${error.message}`)));
    ffmpeg.once('close', resolve);
  });
  if (code !== 0) throw new AiError('AI_RECORDING_UNAVAILABLE', `ffmpeg could not decode the audio (exit ${code}): ${stderr.trim().split('\n').at(-1) ?? ''}`);
  return s16leToFloat32(Buffer.concat(chunks));
}

/**
 * The media-server's encrypted recordings: metadata from Redis, each
 * participant's camera+microphone file checked against its checksums,
 * decrypted as a stream (@clinic-hub/recordings) and decoded by
 * ffmpeg. Nothing decrypted touches the disk.
 */
export class EncryptedRecordingSource implements RecordingAudioSource {
  constructor(
    private readonly redis: RedisClient,
    private readonly storage: { dir: string; key: RecordingKey },
  ) {}

  async *tracks(job: AiRecordingJob): AsyncIterable<RecordingTrack> {
    const meta = await getRecording(this.redis, job.clinic, job.recording);
    if (!meta || meta.consult !== job.consult) throw new AiError('AI_RECORDING_UNAVAILABLE', `recording ${job.recording}: not found (or purged) for this consultation`);
    if (meta.status === 'corrupt') throw new AiError('AI_RECORDING_UNAVAILABLE', `recording ${job.recording} failed its integrity check`);
    // Not finalised yet: a plain error, so BullMQ retries the job later.
    if (meta.status !== 'final') throw new Error(`recording ${job.recording} is ${meta.status}, not final yet`);
    const files = meta.files.filter((f) => f.kind === 'av').sort((a, b) => a.startedAt - b.startedAt || a.segment - b.segment);
    for (const file of files) {
      let stream: Readable;
      try {
        ({ stream } = await openRecordingFile(this.storage, meta, file));
      } catch (error) {
        if (error instanceof RecordingError) throw new AiError('AI_RECORDING_UNAVAILABLE', `${file.name}: ${error.code}`);
        throw error;
      }
      yield { participant: file.participant, role: file.part, startedAt: file.startedAt, samples: await decodeAudio(stream) };
    }
  }
}
