import { JOB_QUEUES, JOB_QUEUE_PREFIX, consultKeys } from '@clinic-hub/protocol';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { conversation, feedConversation, storedFinals } from '@clinic-hub/test-kit/audio-tap';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { espeakSpeech } from '@clinic-hub/test-kit/speech';
import { tempDir } from '@clinic-hub/test-kit/tmp';
import { sleep, waitFor } from '@clinic-hub/test-kit/wait';
import { fixtureWorkerEnv, startAiWorkerProcess, type AiWorkerProcess, writeFixtureModels } from '@clinic-hub/test-kit/worker-fixtures';

/**
 * A participant who leaves and comes back: the session's state marks them as
 * left (`e:<participant>`) and the rejoin clears the mark. A run that resumes
 * the session (another worker, or the same one claiming it again after a
 * failover) takes the mark from the state; with everyone else gone too and the
 * audio quiet for AI_SESSION_END_GRACE_MS, it would end the session.
 *
 * The rejoin's write is made to fail as a failover makes writes fail: the
 * test's Redis is turned into a replica of a master that is not there
 * (REPLICAOF a closed port) while the run reads the rejoin's first audio, so
 * every write is answered READONLY, as a demoted master answers; reads go on.
 * A second and a half later it is a master again and the run's writes go
 * through. The rejoin was an uncounted write whose failure was ignored: the
 * state went on marking the participant as left while the run went on.
 *
 * Then the doctor leaves, the session is claimed again (its `owner` changed,
 * as a failover that loses a claim leaves it), the patient is quiet for longer
 * than the grace, and speaks again. That part holds on the old code too: the
 * resumed run re-reads the last entries of each participant (a checkpoint
 * stays a few entries behind), sees the rejoin again and clears the mark.
 * It is here to show the session going on with the mark written by a save.
 */
const END_GRACE_MS = 2000;

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
  if (worker && worker.child.exitCode === null && worker.child.signalCode === null) {
    worker.child.kill('SIGCONT');
    worker.child.kill('SIGKILL');
  }
  await redis?.replicaof('NO', 'ONE').catch(() => undefined);
  await queue?.close();
  redis?.disconnect();
  await redisServer?.cleanup();
  tmp.cleanup();
});

const finalsIn = (key: string) => storedFinals(redis, key);

describe('a participant who rejoins', () => {
  it('a rejoin whose write Redis refused is written by a later save: after a re-claim the session goes on and their speech gets finals', { timeout: 150_000 }, async () => {
    worker = startAiWorkerProcess(fixtureWorkerEnv(redisServer.url, modelsDir, { AI_WORKER_ID: 'rejoin-a', AI_JOB_LOCK_MS: '10000', AI_SESSION_END_GRACE_MS: String(END_GRACE_MS), LOG_LEVEL: 'info' }));
    await waitFor('the worker to be ready', () => worker!.output().includes('AI worker ready') || worker!.child.exitCode !== null, 30_000);
    const clinic = 'rejoinclinic';
    const consult = 'consult-rejoin';
    const keys = consultKeys(clinic, consult);
    const doctor = 'doc-r1';
    const patient = 'pat-r2';
    const pid = worker.child.pid!;

    await redis.hset(keys.meta, { status: 'live', language: 'en', createdAt: String(Date.now()) });
    await queue.add('session', { clinic, consult, language: 'en' }, { jobId: consult });

    // Both speak; the patient leaves (their tap sends `end`), the doctor's microphone goes quiet.
    const greeting = espeakSpeech('Good morning. What brings you in today?');
    const answer = espeakSpeech('I have had a cough for two weeks.');
    const first = conversation(0.5 + greeting.length / 16000 + 1.2 + answer.length / 16000 + 1.5, [
      { participant: doctor, role: 'doctor', at: 0.5, speech: greeting },
      { participant: patient, role: 'patient', at: 0.5 + greeting.length / 16000 + 1.2, speech: answer },
    ]);
    await feedConversation(redis, keys.audio, first, { speed: 3, end: false });
    await redis.xadd(keys.audio, '*', 'p', patient, 'r', 'patient', 't', String(Date.now()), 'end', '1');
    await waitFor('two finals and the patient marked as left', async () => (await finalsIn(keys.ai)).length >= 2 && (await redis.hget(keys.aiState, `e:${patient}`)) === '1', 20_000);

    // The patient comes back. The run reads their first audio while every write is refused (READONLY).
    const back = espeakSpeech('I am back. The cough is worse at night.');
    const rejoin = conversation(0.8 + back.length / 16000 + 1.5, [{ participant: patient, role: 'patient', at: 0.8, speech: back }]);
    const t0 = Date.now();
    process.kill(pid, 'SIGSTOP');
    await feedConversation(redis, keys.audio, rejoin, { t0, speed: 3, end: false, toChunk: 4 });
    await redis.replicaof('127.0.0.1', '1');
    process.kill(pid, 'SIGCONT');
    await sleep(1500);
    await redis.replicaof('NO', 'ONE');
    await feedConversation(redis, keys.audio, rejoin, { t0, speed: 3, end: false, fromChunk: 4 });
    await waitFor("the patient's final after the rejoin", async () => (await finalsIn(keys.ai)).some((f) => f.payload.participant === patient && f.payload.startMs >= t0), 20_000);
    await sleep(1000);
    const markAfterRejoin = await redis.hget(keys.aiState, `e:${patient}`);
    console.info(`after the rejoin the state marks the patient as left: ${markAfterRejoin === '1'} (e:${patient} = ${markAfterRejoin})`);

    // The doctor leaves; the session is claimed again and resumed from the state; the patient is quiet for longer than the grace.
    await redis.xadd(keys.audio, '*', 'p', doctor, 'r', 'doctor', 't', String(Date.now()), 'end', '1');
    await sleep(500);
    const claimedAgainBefore = worker.output().split('claimed again, resuming from the saved positions').length;
    await redis.hset(keys.aiState, 'owner', 'a-run-before-the-failover');
    await waitFor('the session claimed again', () => worker!.output().split('claimed again, resuming from the saved positions').length > claimedAgainBefore, 5_000).catch((error: Error) => {
      throw new Error(`${error.message}\n${worker!.output().split('\n').filter((l) => /lock|claim|AI session|rror/.test(l)).slice(-10).join('\n')}`);
    });
    await sleep(END_GRACE_MS + 2000);
    console.info(`after the re-claim: e:${patient} = ${await redis.hget(keys.aiState, `e:${patient}`)}`);
    const endedEarly = (await redis.hget(keys.aiState, 'done')) === '1';
    console.info(`the session ended while the patient was still in the consultation: ${endedEarly}`);

    // The patient speaks again.
    const more = espeakSpeech('Should I take something for it?');
    const later = conversation(0.5 + more.length / 16000 + 1.5, [{ participant: patient, role: 'patient', at: 0.5, speech: more }]);
    const t1 = Date.now();
    await feedConversation(redis, keys.audio, later, { t0: t1, speed: 3, end: false });
    const heard = await waitFor("the patient's final after the re-claim", async () => (await finalsIn(keys.ai)).some((f) => f.payload.participant === patient && f.payload.startMs >= t1), 15_000).then(
      () => true,
      () => false,
    );
    console.info(`the patient's speech after the re-claim has a final: ${heard}`);

    expect(markAfterRejoin, 'the rejoined patient is not marked as left').not.toBe('1');
    expect(endedEarly, 'the session did not end with the patient still there').toBe(false);
    expect(heard, "the patient's later speech has a final").toBe(true);

    await redis.hset(keys.meta, 'status', 'ended');
    await waitFor('the session to end', async () => (await redis.hget(keys.aiState, 'done')) === '1', 15_000);
    await waitFor('its job to be completed', async () => (await (await queue.getJob(consult))!.getState()) === 'completed', 15_000);
    await worker.stop();
  });
});
