import type { RedisClient } from '@clinic-hub/platform/redis';
import type { Logger } from 'pino';
import { MEDIA_NODES_KEY, MEDIA_NODE_HEARTBEAT_MS, MEDIA_NODE_TTL_MS, mediaNodeKey } from '@clinic-hub/protocol';

/**
 * This node's entry in the media node registry (protocol/consult.ts): a hash
 * refreshed every few seconds with a short expiry, so the hub stops placing
 * rooms on a node that died, and `draining` so it stops placing them on one
 * that is shutting down.
 *
 * The hash and the set of ids lie in different hash slots (on a Redis
 * Cluster, maybe on different shards), so they are written one after the
 * other, never in one MULTI: the hash first (with its expiry, one MULTI on
 * one key), then the id. Readers (the hub's placement, `clinic status`) take
 * a node from the set only when its hash exists, so every order a reader
 * can see is right: an id without a hash (a node starting, stopping or dead)
 * is no node, and a hash not yet in the set is seen on the next beat.
 *
 * Each beat also takes out of the set the ids whose hash has gone (nodes that
 * died, or were replaced under new ids): without that the set only grows. A
 * node alive after all (its hash lapsed while it stalled) adds itself again
 * on its next beat.
 */
export class MediaNodeRegistry {
  private timer: NodeJS.Timeout | null = null;
  private readonly startedAt = Date.now();

  constructor(
    private readonly redis: RedisClient,
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
      .exec();
    await this.redis.sadd(MEDIA_NODES_KEY, this.self.nodeId);
    await this.tidy();
  }

  /** Removes the ids of nodes whose hash has gone. One command per id: on a Redis Cluster the hashes lie in different slots. */
  private async tidy(): Promise<void> {
    const others = (await this.redis.smembers(MEDIA_NODES_KEY)).filter((id) => id !== this.self.nodeId);
    const gone = (await Promise.all(others.map(async (id) => ((await this.redis.exists(mediaNodeKey(id))) === 0 ? id : null)))).filter((id) => id !== null);
    if (gone.length > 0) await this.redis.srem(MEDIA_NODES_KEY, ...gone);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    // The hash first: once it is gone no reader takes this node, whether or not the id leaves the set.
    await this.redis.del(mediaNodeKey(this.self.nodeId));
    await this.redis.srem(MEDIA_NODES_KEY, this.self.nodeId);
  }
}
