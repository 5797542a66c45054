/**
 * A live AI session's end counts only once a replica holds it
 * (AI_REDIS_ACK_REPLICAS, 1 by default with Sentinel): with the replica
 * stopped (SIGSTOP) when the consultation ends, the session finishes on the
 * master but its job does not complete (a failover then would lose the end
 * with nobody left to run the session); it is tried again, and completes
 * once the replica is back and holds the end.
 */
import { JOB_QUEUES, JOB_QUEUE_PREFIX, consultKeys } from '@clinic-hub/protocol';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedisClient } from '@clinic-hub/platform/redis';
import { conversation, feedConversation } from '@clinic-hub/test-kit/audio-tap';
import { startSentinelGroup, type SentinelGroup } from '@clinic-hub/test-kit/redis-sentinel';
import { espeakSpeech } from '@clinic-hub/test-kit/speech';
import { tempDir } from '@clinic-hub/test-kit/tmp';
import { sleep, waitFor } from '@clinic-hub/test-kit/wait';
import { fixtureWorkerEnv, startAiWorkerProcess, writeFixtureModels, type AiWorkerProcess } from '@clinic-hub/test-kit/worker-fixtures';
import { AiSessionJobs } from '../src/consult/ai-session-jobs.js';

const CLINIC = 'testclinic';
const CONSULT = 'consult-end-ack';

const tmp = tempDir();
let group: SentinelGroup;
let redis: Redis;
let worker: AiWorkerProcess;
let jobs: AiSessionJobs;
let queue: Queue;

beforeAll(async () => {
  group = await startSentinelGroup();
  redis = connectRedisClient(group.target, 'test:ai-session-end-ack') as Redis;
  redis.on('error', () => undefined);
  writeFixtureModels(`${tmp.dir}/models`);
  worker = startAiWorkerProcess({ ...fixtureWorkerEnv('', `${tmp.dir}/models`), REDIS_URL: '', ...group.env, LOG_LEVEL: 'info' });
  await waitFor('the AI worker to be ready', () => worker.output().includes('AI worker ready') || worker.child.exitCode !== null, 60_000);
  expect(worker.child.exitCode, worker.output()).toBeNull();
  jobs = new AiSessionJobs(group.target, 'test:ai-session-end-ack-jobs', pino({ level: 'silent' }));
  queue = new Queue(JOB_QUEUES.aiSessions, { connection: redis, prefix: JOB_QUEUE_PREFIX });
}, 120_000);

afterAll(async () => {
  await worker?.stop();
  await jobs?.close();
  await queue?.close();
  redis?.disconnect();
  await group?.cleanup();
  tmp.cleanup();
});

describe('the end of a live AI session', () => {
  it('completes its job only once a replica holds the end', { timeout: 90_000 }, async () => {
    const keys = consultKeys(CLINIC, CONSULT);
    const speech = espeakSpeech('Good morning. What brings you in today?');
    const tracks = conversation(speech.length / 16000 + 1, [{ participant: 'doctor:end-ack', role: 'doctor', at: 0.3, speech }]);
    await redis.hset(keys.meta, { status: 'live', language: 'en', createdAt: String(Date.now()) });
    expect(await jobs.add({ clinic: CLINIC, consult: CONSULT, language: 'en' })).toBe(true);
    await feedConversation(redis, keys.audio, tracks, { speed: 2 });
    const job = (await queue.getJob(AiSessionJobs.jobId({ clinic: CLINIC, consult: CONSULT })))!;

    const replica = await group.replica();
    replica.process.kill('SIGSTOP');
    let stopped = true;
    try {
      await redis.hset(keys.meta, 'status', 'ended');
      await waitFor('the session to finish on the master', async () => (await redis.hget(keys.aiState, 'done')) === '1', 30_000);
      // Tried again and again while no replica confirms the end: never completed meanwhile.
      await sleep(4000);
      expect(await job.getState()).not.toBe('completed');
      expect(worker.output()).toContain('no replica confirmed the AI session\'s end in time');
      replica.process.kill('SIGCONT');
      stopped = false;
    } finally {
      if (stopped) replica.process.kill('SIGCONT');
    }
    await waitFor('the job to complete once the replica holds the end', async () => (await job.getState()) === 'completed', 30_000);
    expect(await job.getState()).toBe('completed');
  });
});
