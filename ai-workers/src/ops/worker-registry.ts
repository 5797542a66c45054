import type { RedisClient } from '@clinic-hub/platform/redis';
import { hostname } from 'node:os';
import { AI_WORKERS_KEY, AI_WORKER_HEARTBEAT_MS, AI_WORKER_TTL_MS, aiWorkerKey, type AiWorkerInfo } from '@clinic-hub/protocol';

/**
 * The worker's heartbeat: a hash that expires unless refreshed, and its id
 * in the set of workers. A worker that dies disappears within
 * AI_WORKER_TTL_MS; the platform's reader (@clinic-hub/platform/job-queues) reports it
 * gone and tidies the set.
 */
export class WorkerHeartbeat {
  private timer: NodeJS.Timeout | null = null;
  private readonly startedAt = Date.now();

  constructor(
    private readonly redis: RedisClient,
    private readonly id: string,
    private readonly describe: () => Omit<AiWorkerInfo, 'id' | 'host' | 'pid' | 'startedAt' | 'beatAt'>,
    private readonly intervalMs = AI_WORKER_HEARTBEAT_MS,
    private readonly ttlMs = AI_WORKER_TTL_MS,
  ) {}

  async start(): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => void this.beat().catch(() => undefined), this.intervalMs);
    this.timer.unref();
  }

  async beat(): Promise<void> {
    const info = this.describe();
    const fields: Record<string, string> = {
      host: hostname(),
      pid: String(process.pid),
      startedAt: String(this.startedAt),
      beatAt: String(Date.now()),
      concurrency: String(info.concurrency),
      sessions: String(info.sessions),
      recordings: String(info.recordings),
      stt: info.stt,
      emotion: info.emotion,
      lagSeconds: String(info.lagSeconds),
      stopping: info.stopping ? '1' : '0',
    };
    // The hash and the set lie in different hash slots (on a Redis Cluster, maybe on different shards): one after the
    // other, the hash first. A reader counts an id only while its hash exists, so either order it sees is right.
    await this.redis.multi().hset(aiWorkerKey(this.id), fields).pexpire(aiWorkerKey(this.id), this.ttlMs).exec();
    await this.redis.sadd(AI_WORKERS_KEY, this.id);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.redis.del(aiWorkerKey(this.id));
    await this.redis.srem(AI_WORKERS_KEY, this.id);
  }
}
