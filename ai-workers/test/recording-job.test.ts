import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AI_RESULT_FIELD, JOB_QUEUES, JOB_QUEUE_PREFIX, type AiResultMessage, type AiTranscript, type RecordingFile } from '@clinic-hub/protocol';
import { encryptFile, parseRecordingKey, recordingDir, sealedPath } from '@clinic-hub/recordings';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addFile, addParticipant, createRecordingMeta, setRecordingFields } from '@clinic-hub/recordings';
import { segmentName } from '@clinic-hub/recordings';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { waitFor } from '@clinic-hub/test-kit/wait';
import { float32ToS16le } from '../src/audio/pcm.js';
import { encodeWav } from '../src/audio/wav.js';
import { loadAiConfig } from '../src/config.js';
import { loadEngines, type Engines } from '../src/engines/load-engines.js';
import { startAiWorker, type RunningAiWorker } from '../src/jobs/ai-worker.js';
import { EncryptedRecordingSource, recordingTranscriptKey, transcribeRecording, type RecordingAudioSource } from '../src/jobs/recording-transcription.js';
import { AiMetrics } from '../src/metrics.js';
import { espeakSpeech, sequence, silence } from '@clinic-hub/test-kit/speech';
import { tempDir } from '@clinic-hub/test-kit/tmp';
import { fixtureWorkerEnv, writeFixtureModels } from '@clinic-hub/test-kit/worker-fixtures';

/**
 * The whole-recording job on a real encrypted recording: espeak-ng speech
 * encoded to WebM/Opus by ffmpeg, sealed with the media-server's cipher, its
 * metadata in Redis as the media-server writes it; the worker decrypts it as
 * a stream, decodes it with ffmpeg and writes the recording's transcript.
 */
const tmp = tempDir();
const key = parseRecordingKey(Buffer.alloc(32, 7).toString('base64'))!;
const recordingsDir = join(tmp.dir, 'recordings');
let redisServer: TestRedis;
let redis: Redis;
let engines: Engines;
let config: ReturnType<typeof loadAiConfig>;
let worker: RunningAiWorker;
let queue: Queue;

beforeAll(async () => {
  redisServer = await startTestRedis();
  redis = new Redis(redisServer.url);
  writeFixtureModels(join(tmp.dir, 'models'));
  config = loadAiConfig(fixtureWorkerEnv(redisServer.url, join(tmp.dir, 'models'), { AI_WORKER_ID: 'rec-worker' }));
  engines = await loadEngines(config);
  worker = await startAiWorker(config, { logger: pino({ level: 'silent' }), engines, recordings: new EncryptedRecordingSource(redis, { dir: recordingsDir, key }) });
  queue = new Queue(JOB_QUEUES.aiRecordings, { connection: redis, prefix: JOB_QUEUE_PREFIX });
});
afterAll(async () => {
  await worker?.close();
  await engines?.close();
  await queue?.close();
  redis?.disconnect();
  await redisServer?.cleanup();
  tmp.cleanup();
});

async function sealParticipant(clinic: string, recording: string, participant: string, part: RecordingFile['part'], samples: Float32Array, startedAt: number): Promise<void> {
  const dir = recordingDir(recordingsDir, clinic, recording);
  mkdirSync(dir, { recursive: true });
  const wav = join(tmp.dir, `${participant}.wav`);
  const webm = join(tmp.dir, `${participant}.webm`);
  writeFileSync(wav, encodeWav(float32ToS16le(samples)));
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-i', wav, '-c:a', 'libopus', '-b:a', '32k', webm]);
  const name = segmentName(participant, 'av', 0);
  const facts = await encryptFile(webm, sealedPath(dir, name), key, { clinic, recording, name });
  await addParticipant(redis, clinic, recording, participant, part);
  await addFile(redis, clinic, recording, {
    name,
    participant,
    part,
    kind: 'av',
    segment: 0,
    codecs: ['audio/opus'],
    startedAt,
    stoppedAt: startedAt + Math.round(samples.length / 16),
    bytes: facts.bytes,
    sha256: facts.sha256,
    plainBytes: facts.plainBytes,
    plainSha256: facts.plainSha256,
    keyId: key.id,
  });
}

describe('ai-recordings: transcribing a whole encrypted recording', () => {
  it('decrypts, decodes and transcribes each participant; the transcript stream holds finals and emotions in time order', async () => {
    const clinic = 'recclinic';
    const consult = 'consult-rec-0001';
    const recording = 'rec-0001';
    const startedAt = Date.now() - 120_000;
    await createRecordingMeta(redis, { id: recording, clinic, consult, node: 'media-1', startedAt });
    const doctor = sequence(silence(0.8), espeakSpeech('How long have you had the rash?'), silence(3), espeakSpeech('I will prescribe a cream.'), silence(1)).samples;
    const patient = sequence(silence(3.5), espeakSpeech('About one week.'), silence(4)).samples;
    await sealParticipant(clinic, recording, 'doc-r1', 'doctor', doctor, startedAt);
    await sealParticipant(clinic, recording, 'pat-r2', 'patient', patient, startedAt + 250);
    const purgeAt = Date.now() + 3_600_000;
    await setRecordingFields(redis, clinic, recording, { status: 'final', stoppedAt: String(startedAt + 10_000), finalisedAt: String(Date.now()), purgeAt: String(purgeAt) });
    const job = await queue.add('recording', { clinic, consult, recording, language: 'en' });
    await waitFor('the recording job', async () => ['completed', 'failed'].includes(await job.getState()), 30_000);
    const done = (await queue.getJob(job.id!))!;
    expect(done.failedReason).toBeUndefined();
    console.log('recording job result:', JSON.stringify(done.returnvalue));
    expect(done.returnvalue).toMatchObject({ tracks: 2 });
    const messages = (await redis.xrange(recordingTranscriptKey(clinic, recording), '-', '+')).map(([, f]) => JSON.parse(f[f.indexOf(AI_RESULT_FIELD) + 1]!) as AiResultMessage);
    const finals = messages.filter((m): m is { type: 'transcript'; payload: AiTranscript } => m.type === 'transcript');
    expect(finals.filter((f) => f.payload.participant === 'doc-r1').length).toBe(2);
    expect(finals.filter((f) => f.payload.participant === 'pat-r2').length).toBe(1);
    expect(finals.every((f) => f.payload.kind === 'final' && f.payload.role === (f.payload.participant === 'doc-r1' ? 'doctor' : 'patient'))).toBe(true);
    // Times on the recording's clock: the patient's answer lies between the doctor's two turns.
    const patientFinal = finals.find((f) => f.payload.participant === 'pat-r2')!;
    expect(patientFinal.payload.startMs - startedAt).toBeGreaterThan(3500);
    expect(patientFinal.payload.startMs - startedAt).toBeLessThan(4200);
    expect(messages.filter((m) => m.type === 'emotion').length).toBe(3);
    for (let i = 1; i < messages.length; i++) expect(messages[i]!.payload.startMs).toBeGreaterThanOrEqual(messages[i - 1]!.payload.startMs);
    // A second run replaces the transcript, it does not append to it.
    const again = await queue.add('recording', { clinic, consult, recording, language: 'en' });
    await waitFor('the second run', async () => (await again.getState()) === 'completed', 30_000);
    expect(await redis.xlen(recordingTranscriptKey(clinic, recording))).toBe(messages.length);
    // It goes when the recording is purged, even if the purge job never ran.
    const expiresAt = await redis.pexpiretime(recordingTranscriptKey(clinic, recording));
    expect(Math.abs(expiresAt - purgeAt)).toBeLessThanOrEqual(1);
  });

  it('a recording purged while it is being transcribed gets no transcript back', async () => {
    const clinic = 'recclinic';
    const consult = 'consult-rec-0003';
    const recording = 'rec-0003';
    const startedAt = Date.now() - 60_000;
    await createRecordingMeta(redis, { id: recording, clinic, consult, node: 'media-1', startedAt });
    await sealParticipant(clinic, recording, 'doc-r3', 'doctor', sequence(silence(0.5), espeakSpeech('Please sit down.'), silence(1)).samples, startedAt);
    await setRecordingFields(redis, clinic, recording, { status: 'final', purgeAt: String(Date.now() + 60_000) });
    const real = new EncryptedRecordingSource(redis, { dir: recordingsDir, key });
    // The real files, read before the purge; the purge (metadata gone) lands before the transcript is written.
    const purgedMidway: RecordingAudioSource = {
      async *tracks(job) {
        for await (const track of real.tracks(job)) yield track;
        await redis.del(`ch:{${clinic}}:recording:${recording}`);
      },
    };
    const job = { clinic, consult, recording, language: 'en' as const };
    await expect(transcribeRecording(job, { redis, engines, source: purgedMidway, config, metrics: new AiMetrics('rec-test'), log: pino({ level: 'silent' }) })).rejects.toMatchObject({
      code: 'AI_RECORDING_UNAVAILABLE',
    });
    expect(await redis.exists(recordingTranscriptKey(clinic, recording))).toBe(0);
  });

  it('a recording that cannot be read fails for good with AI_RECORDING_UNAVAILABLE', async () => {
    const missing = await queue.add('recording', { clinic: 'recclinic', consult: 'consult-rec-0001', recording: 'rec-none', language: 'en' });
    await waitFor('the job to fail', async () => (await missing.getState()) === 'failed', 10_000);
    expect((await queue.getJob(missing.id!))!.failedReason).toMatch(/^AI_RECORDING_UNAVAILABLE: .*not found/);
    // A damaged file fails its checksum.
    const clinic = 'recclinic';
    const consult = 'consult-rec-0002';
    await createRecordingMeta(redis, { id: 'rec-0002', clinic, consult, node: 'media-1', startedAt: Date.now() });
    await sealParticipant(clinic, 'rec-0002', 'doc-r1', 'doctor', sequence(silence(0.5), espeakSpeech('Hello.')).samples, Date.now());
    const dir = recordingDir(recordingsDir, clinic, 'rec-0002');
    writeFileSync(sealedPath(dir, segmentName('doc-r1', 'av', 0)), Buffer.alloc(2000, 1));
    await setRecordingFields(redis, clinic, 'rec-0002', { status: 'final' });
    const damaged = await queue.add('recording', { clinic, consult, recording: 'rec-0002', language: 'en' });
    await waitFor('the job to fail', async () => (await damaged.getState()) === 'failed', 10_000);
    expect((await queue.getJob(damaged.id!))!.failedReason).toMatch(/^AI_RECORDING_UNAVAILABLE: .*RECORDING_CORRUPT/);
  });
});
