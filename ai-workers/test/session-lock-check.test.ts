import { JOB_QUEUES, JOB_QUEUE_PREFIX, consultKeys } from '@clinic-hub/protocol';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { conversation, feedConversation, spokenTurns, storedFinals } from '@clinic-hub/test-kit/audio-tap';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { tempDir } from '@clinic-hub/test-kit/tmp';
import { sleep, waitFor } from '@clinic-hub/test-kit/wait';
import { fixtureWorkerEnv, startAiWorkerProcess, writeFixtureModels, type AiWorkerProcess } from '@clinic-hub/test-kit/worker-fixtures';

/**
 * A run whose session claim is lost (a failover of the clinic's shard) checks
 * the job's lock before it claims the session again. Redis failing that check
 * (CLUSTERDOWN, READONLY, a connection lost mid-failover) is no answer: a run
 * that took it for "lock lost" returned, and BullMQ completed the job while
 * its lock was in fact still the worker's: nobody ran the session again.
 *
 * The failed check is made on one real Redis by taking the SET command away
 * from its user for a second (ACL): BullMQ's extendLock renews the lock with
 * SET, and is answered with an error, while BullMQ's completion (which does
 * not SET) still works once the run returns: exactly the window in which a
 * run that gave up completed the job. (Every command failing would fail the
 * completion too, and the job would only stall.) The lock renewals fail in
 * that second as well; the 4 s lock outlives it.
 */
const LOCK_MS = 4000;
/** How long the lock checks fail after the run finds its claim lost, first: well within what is left of the lock (at least half of it). */
const CHECKS_FAIL_MS = 1000;

const tmp = tempDir();
const modelsDir = `${tmp.dir}/models`;
let redisServer: TestRedis;
let redis: Redis;
let queue: Queue;
let worker: AiWorkerProcess | undefined;

beforeAll(async () => {
  redisServer = await startTestRedis();
  redis = new Redis(redisServer.url);
  writeFixtureModels(modelsDir);
  queue = new Queue(JOB_QUEUES.aiSessions, { connection: redis, prefix: JOB_QUEUE_PREFIX });
});
afterAll(async () => {
  if (worker && worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill('SIGKILL');
  await redis?.acl('SETUSER', 'default', '+get', '+set').catch(() => undefined);
  await queue?.close();
  redis?.disconnect();
  await redisServer?.cleanup();
  tmp.cleanup();
});

const finalsIn = (key: string) => storedFinals(redis, key);

/**
 * One consultation on `worker`: turns 1–3, then the run's claim lost while
 * Redis fails lock checks for `checksFailMs`, then turns 4–6 and the end.
 * `deniedCommands` are taken from Redis's user meanwhile. Returns the job once completed.
 */
async function consultationWithFailedLockChecks(consult: string, checksFailMs: number, deniedCommands: string[]) {
  const clinic = 'lockclinic';
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
    { participant: 'doc-l1', role: 'doctor' },
    { participant: 'pat-l2', role: 'patient' },
  ]);
  const tracks = conversation(seconds, turns);
  // Turns 1–3 before the claim is lost; turns 4–6 after.
  const splitAt = Math.floor((turns[3]!.at - 0.6) * 10);
  const claimsLostBefore = worker!.output().split('claim lost in a failover; this run stopped writing').length;

  await redis.hset(keys.meta, { status: 'live', language: 'en', createdAt: String(Date.now()) });
  await queue.add('session', { clinic, consult, language: 'en' }, { jobId: consult });
  const t0 = Date.now();
  await feedConversation(redis, keys.audio, tracks, { t0, speed: 3, toChunk: splitAt });
  await waitFor('three finals', async () => (await finalsIn(keys.ai)).length >= 3, 20_000);

  // The lock checks fail from now; then the session's claim goes (another owner, as a failover of its shard leaves it).
  await redis.acl('SETUSER', 'default', ...deniedCommands.map((command) => `-${command}`));
  await redis.hset(keys.aiState, 'owner', 'a-run-before-the-failover');
  await waitFor('the run to find its claim lost', () => worker!.output().split('claim lost in a failover; this run stopped writing').length > claimsLostBefore, 5_000);
  await sleep(checksFailMs);
  await redis.acl('SETUSER', 'default', ...deniedCommands.map((command) => `+${command}`));
  console.info(`lock checks failed for ${checksFailMs} ms: the job is ${await (await queue.getJob(consult))!.getState()}`);

  await feedConversation(redis, keys.audio, tracks, { t0, speed: 3, fromChunk: splitAt });
  const lastTurnStart = t0 + turns[5]!.at * 1000;
  await waitFor("finals after the failed checks, the last turn's among them", async () => (await finalsIn(keys.ai)).some((f) => f.payload.endMs > lastTurnStart), 20_000).catch(async (error: Error) => {
    const now = (await queue.getJob(consult))!;
    throw new Error(`${error.message}: the job is ${await now.getState()} (returned ${JSON.stringify(now.returnvalue)}), ${(await finalsIn(keys.ai)).length} finals\n${worker!.output().split('\n').filter((l) => /lock|claim|AI session/.test(l)).slice(-8).join('\n')}`);
  });

  await redis.hset(keys.meta, 'status', 'ended');
  await waitFor('the session to end', async () => (await redis.hget(keys.aiState, 'done')) === '1', 15_000);
  await waitFor('its job to be completed', async () => (await (await queue.getJob(consult))!.getState()) === 'completed', 15_000);
  const job = (await queue.getJob(consult))!;
  const finals = await finalsIn(keys.ai);
  console.info(`${finals.length} finals for ${turns.length} turns; the job ${await job.getState()}, stalled ${job.stalledCounter}×`);
  // None lost while the run checked its lock: every turn has a final over it.
  for (const turn of turns) {
    const start = t0 + turn.at * 1000;
    const end = start + (turn.speech.length / 16000) * 1000;
    expect(finals.filter((f) => f.payload.participant === turn.participant && f.payload.startMs < end && f.payload.endMs > start).length, `turn at ${turn.at.toFixed(1)} s`).toBeGreaterThan(0);
  }
  // None repeated by the re-claim: no two finals of a speaker overlap in time.
  for (const participant of ['doc-l1', 'pat-l2']) {
    const own = finals.filter((f) => f.payload.participant === participant).sort((a, b) => a.payload.startMs - b.payload.startMs);
    for (let i = 1; i < own.length; i++) expect(own[i]!.payload.startMs).toBeGreaterThanOrEqual(own[i - 1]!.payload.endMs);
  }
  return job;
}

describe('the job lock check of a run whose session claim was lost', () => {
  it('Redis failing the check for a second, then longer than the lock: the session runs to its end and its job completes', { timeout: 150_000 }, async () => {
    worker = startAiWorkerProcess(fixtureWorkerEnv(redisServer.url, modelsDir, { AI_WORKER_ID: 'lock-a', AI_JOB_LOCK_MS: String(LOCK_MS), LOG_LEVEL: 'info' }));
    await waitFor('the worker to be ready', () => worker!.output().includes('AI worker ready') || worker!.child.exitCode !== null, 30_000);

    // Within the lock: the run checks again, finds the lock its own, claims the session again; the job never stalls.
    const brief = await consultationWithFailedLockChecks('consult-lock-brief', CHECKS_FAIL_MS, ['set']);
    expect(worker.output()).toMatch(/lock check failed \(Redis\)/);
    expect(worker.output()).toMatch(/AI session claim lost .* claimed again, resuming from the saved positions/);
    expect(brief.stalledCounter).toBe(0);

    // Longer than the lock, GET failing too (else the check, reading the lapsed lock, answers a clear "not ours"): the
    // run gives up checking, neither completing nor failing the job; its lock lapses and BullMQ's stall check gives the
    // job back, and the run that takes it (here the same worker's) resumes the session.
    const long = await consultationWithFailedLockChecks('consult-lock-long', LOCK_MS + 1000, ['get', 'set']);
    expect(worker.output()).toMatch(/could not be checked within AI_JOB_LOCK_MS: left to BullMQ's stall check/);
    expect(long.stalledCounter).toBe(1);
    await worker.stop();
  });
});
