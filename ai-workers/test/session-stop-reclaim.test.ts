import { JOB_QUEUES, JOB_QUEUE_PREFIX, consultKeys } from '@clinic-hub/protocol';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { conversation, feedConversation, spokenTurns, storedFinals } from '@clinic-hub/test-kit/audio-tap';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { tempDir } from '@clinic-hub/test-kit/tmp';
import { waitFor } from '@clinic-hub/test-kit/wait';
import { fixtureWorkerEnv, startAiWorkerProcess, type AiWorkerProcess, writeFixtureModels } from '@clinic-hub/test-kit/worker-fixtures';
import { float32ToS16le } from '../src/audio/pcm.js';

/**
 * A worker told to stop (SIGTERM) at the moment its run finds the session's
 * claim lost (a failover of the clinic's shard): the run, which still holds
 * the job's lock, would claim the session again; the worker stopping, it hands
 * the job back instead, as an interrupted run does, and another worker runs
 * the session to its end. A run that returned instead had its job completed,
 * with nobody running the session.
 *
 * The moment is made by stopping the worker (SIGSTOP) while its run waits
 * for audio, then, within a few milliseconds (its read waits 250 ms at most),
 * taking its claim (the state's `owner` changed, as a failover that loses it
 * leaves it), writing 9 s of both participants' audio in one transaction (so
 * the waiting read is answered with all of it) and sending SIGTERM before
 * SIGCONT: the stop reaches the run while that long batch is in hand, and the
 * save it makes before stopping is refused. A stop arriving after the run
 * found its claim lost (it made a save first, or read no audio) was handled
 * before: the run claims the session again, is interrupted at once and hands
 * the job back. The test prints which it was.
 */
const BATCH_CHUNKS = 90;
const CHUNK = 1600;

const tmp = tempDir();
const modelsDir = `${tmp.dir}/models`;
let redisServer: TestRedis;
let redis: Redis;
let queue: Queue;
const workers: AiWorkerProcess[] = [];

beforeAll(async () => {
  redisServer = await startTestRedis();
  redis = new Redis(redisServer.url);
  writeFixtureModels(modelsDir);
  queue = new Queue(JOB_QUEUES.aiSessions, { connection: redis, prefix: JOB_QUEUE_PREFIX });
});
afterAll(async () => {
  for (const worker of workers) {
    if (worker.child.exitCode === null && worker.child.signalCode === null) {
      worker.child.kill('SIGCONT');
      worker.child.kill('SIGKILL');
    }
  }
  await queue?.close();
  redis?.disconnect();
  await redisServer?.cleanup();
  tmp.cleanup();
});

const finalsIn = (key: string) => storedFinals(redis, key);

const startWorker = async (id: string) => {
  const worker = startAiWorkerProcess(fixtureWorkerEnv(redisServer.url, modelsDir, { AI_WORKER_ID: id, AI_JOB_LOCK_MS: '10000', LOG_LEVEL: 'info' }));
  workers.push(worker);
  await waitFor(`worker ${id} to be ready`, () => worker.output().includes('AI worker ready') || worker.child.exitCode !== null, 30_000);
  return worker;
};

describe('a worker stopping as its run loses the session claim', () => {
  it('hands the job back, and another worker runs the session to its end', { timeout: 150_000 }, async () => {
    const clinic = 'stopclinic';
    const consult = 'consult-stop-reclaim';
    const keys = consultKeys(clinic, consult);
    const lines = [
      'Good morning. What brings you in today?',
      'I have had a cough for two weeks.',
      'Do you have a fever or any pain?',
      'A little fever at night, no pain.',
      'Let me listen to your chest now.',
      'Thank you doctor.',
    ];
    const { turns, seconds } = spokenTurns(lines, [
      { participant: 'doc-s1', role: 'doctor' },
      { participant: 'pat-s2', role: 'patient' },
    ]);
    const tracks = conversation(seconds, turns);
    // Turns 1–2 before; the long batch read as the worker stops, from the pause before turn 3 (turns 3–4, some of 5);
    // turn 6 after: only a worker running the session after the stop gives it a final.
    const pauseAt = Math.floor((turns[2]!.at - 0.8) * 10);

    const first = await startWorker('stop-a');
    await redis.hset(keys.meta, { status: 'live', language: 'en', createdAt: String(Date.now()) });
    await queue.add('session', { clinic, consult, language: 'en' }, { jobId: consult });
    const t0 = Date.now();
    await feedConversation(redis, keys.audio, tracks, { t0, speed: 3, toChunk: pauseAt });
    await waitFor('two finals', async () => (await finalsIn(keys.ai)).length >= 2, 20_000);
    const second = await startWorker('stop-b');
    expect(second.output()).not.toMatch(/AI session (started|resumed)/);

    const pid = first.child.pid!;
    process.kill(pid, 'SIGSTOP');
    await redis.hset(keys.aiState, 'owner', 'a-run-before-the-failover');
    const batch = redis.multi();
    for (let i = pauseAt; i < pauseAt + BATCH_CHUNKS; i++) {
      for (const track of tracks) batch.xadd(keys.audio, '*', 'p', track.participant, 'r', track.role, 't', String(t0 + i * 100), 'pcm', float32ToS16le(track.samples.subarray(i * CHUNK, (i + 1) * CHUNK)));
    }
    await batch.exec();
    process.kill(pid, 'SIGTERM');
    process.kill(pid, 'SIGCONT');
    const code = await first.exited;
    const lostAs = first.output().split('\n').filter((l) => /claim lost|claimed by another run|interrupted|handed back/.test(l)).map((l) => (JSON.parse(l) as { msg: string }).msg);
    console.info(`the first worker exited ${code}; the job is ${await (await queue.getJob(consult))!.getState()}\n${lostAs.join('\n')}`);

    await feedConversation(redis, keys.audio, tracks, { t0, speed: 3, fromChunk: pauseAt + BATCH_CHUNKS });
    const lastTurnStart = t0 + turns[5]!.at * 1000;
    await waitFor("the last turn's final", async () => (await finalsIn(keys.ai)).some((f) => f.payload.endMs > lastTurnStart), 20_000).catch(async (error: Error) => {
      const job = (await queue.getJob(consult))!;
      throw new Error(`${error.message}: the job is ${await job.getState()} (returned ${JSON.stringify(job.returnvalue)}), ${(await finalsIn(keys.ai)).length} finals`);
    });
    await redis.hset(keys.meta, 'status', 'ended');
    await waitFor('the session to end', async () => (await redis.hget(keys.aiState, 'done')) === '1', 15_000);
    await waitFor('its job to be completed', async () => (await (await queue.getJob(consult))!.getState()) === 'completed', 15_000);
    const job = (await queue.getJob(consult))!;
    const finals = await finalsIn(keys.ai);
    console.info(`${finals.length} finals for ${turns.length} turns; the job returned ${JSON.stringify(job.returnvalue)}`);

    // The moment staged: the run found its claim lost with the stop in hand, and handed the job back.
    expect(first.output()).toMatch(/AI session claim lost while this worker is stopping: its job handed back/);
    expect(second.output()).toMatch(/AI session resumed/);
    expect(job.returnvalue).toEqual({ outcome: 'ended' });
    for (const turn of turns) {
      const start = t0 + turn.at * 1000;
      const end = start + (turn.speech.length / 16000) * 1000;
      expect(finals.filter((f) => f.payload.participant === turn.participant && f.payload.startMs < end && f.payload.endMs > start).length, `turn at ${turn.at.toFixed(1)} s`).toBeGreaterThan(0);
    }
    await second.stop();
  });
});
