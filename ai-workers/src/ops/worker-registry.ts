import { hostname } from 'node:os';
import { AI_WORKERS_KEY, AI_WORKER_HEARTBEAT_MS, AI_WORKER_TTL_MS, aiWorkerKey } from '@clinic-hub/protocol';
import type { Redis } from 'ioredis';

/** What an AI worker says about itself every AI_WORKER_HEARTBEAT_MS (no consultation ids, no patient data). */
export interface AiWorkerInfo {
  id: string;
  host: string;
  pid: number;
  startedAt: number;
  beatAt: number;
  concurrency: number;
  sessions: number;
  recordings: number;
  stt: string;
  emotion: string;
  /** Seconds behind the audio (largest over its sessions). */
  lagSeconds: number;
  stopping: boolean;
}

/**
 * The worker's heartbeat: a hash that expires unless refreshed, and its id
 * in the set of workers. A worker that dies disappears within
 * AI_WORKER_TTL_MS; `readWorkers` reports it gone and tidies the set.
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

/** The AI workers alive now (those whose heartbeat has not expired), newest first. */
export async function readWorkers(redis: Redis): Promise<AiWorkerInfo[]> {
  const ids = await redis.smembers(AI_WORKERS_KEY);
  const workers: AiWorkerInfo[] = [];
  const gone: string[] = [];
  for (const id of ids) {
    const h = await redis.hgetall(aiWorkerKey(id));
    if (!h.beatAt) {
      gone.push(id);
      continue;
    }
    workers.push({
      id,
      host: h.host ?? '?',
      pid: Number(h.pid),
      startedAt: Number(h.startedAt),
      beatAt: Number(h.beatAt),
      concurrency: Number(h.concurrency),
      sessions: Number(h.sessions),
      recordings: Number(h.recordings),
      stt: h.stt ?? '?',
      emotion: h.emotion ?? '?',
      lagSeconds: Number(h.lagSeconds ?? 0),
      stopping: h.stopping === '1',
    });
  }
  if (gone.length > 0) await redis.srem(AI_WORKERS_KEY, ...gone);
  return workers.sort((a, b) => b.startedAt - a.startedAt);
}
