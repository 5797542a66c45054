import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { MEDIA_NODES_KEY, MEDIA_NODE_HEARTBEAT_MS, MEDIA_NODE_TTL_MS, mediaNodeKey } from '@clinic-hub/protocol';

/**
 * This node's entry in the media node registry (protocol/consult.ts): a hash
 * refreshed every few seconds with a short expiry, so the hub stops placing
 * rooms on a node that died, and `draining` so it stops placing them on one
 * that is shutting down.
 */
export class MediaNodeRegistry {
  private timer: NodeJS.Timeout | null = null;
  private readonly startedAt = Date.now();

  constructor(
    private readonly redis: Redis,
    private readonly self: { nodeId: string; url: string },
    private readonly state: () => { rooms: number; participants: number; draining: boolean },
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => void this.beat().catch((error: unknown) => this.logger.warn({ err: error }, 'media node heartbeat failed')), MEDIA_NODE_HEARTBEAT_MS);
    this.timer.unref();
  }

  /** Writes the current state now (also called when draining starts, so the hub knows at once). */
  async beat(): Promise<void> {
    const { rooms, participants, draining } = this.state();
    const key = mediaNodeKey(this.self.nodeId);
    await this.redis
      .multi()
      .hset(key, { url: this.self.url, rooms, participants, startedAt: this.startedAt, draining: draining ? '1' : '0', beatAt: Date.now() })
      .pexpire(key, MEDIA_NODE_TTL_MS)
      .sadd(MEDIA_NODES_KEY, this.self.nodeId)
      .exec();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.redis.multi().del(mediaNodeKey(this.self.nodeId)).srem(MEDIA_NODES_KEY, this.self.nodeId).exec();
  }
}
