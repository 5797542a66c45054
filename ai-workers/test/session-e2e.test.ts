import { AI_RESULT_FIELD, JOB_QUEUES, JOB_QUEUE_PREFIX, consultAiChannel, consultKeys, type AiEmotion, type AiResultMessage, type AiTranscript } from '@clinic-hub/protocol';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisProcess } from '@clinic-hub/platform/redis-server';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { waitFor } from '@clinic-hub/test-kit/wait';
import { loadAiConfig, type AiWorkerConfig } from '../src/config.js';
import { loadEngines, type Engines } from '../src/engines/load-engines.js';
import { CtcModel } from '../src/engines/ctc-model.js';
import { startAiWorker, type RunningAiWorker } from '../src/jobs/ai-worker.js';
import { requestAiSessionStop, segmenterOptions } from '../src/session/ai-session.js';
import { detectSpeech } from '../src/vad/detect-speech.js';
import { conversation, feedConversation, type Track } from '@clinic-hub/test-kit/audio-tap';
import { espeakSpeech } from '@clinic-hub/test-kit/speech';
import { tempDir } from '@clinic-hub/test-kit/tmp';
import { fixtureWorkerEnv, writeFixtureModels } from '@clinic-hub/test-kit/worker-fixtures';

/**
 * End to end over Redis: audio entries XADDed exactly as the audio tap
 * writes them (espeak-ng speech) → the worker's BullMQ session job → results
 * on the clinic's AI channel and in the consultation's ai and record streams.
 */
const tmp = tempDir();
let redisServer: TestRedis;
let restarted: RedisProcess | null = null;
let redis: Redis;
let subscriber: Redis;
let queue: Queue;
let config: AiWorkerConfig;
let engines: Engines;
let worker: RunningAiWorker;
const published: { at: number; message: AiResultMessage; channel: string }[] = [];

beforeAll(async () => {
  redisServer = await startTestRedis();
  redis = new Redis(redisServer.url);
  subscriber = new Redis(redisServer.url);
  // The Redis restart test takes Redis away on purpose: these clients reconnect by themselves.
  redis.on('error', () => undefined);
  subscriber.on('error', () => undefined);
  writeFixtureModels(`${tmp.dir}/models`);
  config = loadAiConfig(fixtureWorkerEnv(redisServer.url, `${tmp.dir}/models`, { AI_WORKER_ID: 'e2e-worker' }));
  engines = await loadEngines(config);
  worker = await startAiWorker(config, { logger: pino({ level: 'silent' }), engines });
  // Sharded pub/sub, as the hub follows it: the test clinic's channel by name.
  await subscriber.ssubscribe(consultAiChannel('e2eclinic'));
  subscriber.on('smessage', (channel: string, message: string) => published.push({ at: Date.now(), channel, message: JSON.parse(message) as AiResultMessage }));
  queue = new Queue(JOB_QUEUES.aiSessions, { connection: redis, prefix: JOB_QUEUE_PREFIX });
});

afterAll(async () => {
  await worker?.close();
  await engines?.close();
  await queue?.close();
  subscriber?.disconnect();
  redis?.disconnect();
  await restarted?.stop();
  await redisServer?.cleanup();
  tmp.cleanup();
});

const readStream = async (key: string) => (await redis.xrange(key, '-', '+')).map(([, fields]) => Object.fromEntries(fields.reduce<[string, string][]>((pairs, v, i, all) => (i % 2 ? pairs : [...pairs, [v, all[i + 1]!]]), [])));

/** What the pipeline must produce for a track: the VAD's utterances of that track and the engine's text for each. */
async function expectedFinals(track: Track, language: 'ja' | 'en'): Promise<{ startSample: number; endSample: number; text: string }[]> {
  const model = await CtcModel.load(config.models.dir, language === 'ja' ? 'ctc-fixture-ja' : 'ctc-fixture-en', { threads: 1, verify: false });
  const segments = await detectSpeech(engines.vad, track.samples, segmenterOptions(config));
  const out = [];
  for (const s of segments) out.push({ ...s, text: await model.transcribe(track.samples.subarray(s.startSample, s.endSample)) });
  await model.release();
  return out.filter((s) => s.text.trim() !== '');
}

/** A consultation of the test clinic: its ids and Redis keys. */
const consultation = (consult: string) => ({ clinic: 'e2eclinic', consult, keys: consultKeys('e2eclinic', consult) });

describe('live AI session over Redis (fixture engines, real Silero VAD)', () => {
  it('transcribes each participant with speaker and role, partials first, emotion per utterance; ai and record streams hold finals and emotions', async () => {
    const { clinic, consult, keys } = consultation('consult-e2e-0001');
    const tracks = conversation(7.5, [
      { participant: 'doc-7f3a', role: 'doctor', at: 0.6, speech: espeakSpeech('きょうは どうされましたか', { voice: 'ja' }) },
      { participant: 'pat-91c2', role: 'patient', at: 3.6, speech: espeakSpeech('きのうから ねつが あります', { voice: 'ja' }) },
    ]);
    await queue.add('session', { clinic, consult, language: 'ja' }, { jobId: consult });
    // Bad input on the way: the worker skips it with AI_AUDIO_INVALID and carries on.
    await redis.xadd(keys.audio, '*', 'p', 'doc-7f3a', 't', String(Date.now()), 'pcm', Buffer.alloc(3200));
    await redis.xadd(keys.audio, '*', 'p', 'pat-91c2', 'r', 'patient', 't', String(Date.now()), 'pcm', Buffer.alloc(3201));
    const { t0 } = await feedConversation(redis, keys.audio, tracks, { speed: 1 });
    const done = await waitFor('the session to end', async () => (await redis.hget(keys.aiState, 'done')) === '1', 15_000);
    expect(done).toBe(true);

    const mine = published.filter((p) => p.message.payload.consult === consult);
    expect(mine.every((p) => p.channel === consultAiChannel(clinic))).toBe(true);
    const finals = mine.filter((p) => p.message.type === 'transcript' && (p.message.payload as AiTranscript).kind === 'final');
    const partials = mine.filter((p) => p.message.type === 'transcript' && (p.message.payload as AiTranscript).kind === 'partial');
    const emotions = mine.filter((p) => p.message.type === 'emotion');
    for (const track of tracks) {
      const expected = await expectedFinals(track, 'ja');
      const got = finals.filter((f) => f.message.payload.participant === track.participant).map((f) => f.message.payload as AiTranscript);
      console.log(`${track.role}: ${got.length} final(s), expected ${expected.length}; ${partials.filter((p) => p.message.payload.participant === track.participant).length} partials`);
      expect(got.map((f) => f.text)).toEqual(expected.map((e) => e.text));
      for (const [i, f] of got.entries()) {
        expect(f.role).toBe(track.role);
        expect(f.language).toBe('ja');
        expect(f.engine).toBe('local-ctc/ctc-fixture-ja');
        // Wall-clock times come from the entries' t: the VAD's sample positions on the audio's clock.
        expect(Math.abs(f.startMs - (t0 + expected[i]!.startSample / 16))).toBeLessThanOrEqual(2);
        expect(Math.abs(f.endMs - (t0 + expected[i]!.endSample / 16))).toBeLessThanOrEqual(2);
        const firstPartial = partials.find((p) => p.message.payload.utterance === f.utterance);
        const final = finals.find((p) => p.message.payload.utterance === f.utterance)!;
        expect(firstPartial, 'a partial while speaking').toBeDefined();
        expect(firstPartial!.at).toBeLessThan(final.at);
        console.log(`  utterance ${f.utterance}: first partial ${firstPartial!.at - f.startMs} ms after speech start; final ${final.at - f.endMs} ms after speech end`);
        const emotion = emotions.find((e) => e.message.payload.utterance === f.utterance)?.message.payload as AiEmotion | undefined;
        expect(emotion).toBeDefined();
        expect(emotion!.role).toBe(track.role);
        expect(emotion!.labels.reduce((s, l) => s + l.p, 0)).toBeCloseTo(1, 4);
        expect(emotion!.stress).toBeGreaterThanOrEqual(0);
        expect(emotion!.stress).toBeLessThanOrEqual(1);
      }
    }
    // The ai stream and the session record hold the finals and emotions, never partials.
    const ai = (await readStream(keys.ai)).map((e) => JSON.parse(e[AI_RESULT_FIELD]!) as AiResultMessage);
    expect(ai.filter((m) => m.type === 'transcript').length).toBe(finals.length);
    expect(ai.filter((m) => m.type === 'emotion').length).toBe(emotions.length);
    expect(ai.some((m) => m.type === 'transcript' && m.payload.kind === 'partial')).toBe(false);
    const record = await readStream(keys.record);
    expect(record.filter((e) => e.type === 'transcript').length).toBe(finals.length);
    expect(record.filter((e) => e.type === 'emotion').length).toBe(emotions.length);
    expect(record.every((e) => e.participant && e.utterance && Number(e.at) > 0)).toBe(true);
    // The bad entries were counted and skipped.
    const metrics = await worker.metrics.registry.getSingleMetricAsString('clinic_ai_errors_total');
    expect(metrics).toMatch(/code="AI_AUDIO_INVALID"[^\n]* 2/);
    const job = await queue.getJob(consult);
    await waitFor('the job to complete', async () => (await job!.getState()) === 'completed');
    expect((await queue.getJob(consult))!.returnvalue).toEqual({ outcome: 'ended' });
  });

  it('behind the audio (a backlog): drops partials, never finals', async () => {
    const { clinic, consult, keys } = consultation('consult-e2e-backlog');
    const tracks = conversation(9, [
      { participant: 'doc-1', role: 'doctor', at: 0.5, speech: espeakSpeech('The results of your blood test look normal.') },
      { participant: 'pat-2', role: 'patient', at: 4, speech: espeakSpeech('That is good news, thank you doctor.') },
    ]);
    // The whole consultation is already in the stream, a minute old, before the job starts.
    await feedConversation(redis, keys.audio, tracks, { speed: 1000, t0: Date.now() - 60_000 });
    const droppedBefore = Number((await worker.metrics.registry.getSingleMetric('clinic_ai_partials_dropped_total')!.get()).values[0]?.value ?? 0);
    await queue.add('session', { clinic, consult, language: 'en' }, { jobId: consult });
    await waitFor('the session to end', async () => (await redis.hget(keys.aiState, 'done')) === '1', 20_000);
    const mine = published.filter((p) => p.message.payload.consult === consult);
    const finals = mine.filter((p) => p.message.type === 'transcript' && (p.message.payload as AiTranscript).kind === 'final');
    let expectedCount = 0;
    for (const track of tracks) expectedCount += (await expectedFinals(track, 'en')).length;
    const dropped = Number((await worker.metrics.registry.getSingleMetric('clinic_ai_partials_dropped_total')!.get()).values[0]?.value ?? 0) - droppedBefore;
    console.log(`backlog: ${finals.length} finals (expected ${expectedCount}), ${mine.filter((p) => p.message.type === 'transcript' && (p.message.payload as AiTranscript).kind === 'partial').length} partials published, ${dropped} dropped`);
    expect(finals.length).toBe(expectedCount);
    expect(dropped).toBeGreaterThan(0);
    expect(mine.filter((p) => p.message.type === 'transcript' && (p.message.payload as AiTranscript).kind === 'partial').length).toBe(0);
  });

  it('a stop request ends the session; a job with bad data fails for good with AI_JOB_INVALID', async () => {
    const { clinic, consult, keys } = consultation('consult-e2e-stop');
    await queue.add('session', { clinic, consult, language: 'en' }, { jobId: consult });
    await feedConversation(redis, keys.audio, conversation(1, [{ participant: 'doc-1', role: 'doctor', at: 0, speech: new Float32Array(1600) }]), { speed: 100, end: false });
    await requestAiSessionStop(redis, clinic, consult);
    await waitFor('the stop', async () => (await redis.hget(keys.aiState, 'outcome')) === 'stopped');
    await waitFor('the job to complete', async () => (await (await queue.getJob(consult))!.getState()) === 'completed');
    const bad = await queue.add('session', { clinic, consult: 'x', language: 'fr' });
    await waitFor('the bad job to fail', async () => (await bad.getState()) === 'failed');
    const failed = await queue.getJob(bad.id!);
    expect(failed!.failedReason).toMatch(/^AI_JOB_INVALID: /);
    expect(failed!.attemptsMade).toBeLessThanOrEqual(1);
  });

  it('Redis restarts mid-session: the worker waits, reconnects and carries on; nothing accepted is lost', { timeout: 60_000 }, async () => {
    const { clinic, consult, keys } = consultation('consult-e2e-restart');
    const tracks = conversation(8, [
      { participant: 'doc-1', role: 'doctor', at: 0.5, speech: espeakSpeech('Please sit down.') },
      { participant: 'pat-2', role: 'patient', at: 4.5, speech: espeakSpeech('My knee hurts when I walk.') },
    ]);
    await queue.add('session', { clinic, consult, language: 'en' }, { jobId: consult });
    const t0 = Date.now();
    await feedConversation(redis, keys.audio, tracks, { t0, speed: 2, toChunk: 35 });
    await waitFor('the doctor\'s final', () => published.some((p) => p.message.payload.consult === consult && p.message.type === 'transcript' && p.message.payload.kind === 'final'), 10_000);
    await redisServer.stop();
    await new Promise((r) => setTimeout(r, 1500));
    restarted = await startRedisServer({ dir: redisServer.dir, port: redisServer.port });
    await waitFor('the client to reconnect', async () => (await redis.ping().catch(() => null)) === 'PONG', 10_000);
    await feedConversation(redis, keys.audio, tracks, { t0, speed: 2, fromChunk: 35 });
    await waitFor('the session to end', async () => (await redis.hget(keys.aiState, 'done')) === '1', 30_000);
    const finals = (await readStream(keys.ai)).map((e) => JSON.parse(e[AI_RESULT_FIELD]!) as AiResultMessage).filter((m) => m.type === 'transcript');
    let expectedCount = 0;
    for (const track of tracks) expectedCount += (await expectedFinals(track, 'en')).length;
    console.log(`Redis restart: ${finals.length} finals in the ai stream, expected ${expectedCount}`, finals.map((f) => `${f.payload.participant} ${f.payload.startMs - t0}–${f.payload.endMs - t0} ms`).join(', '));
    // Without the owner check the lost lock let a second run of the session commit the patient's turn again.
    expect(finals.length).toBe(expectedCount);
    expect(new Set(finals.map((f) => f.payload.participant))).toEqual(new Set(['doc-1', 'pat-2']));
  });
});
