import { hostname } from 'node:os';
import { AI_WORKERS_KEY, AI_WORKER_HEARTBEAT_MS, AI_WORKER_TTL_MS, aiWorkerKey, type AiWorkerInfo } from '@clinic-hub/protocol';
import type { Redis } from 'ioredis';

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
    private readonly redis: Redis,
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
    await this.redis.multi().hset(aiWorkerKey(this.id), fields).pexpire(aiWorkerKey(this.id), this.ttlMs).sadd(AI_WORKERS_KEY, this.id).exec();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.redis.multi().del(aiWorkerKey(this.id)).srem(AI_WORKERS_KEY, this.id).exec();
  }
}
