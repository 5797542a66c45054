/**
 * A live AI session on a Redis Cluster whose clinic's shard fails over while
 * the session's run commits finals, the replica lagging (a lossy failover:
 * what the master did in the lag is gone), and the jobs queue's shard does
 * not fail over: the run keeps its job's lock and its claim (both written
 * long before) and goes on. The finals it committed in the lag went out to
 * clinicians and vanished from the stored transcript. Afterwards the stored
 * transcript must hold every final clinicians were sent, once, in order:
 * the run finds its last writes gone, is claimed again from what the shard
 * kept, and redoes them.
 *
 * The run commits in the lag because it is held (SIGSTOP) while audio is
 * written and confirmed on the replica, and let go when the replica starts
 * lagging: the audio survives the failover, the finals made of it do not.
 */
import { AI_RESULT_FIELD, JOB_QUEUES, JOB_QUEUE_PREFIX, consultAiChannel, consultKeys, type AiResultMessage, type AiTranscript } from '@clinic-hub/protocol';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReplicaAck, connectRedisClient, hashSlot, type RedisClient } from '@clinic-hub/platform/redis';
import { conversation, feedConversation, type Track } from '@clinic-hub/test-kit/audio-tap';
import { clinicOnMaster, clusterLagSkipReason, startRedisCluster, type RedisClusterNodes } from '@clinic-hub/test-kit/redis-cluster';
import { espeakSpeech } from '@clinic-hub/test-kit/speech';
import { tempDir } from '@clinic-hub/test-kit/tmp';
import { waitFor } from '@clinic-hub/test-kit/wait';
import { fixtureWorkerEnv, startAiWorkerProcess, writeFixtureModels, type AiWorkerProcess } from '@clinic-hub/test-kit/worker-fixtures';
import { AiSessionJobs } from '../src/consult/ai-session-jobs.js';

const CONSULT = 'consult-rewind-001';
/** Long enough that the replica is still lagging when the released run has committed what it was holding back. */
const LAG_MS = 2500;
/** No lock lapses here: the job's lock, on a shard that does not fail over, holds through the SIGSTOP and the failover. */
const LOCK_MS = 10_000;
const LINES = [
  'Good morning. What brings you in today?',
  'I have had a cough for two weeks.',
  'Do you have a fever or any pain?',
  'A little fever at night, no pain.',
  'Let me listen to your chest now.',
  'Thank you doctor.',
];

const lagSkip = clusterLagSkipReason();
const tmp = tempDir();

type Final = { type: 'transcript'; payload: AiTranscript };
const isFinal = (m: AiResultMessage): m is Final => m.type === 'transcript' && m.payload.kind === 'final';

describe.skipIf(lagSkip !== null)('a live AI session on a Redis Cluster whose clinic\'s shard loses its last writes while the session commits finals', () => {
  let cluster: RedisClusterNodes;
  let redis: RedisClient;
  let clinicians: RedisClient;
  let ack: ReplicaAck;
  let jobs: AiSessionJobs;
  let queue: Queue;
  let worker: AiWorkerProcess;
  let clinic: string;
  let tracks: Track[];
  let turns: { at: number; seconds: number }[];

  beforeAll(async () => {
    writeFixtureModels(`${tmp.dir}/models`);
    let at = 0.5;
    const laid = LINES.map((line, i) => {
      const speech = espeakSpeech(line);
      const turn = { participant: i % 2 === 0 ? 'doctor:rw' : 'patient:rw', role: i % 2 === 0 ? ('doctor' as const) : ('patient' as const), at, speech };
      at += speech.length / 16000 + 1.2;
      return turn;
    });
    tracks = conversation(at + 0.5, laid);
    turns = laid.map((t) => ({ at: t.at, seconds: t.speech.length / 16000 }));

    cluster = await startRedisCluster({ nodeTimeoutMs: 2000 });
    // The clinic on a shard of its own, apart from the jobs queue's: only the clinic's fails over.
    const queueSlot = hashSlot(`${JOB_QUEUE_PREFIX}:${JOB_QUEUES.aiSessions}`);
    const other = (await cluster.masters()).find((m) => !m.slots.some(([from, to]) => queueSlot >= from && queueSlot <= to))!;
    clinic = clinicOnMaster(other.slots, 'rewind');
    redis = connectRedisClient(cluster.target, 'test:ai-session-rewind');
    redis.on('error', () => undefined);
    clinicians = connectRedisClient(cluster.target, 'test:clinicians', { shardedSubscriber: true });
    clinicians.on('error', () => undefined);
    ack = new ReplicaAck(redis, { replicas: 1, timeoutMs: 3000 });
    worker = startAiWorkerProcess({
      ...fixtureWorkerEnv('', `${tmp.dir}/models`),
      REDIS_URL: '',
      ...cluster.env,
      AI_WORKER_ID: 'ai-rewind',
      AI_JOB_LOCK_MS: String(LOCK_MS),
      LOG_LEVEL: 'info',
    });
    await waitFor('the AI worker to be ready', () => worker.output().includes('AI worker ready') || worker.child.exitCode !== null, 60_000);
    expect(worker.child.exitCode, worker.output()).toBeNull();
    jobs = new AiSessionJobs(cluster.target, 'test:ai-session-jobs', pino({ level: 'silent' }), { policy: { replicas: 1, timeoutMs: 3000 } });
    queue = new Queue(JOB_QUEUES.aiSessions, { connection: redis, prefix: JOB_QUEUE_PREFIX });
  }, 120_000);

  afterAll(async () => {
    if (worker && worker.child.exitCode === null) worker.child.kill('SIGCONT');
    await worker?.stop();
    await jobs?.close();
    await queue?.close();
    clinicians?.disconnect();
    redis?.disconnect();
    await cluster?.cleanup();
    tmp.cleanup();
  });

  it('stores every final the clinicians were sent, once and in order: the run redoes the finals the failover lost', { timeout: 120_000 }, async () => {
    const keys = consultKeys(clinic, CONSULT);
    /** What clinicians were sent (the hub relays this channel to them), in the order it came. */
    const sent: Final[] = [];
    let lagging = false;
    let sentInLag = 0;
    clinicians.on('smessage', (_channel: string, message: string) => {
      const result = JSON.parse(message) as AiResultMessage;
      if (!isFinal(result)) return;
      sent.push(result);
      if (lagging) sentInLag++;
    });
    await clinicians.ssubscribe(consultAiChannel(clinic));
    /** Everything written to the clinic's shard so far, the worker's writes included, is on its replica. */
    const onReplica = async (what: string) => expect(await ack.confirm({ fenceKey: `${keys.meta}:test-fence` }), what).toBe(true);
    const chunkAfter = (turn: number, seconds: number) => Math.ceil((turns[turn]!.at + turns[turn]!.seconds + seconds) * 10);

    await redis.hset(keys.meta, { status: 'live', language: 'en', createdAt: String(Date.now()) });
    expect(await jobs.add({ clinic, consult: CONSULT, language: 'en' })).toBe(true);
    const t0 = Date.now();
    // Turns 1 and 2, committed and on the replica: the run's claim and its first finals survive what follows.
    const heldFrom = chunkAfter(1, 0.8);
    await feedConversation(redis as Redis, keys.audio, tracks, { t0, speed: 3, toChunk: heldFrom });
    await waitFor('the finals of turns 1 and 2', () => sent.length >= 2, 20_000);
    await onReplica('the claim and the first finals on the replica');

    // Turns 3 and 4 written (and on the replica) while the run is held; it commits them once the replica lags.
    process.kill(worker.child.pid!, 'SIGSTOP');
    const restFrom = chunkAfter(3, 0.8);
    try {
      await feedConversation(redis as Redis, keys.audio, tracks, { t0, speed: 30, fromChunk: heldFrom, toChunk: restFrom });
      await onReplica('the audio of turns 3 and 4 on the replica');
    } catch (error) {
      process.kill(worker.child.pid!, 'SIGCONT');
      throw error;
    }
    const master = await cluster.masterOfSlot(hashSlot(keys.meta));
    const failover = await cluster.killMaster(master.port, {
      lagMs: LAG_MS,
      onLagging: () => {
        lagging = true;
        process.kill(worker.child.pid!, 'SIGCONT');
      },
    });
    lagging = false;
    const storedAfterFailover = (await redis.xrange(keys.ai, '-', '+').catch(() => [])).length;
    console.info(`clinic's shard ${failover.killed} → ${failover.promoted} in ${failover.failoverMs} ms; ${sentInLag} finals sent in the ${LAG_MS} ms lag; ${storedAfterFailover} results stored just after the failover`);
    // The case under test: finals went out while the replica lagged (else this run shows nothing).
    expect(sentInLag).toBeGreaterThan(0);

    // The consultation goes on to its end, acknowledged once a replica holds it.
    await feedConversation(redis as Redis, keys.audio, tracks, { t0, speed: 3, fromChunk: restFrom });
    await redis.hset(keys.meta, 'status', 'ended');
    await onReplica('the end on the replica');
    await waitFor('the session to end', async () => (await redis.hget(keys.aiState, 'done')) === '1', 30_000);
    await waitFor('its job to complete', async () => (await (await queue.getJob(AiSessionJobs.jobId({ clinic, consult: CONSULT })))?.getState()) === 'completed', 15_000);

    const stored = (await redis.xrange(keys.ai, '-', '+'))
      .map(([, fields]) => JSON.parse(fields[fields.indexOf(AI_RESULT_FIELD) + 1]!) as AiResultMessage)
      .filter(isFinal);
    const span = (f: Final) => `${f.payload.participant} ${f.payload.startMs - t0}–${f.payload.endMs - t0} ms "${f.payload.text}"`;
    console.info(`sent ${sent.length} finals:\n  ${sent.map(span).join('\n  ')}\nstored ${stored.length}:\n  ${stored.map(span).join('\n  ')}`);
    const problems: string[] = [];
    // Every final sent is stored once: one stored final of that speaker over the same speech (a run that redoes an
    // utterance starts its VAD afresh, which may move its edges by a frame or three).
    for (const final of sent) {
      const same = stored.filter((s) => s.payload.participant === final.payload.participant && s.payload.startMs < final.payload.endMs && s.payload.endMs > final.payload.startMs);
      if (same.length !== 1) problems.push(`sent ${span(final)}: stored ${same.length}×`);
      else if (Math.abs(same[0]!.payload.startMs - final.payload.startMs) > 250 || Math.abs(same[0]!.payload.endMs - final.payload.endMs) > 250) problems.push(`sent ${span(final)}: stored as ${span(same[0]!)}`);
    }
    // In order, nothing repeated: each speaker's stored finals follow one another in time, in the order stored.
    for (const participant of ['doctor:rw', 'patient:rw']) {
      const own = stored.filter((f) => f.payload.participant === participant);
      for (let k = 1; k < own.length; k++) {
        if (own[k]!.payload.startMs < own[k - 1]!.payload.endMs) problems.push(`stored out of order or overlapping: ${span(own[k - 1]!)} then ${span(own[k]!)}`);
      }
    }
    if (problems.length > 0) console.info(`worker log:\n${worker.output().split('\n').filter((l) => /"level":(40|50)/.test(l)).slice(-30).join('\n')}`);
    expect(problems).toEqual([]);
    // Found by the run itself, which kept its job's lock: claimed again, not taken over.
    expect(worker.output()).toMatch(/last writes lost \(a failover of the clinic's shard\) while this worker kept the job's lock: claimed again/);
  });
});
