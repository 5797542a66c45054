import type { ChildProcess } from 'node:child_process';
import { JOB_QUEUES, JOB_QUEUE_PREFIX, consultKeys } from '@clinic-hub/protocol';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '@clinic-hub/platform/redis-server';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { waitFor } from '@clinic-hub/test-kit/wait';
import { loadAiConfig } from '../src/config.js';
import { SileroVad } from '../src/vad/silero-vad.js';
import { detectSpeech } from '../src/vad/detect-speech.js';
import { segmenterOptions } from '../src/session/ai-session.js';
import { conversation, feedConversation, spokenTurns, storedFinals } from '@clinic-hub/test-kit/audio-tap';
import { tempDir } from '@clinic-hub/test-kit/tmp';
import { fixtureWorkerEnv, startAiWorkerProcess, writeFixtureModels, type AiWorkerProcess } from '@clinic-hub/test-kit/worker-fixtures';

/**
 * A worker process killed (SIGKILL) in the middle of a consultation: another
 * worker process takes the session over when its lock expires and resumes
 * from the saved positions. Every utterance gets exactly one final.
 */
const tmp = tempDir();
const modelsDir = `${tmp.dir}/models`;
let redisServer: TestRedis;
let redis: Redis;
let queue: Queue;
const children: ChildProcess[] = [];

beforeAll(async () => {
  redisServer = await startTestRedis();
  redis = new Redis(redisServer.url);
  writeFixtureModels(modelsDir);
  queue = new Queue(JOB_QUEUES.aiSessions, { connection: redis, prefix: JOB_QUEUE_PREFIX });
});
afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  await queue?.close();
  redis?.disconnect();
  await redisServer?.cleanup();
  tmp.cleanup();
});

function startWorker(id: string, extra: Record<string, string> = {}): AiWorkerProcess {
  const worker = startAiWorkerProcess(fixtureWorkerEnv(redisServer.url, modelsDir, { AI_WORKER_ID: id, LOG_LEVEL: 'info', ...extra }));
  children.push(worker.child);
  return worker;
}

const finalsIn = (key: string) => storedFinals(redis, key);

describe('a worker dies mid-session', () => {
  it('SIGKILL, then SIGTERM mid-utterance: the next worker resumes from the saved position; finals are neither lost nor repeated', async () => {
    const clinic = 'crashclinic';
    const consult = 'consult-crash-0001';
    const keys = consultKeys(clinic, consult);
    const lines = [
      'Good morning. What brings you in today?',
      'I have had a cough for two weeks.',
      'Do you have a fever or any pain?',
      'A little fever at night, no pain.',
      'Let me listen to your chest now.',
      'Should I take a deep breath?',
      'Yes please, and then breathe out slowly.',
      'Thank you doctor.',
    ];
    const { turns, seconds } = spokenTurns(lines, [
      { participant: 'doc-a1', role: 'doctor' },
      { participant: 'pat-b2', role: 'patient' },
    ]);
    const tracks = conversation(seconds, turns);
    const middleOf = (turn: (typeof turns)[number]) => Math.floor((turn.at + turn.speech.length / 16000 / 2) * 10);
    const first = startWorker('crash-a');
    await waitFor('worker A to be ready', () => first.output().includes('AI worker ready'), 30_000);
    await queue.add('session', { clinic, consult, language: 'en' }, { jobId: consult });
    const t0 = Date.now();
    // Worker A hears turns 1–3 and half of turn 4 (at three times real time), commits three finals, then dies without warning mid-utterance.
    const killAt = middleOf(turns[3]!);
    await feedConversation(redis, keys.audio, tracks, { t0, speed: 3, toChunk: killAt });
    await waitFor('three finals from worker A', async () => (await finalsIn(keys.ai)).length >= 3, 15_000);
    first.child.kill('SIGKILL');
    await first.exited;
    const savedState = await redis.hgetall(keys.aiState);
    console.log(`SIGKILL worker A after ${(await finalsIn(keys.ai)).length} finals; saved: ${Object.entries(savedState).filter(([k]) => k.startsWith('p:') || k === 'read').map(([k, v]) => `${k}=${v}`).join(' ')}`);
    // The consultation goes on while nobody follows it; worker B takes over when A's lock expires…
    const second = startWorker('crash-b');
    const termAt = middleOf(turns[6]!);
    await feedConversation(redis, keys.audio, tracks, { t0, speed: 3, fromChunk: killAt, toChunk: termAt });
    await waitFor('six finals', async () => (await finalsIn(keys.ai)).length >= 6, 20_000);
    expect(second.output()).toMatch(/AI session resumed/);
    // …and is stopped in the middle of turn 7 (a deploy): it saves, hands the session back, exits 0.
    const termSent = Date.now();
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
    console.log(`SIGTERM: worker B exited after ${Date.now() - termSent} ms; the job is ${await (await queue.getJob(consult))!.getState()}`);
    expect(await (await queue.getJob(consult))!.getState()).toBe('waiting');
    const metricsPort = await freePort();
    const third = startWorker('crash-c', { AI_METRICS_PORT: String(metricsPort), AI_METRICS_HOST: '127.0.0.1' });
    await feedConversation(redis, keys.audio, tracks, { t0, speed: 3, fromChunk: termAt });
    await waitFor('the session to end on worker C', async () => (await redis.hget(keys.aiState, 'done')) === '1', 30_000);
    expect(third.output()).toMatch(/AI session resumed/);
    // Worker C's own figures: /metrics and health.
    await waitFor('the job to complete', async () => (await (await queue.getJob(consult))!.getState()) === 'completed');
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(Number(/clinic_ai_final_latency_seconds_count\{[^}]*engine="local-ctc"[^}]*\} (\d+)/.exec(metrics)?.[1])).toBeGreaterThan(0);
    expect(metrics).toMatch(/clinic_ai_queue_jobs\{[^}]*queue="ai-sessions",state="completed"[^}]*\} 1/);
    expect(metrics).toMatch(/clinic_ai_partials_dropped_total/);
    expect((await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).status).toBe(200);

    const vad = await SileroVad.load();
    const config = loadAiConfig(fixtureWorkerEnv(redisServer.url, modelsDir));
    const finals = await finalsIn(keys.ai);
    for (const track of tracks) {
      const expected = await detectSpeech(vad, track.samples, segmenterOptions(config));
      const got = finals.filter((f) => f.payload.participant === track.participant).sort((a, b) => a.payload.startMs - b.payload.startMs);
      const spans = got.map((f) => `${f.payload.startMs - t0}–${f.payload.endMs - t0}`);
      console.log(`${track.role}: ${got.length} finals (${spans.join(', ')} ms); the VAD finds ${expected.length} utterances (${expected.map((e) => `${Math.round(e.startSample / 16)}–${Math.round(e.endSample / 16)}`).join(', ')} ms)`);
      // Nothing repeated: no two finals of a speaker overlap in time.
      for (let i = 1; i < got.length; i++) expect(got[i]!.payload.startMs).toBeGreaterThanOrEqual(got[i - 1]!.payload.endMs);
      // Nothing lost: every utterance of the speaker has a final overlapping it.
      for (const utterance of expected) {
        const start = t0 + utterance.startSample / 16;
        const end = t0 + utterance.endSample / 16;
        const matching = got.filter((f) => f.payload.startMs < end && f.payload.endMs > start);
        expect(matching.length, `utterance at ${Math.round(utterance.startSample / 16)} ms`).toBe(1);
        // All of it: an utterance resumed after a crash starts where it started (a fresh VAD state moves its edges by a frame or three).
        expect(Math.abs(matching[0]!.payload.startMs - start)).toBeLessThan(250);
        expect(Math.abs(matching[0]!.payload.endMs - end)).toBeLessThan(250);
      }
      expect(got.length).toBe(expected.length);
    }
    await vad.release();
    third.child.kill('SIGTERM');
    expect(await third.exited).toBe(0);
  }, 60_000);

  it('a worker whose model is missing does not start: it names the file and the command', async () => {
    const worker = startWorker('no-model', { AI_STT_MODEL_EN: 'wav2vec2-base-960h-en', AI_STT_MODEL_JA: '' });
    expect(await worker.exited).toBe(78);
    expect(worker.output()).toMatch(/AI_MODEL_MISSING: .*model "wav2vec2-base-960h-en" is not in .*run `clinic models pull wav2vec2-base-960h-en`/);
  });
});
