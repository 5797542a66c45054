import { JOB_QUEUES, JOB_QUEUE_PREFIX, consultKeys } from '@clinic-hub/protocol';
import { Queue, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { tempDir } from '@clinic-hub/test-kit/tmp';
import { sleep, waitFor } from '@clinic-hub/test-kit/wait';
import { fixtureWorkerEnv, startAiWorkerProcess, writeFixtureModels, type AiWorkerProcess } from '@clinic-hub/test-kit/worker-fixtures';

/**
 * BullMQ counts a job's stalls (its lock lapsing) over the job's whole life.
 * A live session's job lives as long as its consultation, so an hour of it
 * can take more lapses (failovers, a worker paused) than AI_MAX_STALLED
 * while running well between them; a job that stalls again and again without
 * ever running well (a worker that dies on it each time) must still fail.
 * Two real worker processes; a lapse is made by stopping (SIGSTOP) or killing
 * (SIGKILL) the one that holds the job, the other finding its lock lapsed.
 */
const MAX_STALLED = 1;
/**
 * With the stall check every second (fixtureWorkerEnv's). Not fixtureWorkerEnv's 2 s: renewed about every second, a
 * 2 s lock lapses now and then on a busy machine (the failover test's finding), and one lapse more than the test
 * makes is enough to fail a job with AI_MAX_STALLED 1.
 */
const LOCK_MS = 4000;

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
    if (worker.child.exitCode !== null || worker.child.signalCode !== null) continue;
    worker.child.kill('SIGCONT');
    worker.child.kill('SIGKILL');
  }
  await queue?.close();
  redis?.disconnect();
  await redisServer?.cleanup();
  tmp.cleanup();
});

async function startWorker(id: string): Promise<AiWorkerProcess> {
  const worker = startAiWorkerProcess(fixtureWorkerEnv(redisServer.url, modelsDir, { AI_WORKER_ID: id, AI_JOB_LOCK_MS: String(LOCK_MS), AI_MAX_STALLED: String(MAX_STALLED), LOG_LEVEL: 'info' }));
  workers.push(worker);
  await waitFor(`worker ${id} to be ready`, () => worker.output().includes('AI worker ready') || worker.child.exitCode !== null, 30_000);
  expect(worker.child.exitCode, worker.output()).toBeNull();
  return worker;
}

/** A live consultation with no audio yet: its session runs (waiting for audio) until the consultation ends. */
async function admit(clinic: string, consult: string): Promise<() => Promise<Job | undefined>> {
  await redis.hset(consultKeys(clinic, consult).meta, { status: 'live', language: 'en', createdAt: String(Date.now()) });
  await queue.add('session', { clinic, consult, language: 'en' }, { jobId: `${clinic}.${consult}` });
  return () => queue.getJob(`${clinic}.${consult}`);
}

/** The job active on a live worker of `among` (known by its id in `ids`) after at least `stalls` stalls: that worker, and the stalls. */
async function heldAfter(job: () => Promise<Job | undefined>, stalls: number, among: AiWorkerProcess[], ids: string[]): Promise<{ holder: AiWorkerProcess; stalls: number }> {
  let held: { holder: AiWorkerProcess; stalls: number } | undefined;
  await waitFor(`the job taken again after ${stalls} stalls`, async () => {
    const now = await job();
    const state = await now?.getState();
    if (state === 'failed') throw new Error(`the job failed after ${now!.stalledCounter} stalls: ${now!.failedReason}`);
    if (!now || state !== 'active' || now.stalledCounter < stalls) return false;
    const holder = among[ids.indexOf(now.processedBy ?? '')];
    if (!holder || holder.child.signalCode !== null || holder.child.exitCode !== null) return false;
    held = { holder, stalls: now.stalledCounter };
    return true;
  }, 20_000).catch(async (error: Error) => {
    const now = await job();
    throw new Error(`${error.message}: the job is ${await now?.getState()}, stalled ${now?.stalledCounter}×, last taken by ${now?.processedBy}, progress ${JSON.stringify(now?.progress)}\n${workers.map((w) => w.output().split('\n').filter((l) => /stall|AI session|superseded|claim/.test(l)).slice(-8).join('\n')).join('\n')}`);
  });
  return held!;
}

describe('stalls of a live session job', () => {
  it('a session that runs well between lapses is not failed however many it has had; one that never runs again is', { timeout: 150_000 }, async () => {
    const ids = ['stall-a', 'stall-b'];
    const pool = [await startWorker(ids[0]!), await startWorker(ids[1]!)];

    // Three lapses, more than AI_MAX_STALLED, each followed by the session running well on the other worker.
    const clinic = 'stallclinic';
    const job = await admit(clinic, 'consult-stalls-well');
    let { holder, stalls } = await heldAfter(job, 0, pool, ids);
    while (stalls < MAX_STALLED + 2) {
      process.kill(holder.child.pid!, 'SIGSTOP');
      const stopped = holder;
      ({ holder, stalls } = await heldAfter(job, stalls + 1, pool, ids));
      // Running well: its lock renewed again and again (every half lock) for twice the lock's length.
      await sleep(2 * LOCK_MS);
      // The paused worker wakes: its run of the session finds the session taken over and stops.
      process.kill(stopped.child.pid!, 'SIGCONT');
      await sleep(500);
    }
    await redis.hset(consultKeys(clinic, 'consult-stalls-well').meta, 'status', 'ended');
    await waitFor('the session to end', async () => (await redis.hget(consultKeys(clinic, 'consult-stalls-well').aiState, 'done')) === '1', 15_000);
    await waitFor('its job to be completed or failed', async () => ['completed', 'failed'].includes(await (await job())!.getState()), 15_000);
    const well = (await job())!;
    console.info(`a session that ran well between lapses: ${await well.getState()}, stalled ${well.stalledCounter}×${well.failedReason ? ` (${well.failedReason})` : ''}`);
    expect({ state: await well.getState(), failedReason: well.failedReason }).toEqual({ state: 'completed', failedReason: undefined });
    expect(well.stalledCounter).toBeGreaterThanOrEqual(MAX_STALLED + 2);

    // A crash loop: every worker that takes the job dies at once (SIGKILL), before its run gets going.
    const looping = await admit(clinic, 'consult-stalls-crash');
    const crashIds = [...ids];
    const crashPool = [...pool];
    for (let crash = 0; ; crash++) {
      const taken = await heldAfter(looping, crash, crashPool, crashIds).catch(() => null);
      // Failed when taken after more than AI_MAX_STALLED stalls.
      if (!taken) break;
      // Taken after that many: the worker fails it at once; killing it would only stall it once more.
      if (taken.stalls > MAX_STALLED) {
        await waitFor('the crash-looping job to fail', async () => (await (await looping())!.getState()) === 'failed', 10_000).catch(() => undefined);
        break;
      }
      const victim = taken.holder;
      victim.child.kill('SIGKILL');
      await victim.exited;
      const id = `stall-${crash}-again`;
      crashIds.push(id);
      crashPool.push(await startWorker(id));
    }
    const crashed = (await looping())!;
    console.info(`a crash-looping session: ${await crashed.getState()} after ${crashed.stalledCounter} stalls (${crashed.failedReason})`);
    expect(await crashed.getState()).toBe('failed');
    expect(crashed.stalledCounter).toBe(MAX_STALLED + 1);
  });
});
