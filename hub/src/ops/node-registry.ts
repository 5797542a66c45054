import { randomBytes } from 'node:crypto';
import type { RedisClient } from '@clinic-hub/platform/redis';
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
 * A screen that has gone shows as gone (`online: false`) within this time, whatever happened to it: at once
 * when it disconnects from a live node or its node restarts, within this when its node died (no heartbeat).
 */
export const DISPLAY_GONE_AFTER_MS = STALE_AFTER_MS;

type DisplayEntry = Omit<DisplayPresence, 'online'>;

/**
 * Writes this node's heartbeat and the presence of its display screens to
 * Redis every few seconds, so `clinic status` and `clinic displays` can show
 * every node and screen from any node.
 *
 * Screens are written when they connect and leave; the node also keeps its own
 * list, and puts Redis right from it (adds what is missing, removes what this
 * node wrote for screens that left) when a write failed or Redis came back from
 * an outage: a screen that connected while Redis was down appears within a
 * heartbeat of Redis being back. Each entry names the node's instance: after a
 * node was killed and restarted under the same id, its old screens are gone.
 */
export class NodeRegistry {
  private timer: NodeJS.Timeout | null = null;
  private readonly startedAt = Date.now();
  readonly instance = randomBytes(6).toString('hex');
  /** This node's connected screens: socket id → its clinic and entry. */
  private readonly screens = new Map<string, { clinic: string; entry: DisplayEntry }>();
  /** Redis may not match `screens` (a write failed, Redis restarted, or this node just started). */
  private dirty = true;

  constructor(
    private readonly redis: RedisClient,
    private readonly nsp: Namespace,
    private readonly self: {
      nodeId: string;
      url: () => string;
      server: () => string;
      clients: () => Partial<Record<Role, number>>;
      /** The clinics this node serves: where a resync looks for entries it left behind. */
      clinicIds: string[];
    },
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.nsp.on('connection', (socket) => {
      const identity = identityOf(socket);
      if (identity.role !== 'display') return;
      const connectedAt = Date.now();
      const entry: DisplayEntry = {
        id: socket.id,
        sub: identity.sub,
        node: this.self.nodeId,
        instance: this.instance,
        address: identity.address,
        connectedAt,
        lastSeen: connectedAt,
      };
      this.screens.set(socket.id, { clinic: identity.clinic, entry });
      // Written once: while the screen is connected, its node's heartbeat says it is alive.
      this.redis.hset(displaysKey(identity.clinic), socket.id, JSON.stringify(entry)).catch(() => (this.dirty = true));
      socket.on('disconnect', () => {
        this.screens.delete(socket.id);
        // Keep the screen's last sighting under its subject, so an unplugged TV still shows when it was last seen.
        this.redis
          .multi()
          .hdel(displaysKey(identity.clinic), socket.id)
          .hset(goneKey(identity.clinic), identity.sub, JSON.stringify({ ...entry, lastSeen: Date.now() }))
          .exec()
          .catch(() => (this.dirty = true));
      });
    });
    // Redis restarted or was unreachable: what it holds of this node's screens may be out of date.
    this.redis.on('ready', () => (this.dirty = true));
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

  /**
   * One small write per node: never one per screen (thousands of displays would each cost a write every beat).
   * After a failed write or an outage, one read and one write per clinic to put this node's screens right.
   */
  private async heartbeat(): Promise<void> {
    const clients = this.self.clients();
    const status: NodeStatus = {
      nodeId: this.self.nodeId,
      url: this.self.url(),
      server: this.self.server(),
      pid: process.pid,
      startedAt: this.startedAt,
      instance: this.instance,
      lastSeen: Date.now(),
      clients,
      rssBytes: process.memoryUsage.rss(),
    };
    await this.redis.hset(NODES_KEY, this.self.nodeId, JSON.stringify(status));
    if (this.dirty) await this.resync();
  }

  /** Redis's list of this node's screens made equal to the node's own. */
  private async resync(): Promise<void> {
    this.dirty = false;
    try {
      let added = 0;
      let removed = 0;
      for (const clinic of this.self.clinicIds) {
        const stored = await this.redis.hgetall(displaysKey(clinic));
        const multi = this.redis.multi();
        for (const [socketId, raw] of Object.entries(stored)) {
          const entry = parseEntry(raw);
          if (entry?.node !== this.self.nodeId || this.screens.has(socketId)) continue;
          // Left while Redis was away, or connected to an earlier run of this node.
          multi.hdel(displaysKey(clinic), socketId).hset(goneKey(clinic), entry.sub, JSON.stringify({ ...entry, lastSeen: Math.min(entry.lastSeen, Date.now()) }));
          removed++;
        }
        for (const [socketId, screen] of this.screens) {
          if (screen.clinic !== clinic || socketId in stored) continue;
          multi.hset(displaysKey(clinic), socketId, JSON.stringify(screen.entry));
          added++;
        }
        await multi.exec();
      }
      if (added + removed > 0) this.logger.info({ added, removed }, 'display registry put right from this node\'s own list');
    } catch (error) {
      this.dirty = true;
      throw error;
    }
  }
}

const goneKey = (clinic: string) => `${displaysKey(clinic)}:gone`;

function parseEntry(raw: string): DisplayEntry | null {
  try {
    return JSON.parse(raw) as DisplayEntry;
  } catch {
    return null;
  }
}

export async function listNodes(redis: RedisClient): Promise<(NodeStatus & { up: boolean })[]> {
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
 * Connected screens (online while their node's heartbeat is fresh and comes
 * from the instance they connected to; lastSeen is that heartbeat) and screens
 * that have left, newest first. Entries of a node that stopped heart-beating,
 * or that restarted since, are moved to the screens that left.
 */
export async function listDisplays(redis: RedisClient, clinic: string): Promise<DisplayPresence[]> {
  const [connected, gone, nodes] = await Promise.all([redis.hgetall(displaysKey(clinic)), redis.hgetall(goneKey(clinic)), redis.hgetall(NODES_KEY)]);
  const now = Date.now();
  const nodeStatus = new Map(
    Object.values(nodes).flatMap((raw) => {
      try {
        const node = JSON.parse(raw) as NodeStatus;
        return [[node.nodeId, node] as const];
      } catch {
        return [];
      }
    }),
  );
  const entries: DisplayEntry[] = [];
  const orphaned: DisplayEntry[] = [];
  for (const raw of Object.values(connected)) {
    const entry = parseEntry(raw);
    if (!entry) continue;
    const node = nodeStatus.get(entry.node);
    // Its node restarted: that connection ended with the old process.
    const sameRun = node !== undefined && (entry.instance === undefined || node.instance === undefined || node.instance === entry.instance);
    const lastSeen = sameRun ? Math.max(entry.lastSeen, node.lastSeen) : entry.lastSeen;
    if (!sameRun || now - lastSeen > 2 * STALE_AFTER_MS) orphaned.push({ ...entry, lastSeen: sameRun ? lastSeen : Math.max(entry.lastSeen, entry.connectedAt) });
    else entries.push({ ...entry, lastSeen });
  }
  if (orphaned.length > 0) {
    const multi = redis.multi().hdel(displaysKey(clinic), ...orphaned.map((d) => d.id));
    for (const d of orphaned) multi.hset(goneKey(clinic), d.sub, JSON.stringify(d));
    await multi.exec();
  }
  const online = entries.map((d) => ({ ...d, online: now - d.lastSeen <= DISPLAY_GONE_AFTER_MS }));
  const onlineSubs = new Set(online.filter((d) => d.online).map((d) => d.sub));
  const left = [...Object.values(gone).map(parseEntry), ...orphaned]
    .filter((d): d is DisplayEntry => d !== null && !onlineSubs.has(d.sub))
    .map((d) => ({ ...d, online: false }));
  // One line per screen that left (its latest sighting).
  const latestLeft = new Map<string, DisplayPresence>();
  for (const d of left) if ((latestLeft.get(d.sub)?.lastSeen ?? -1) < d.lastSeen) latestLeft.set(d.sub, d);
  return [...online, ...latestLeft.values()].sort((a, b) => b.lastSeen - a.lastSeen);
}
