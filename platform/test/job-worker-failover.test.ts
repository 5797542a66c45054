/**
 * A BullMQ worker as the services make theirs (connectRedisClientForJobs,
 * one job at a time, like the recordings worker) keeps taking jobs through
 * failovers of its queue's master: on Sentinel and on a Redis Cluster, the
 * master killed with SIGKILL (its replica lagging first) three times while
 * jobs, some delayed, are added. After each failover the worker finishes a
 * job added after it, and in the end every job added is done.
 */
import { Queue, Worker, type Job } from 'bullmq';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JOB_QUEUE_PREFIX } from '@clinic-hub/protocol';
import { FAILOVER_MODES, type FailoverRedis } from '@clinic-hub/test-kit/redis-failover';
import { connectRedisClient, connectRedisClientForJobs, type RedisClient } from '../src/redis/connect.js';

const QUEUE = 'failover-probe';
const FAILOVERS = 3;
const LAG_MS = 500;

describe.each(FAILOVER_MODES)('a jobs worker across $name failovers of its queue\'s master', (mode) => {
  let redis: FailoverRedis;
  let commands: RedisClient;
  let blocking: RedisClient;
  let producer: RedisClient;
  let queue: Queue;
  let worker: Worker;
  /** Job ids done, in the order the worker finished them. */
  const done: string[] = [];

  beforeAll(async () => {
    redis = await mode.start();
    commands = connectRedisClient(redis.target, 'test:probe-worker:cmd');
    blocking = connectRedisClientForJobs(redis.target, 'test:probe-worker');
    producer = connectRedisClient(redis.target, 'test:probe-producer');
    for (const c of [commands, blocking, producer]) c.on('error', () => undefined);
    queue = new Queue(QUEUE, { connection: producer, prefix: JOB_QUEUE_PREFIX });
    queue.on('error', () => undefined);
    worker = new Worker(
      QUEUE,
      async (job: Job<{ n: number }>) => {
        // A little work on Redis, as a real job does.
        await commands.set(`${JOB_QUEUE_PREFIX}:probe:last`, String(job.data.n));
        await sleep(20);
        done.push(job.id!);
      },
      { connection: blocking, prefix: JOB_QUEUE_PREFIX, concurrency: 1 },
    );
    worker.on('error', () => undefined);
  }, 120_000);

  afterAll(async () => {
    await worker?.close(true).catch(() => undefined);
    await queue?.close().catch(() => undefined);
    for (const c of [commands, blocking, producer]) c?.disconnect();
    await redis?.cleanup();
  });

  it('takes jobs after every failover and leaves none behind', { timeout: 240_000 }, async () => {
    const added = new Set<string>();
    let n = 0;
    /** Adds one job (delayed up to 1.5 s, or not), again until Redis takes it. */
    const add = async () => {
      const id = `probe-${++n}`;
      const delay = n % 3 === 0 ? 0 : (n % 5) * 300;
      for (;;) {
        try {
          await queue.add('probe', { n }, { jobId: id, delay, attempts: 10, backoff: { type: 'fixed', delay: 200 } });
          added.add(id);
          return id;
        } catch {
          await sleep(100);
        }
      }
    };
    let adding = true;
    const stream = (async () => {
      while (adding) {
        await add();
        await sleep(100);
      }
    })();

    const failovers: string[] = [];
    for (let i = 0; i < FAILOVERS; i++) {
      await sleep(2000);
      const { killed, promoted, failoverMs } = await redis.killMasterOf(`${JOB_QUEUE_PREFIX}:${QUEUE}`, { lagMs: LAG_MS });
      // A job added now is taken by the worker within a few seconds: it did not stop at the failover.
      const probe = await add();
      const from = Date.now();
      while (!done.includes(probe) && Date.now() - from < 20_000) await sleep(100);
      failovers.push(`${killed} → ${promoted} in ${failoverMs} ms; a job added after it done ${done.includes(probe) ? `in ${Date.now() - from} ms` : 'never (20 s)'}`);
      expect(done, `after failover ${i + 1}: ${failovers.join('; ')}`).toContain(probe);
    }
    adding = false;
    await stream;

    // Every job the queue still holds is done. (One added while the replica lagged, not waited for on a replica, may
    // be lost with the old master: the services wait for a replica where that matters; this test is about the worker.)
    const from = Date.now();
    const notDone = async () => {
      const left: string[] = [];
      for (const id of [...added].filter((id) => !done.includes(id))) if (await queue.getJob(id)) left.push(id);
      return left;
    };
    while ((await notDone()).length > 0 && Date.now() - from < 30_000) await sleep(500);
    const left = await notDone();
    const lost = [...added].filter((id) => !done.includes(id) && !left.includes(id));
    const counts = await queue.getJobCounts('active', 'wait', 'delayed', 'failed', 'completed');
    console.info(`jobs worker (${mode.name}): ${added.size} jobs added, ${new Set(done).size} done, ${lost.length} lost with a failover; failovers: ${failovers.join('; ')}; queue ${JSON.stringify(counts)}`);
    expect(left).toEqual([]);
  });
});
