import type { Redis } from 'ioredis';
import type { Namespace } from 'socket.io';
import type { DisplayPresence, NodeStatus, Role } from '@clinic-hub/protocol';
import { identityOf } from '../auth/socket-auth.js';
import type { Logger } from '@clinic-hub/platform/logging';

/** Every hub node's heartbeat, in one hash shared by all nodes (not clinic data). */
export const NODES_KEY = 'ch:ops:nodes';
export const displaysKey = (clinic: string) => `ch:{${clinic}}:displays`;

const HEARTBEAT_MS = 5_000;
/** A node or display not heard from for this long is shown as gone. */
export const STALE_AFTER_MS = 3 * HEARTBEAT_MS;

/**
 * Writes this node's heartbeat and the presence of its display screens to
 * Redis every few seconds, so `clinic status` and `clinic displays` can show
 * every node and screen from any node.
 */
export class NodeRegistry {
  private timer: NodeJS.Timeout | null = null;
  private readonly startedAt = Date.now();

  constructor(
    private readonly redis: Redis,
    private readonly nsp: Namespace,
    private readonly self: { nodeId: string; url: () => string; server: () => string; clients: () => Partial<Record<Role, number>> },
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.nsp.on('connection', (socket) => {
      const identity = identityOf(socket);
      if (identity.role !== 'display') return;
      const entry = (lastSeen: number) =>
        JSON.stringify({ id: socket.id, sub: identity.sub, node: this.self.nodeId, address: identity.address, connectedAt, lastSeen });
      const connectedAt = Date.now();
      // Written once: while the screen is connected, its node's heartbeat says it is alive.
      this.redis.hset(displaysKey(identity.clinic), socket.id, entry(connectedAt)).catch(() => undefined);
      socket.on('disconnect', () => {
        // Keep the screen's last sighting under its subject, so an unplugged TV still shows when it was last seen.
        this.redis
          .multi()
          .hdel(displaysKey(identity.clinic), socket.id)
          .hset(`${displaysKey(identity.clinic)}:gone`, identity.sub, entry(Date.now()))
          .exec()
          .catch(() => undefined);
      });
    });
    const beat = () => void this.heartbeat().catch((error: Error) => this.logger.debug({ err: error.message }, 'heartbeat failed'));
    beat();
    this.timer = setInterval(beat, HEARTBEAT_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.redis.hdel(NODES_KEY, this.self.nodeId).catch(() => undefined);
  }

  /** One small write per node: never one per screen (thousands of displays would each cost a write every beat). */
  private async heartbeat(): Promise<void> {
    const clients = this.self.clients();
    const status: NodeStatus = {
      nodeId: this.self.nodeId,
      url: this.self.url(),
      server: this.self.server(),
      pid: process.pid,
      startedAt: this.startedAt,
      lastSeen: Date.now(),
      clients,
      rssBytes: process.memoryUsage.rss(),
    };
    await this.redis.hset(NODES_KEY, this.self.nodeId, JSON.stringify(status));
  }
}

export async function listNodes(redis: Redis): Promise<(NodeStatus & { up: boolean })[]> {
  const entries = await redis.hgetall(NODES_KEY);
  const now = Date.now();
  const nodes = Object.values(entries).map((raw) => JSON.parse(raw) as NodeStatus);
  const gone = nodes.filter((n) => now - n.lastSeen > 10 * STALE_AFTER_MS).map((n) => n.nodeId);
  if (gone.length > 0) await redis.hdel(NODES_KEY, ...gone);
  return nodes
    .filter((n) => !gone.includes(n.nodeId))
    .map((n) => ({ ...n, up: now - n.lastSeen <= STALE_AFTER_MS }))
    .sort((a, b) => a.nodeId.localeCompare(b.nodeId));
}

/**
 * Connected screens (online while their node's heartbeat is fresh; lastSeen is
 * that heartbeat) and screens that have left, newest first.
 */
export async function listDisplays(redis: Redis, clinic: string): Promise<DisplayPresence[]> {
  const [connected, gone, nodes] = await Promise.all([
    redis.hgetall(displaysKey(clinic)),
    redis.hgetall(`${displaysKey(clinic)}:gone`),
    redis.hgetall(NODES_KEY),
  ]);
  const now = Date.now();
  const nodeSeen = new Map(Object.values(nodes).map((raw) => {
    const node = JSON.parse(raw) as NodeStatus;
    return [node.nodeId, node.lastSeen] as const;
  }));
  const entries = Object.values(connected).map((raw) => {
    const entry = JSON.parse(raw) as Omit<DisplayPresence, 'online'>;
    return { ...entry, lastSeen: Math.max(entry.lastSeen, nodeSeen.get(entry.node) ?? 0) };
  });
  // A screen whose node stopped heart-beating (the node died) has left: file it under "gone".
  const orphaned = entries.filter((d) => now - d.lastSeen > 2 * STALE_AFTER_MS);
  if (orphaned.length > 0) {
    const multi = redis.multi().hdel(displaysKey(clinic), ...orphaned.map((d) => d.id));
    for (const d of orphaned) multi.hset(`${displaysKey(clinic)}:gone`, d.sub, JSON.stringify(d));
    await multi.exec();
  }
  const online = entries.filter((d) => !orphaned.includes(d)).map((d) => ({ ...d, online: now - d.lastSeen <= STALE_AFTER_MS }));
  const onlineSubs = new Set(online.filter((d) => d.online).map((d) => d.sub));
  const left = Object.values(gone)
    .map((raw) => ({ ...(JSON.parse(raw) as Omit<DisplayPresence, 'online'>), online: false }))
    .filter((d) => !onlineSubs.has(d.sub));
  return [...online, ...left].sort((a, b) => b.lastSeen - a.lastSeen);
}
