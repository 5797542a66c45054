import { Cluster, type ClusterOptions } from 'ioredis';

/**
 * One reader of a Redis Cluster's slot map per process, in place of
 * ioredis's own periodic re-read (`slotsRefreshInterval`) on every cluster
 * connection.
 *
 * Why: ioredis re-reads the map of each cluster connection on a timer, each
 * time over a new TCP connection, then walks all 16,384 slots twice, and a
 * connection with sharded subscribers also compares two JSON copies of the
 * whole map. A hub node holds more than a dozen cluster connections, all
 * opened at start-up, so their timers fire together: measured on an idle hub,
 * one burst of 115–200 ms of work every 5 s on a busy machine (20–70 ms of
 * stalled event loop on a quieter one), and on the queue benchmark a call →
 * display p99 over the 100 ms budget (README, "Scaling").
 *
 * Instead this reads CLUSTER SLOTS (a few hundred bytes) every
 * `SLOT_MAP_CHECK_MS` on a connection of its own, and tells a connection to
 * re-read the map only when the map it routes by differs from what the
 * cluster says. Redirections still make a connection re-read at once, as
 * before (MOVED, CLUSTERDOWN, a closed connection); what this catches is
 * what nothing redirects: a sharded subscriber whose slot moved to another
 * master (Redis drops the subscription, and ioredis subscribes again at the
 * new owner only when it re-reads the map), and a connection that routes a
 * WAIT by the map (`connectionOfKey`).
 */
export const SLOT_MAP_CHECK_MS = 5000;

const READER_TIMEOUT_MS = 2000;

export class SlotMapWatch {
  private readonly clusters = new Set<Cluster>();
  /** The map each connection was last found to route by, as the reply it matched (a connection that re-read its map is checked again). */
  private readonly matched = new WeakMap<Cluster, string>();
  private reader: Cluster | null = null;
  private timer: NodeJS.Timeout | null = null;
  private checking = false;

  constructor(
    private readonly startupNodes: ConstructorParameters<typeof Cluster>[0],
    /** How the reader connects (credentials, retries): the watched connections' own options. */
    private readonly readerOptions: ClusterOptions,
    /** Called once the last watched connection has ended (the watch has stopped). */
    private readonly onIdle: () => void = () => undefined,
  ) {}

  /** Watches `cluster` until it ends. */
  add(cluster: Cluster): void {
    this.clusters.add(cluster);
    cluster.on('refresh', () => this.matched.delete(cluster));
    cluster.once('end', () => this.remove(cluster));
    this.timer ??= setInterval(() => void this.check(), SLOT_MAP_CHECK_MS).unref();
  }

  /** Compares every watched connection's map with the cluster's now; resolves once the stale ones were told to re-read. */
  async check(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      this.reader ??= this.openReader();
      const reply = await this.reader.cluster('SLOTS');
      const key = JSON.stringify(reply);
      for (const cluster of this.clusters) {
        if (cluster.status !== 'ready' || this.matched.get(cluster) === key) continue;
        if (routesBy(cluster, reply)) this.matched.set(cluster, key);
        else cluster.refreshSlotsCache();
      }
    } catch {
      // The cluster does not answer: its connections reconnect, and re-read the map as they do, by themselves.
    } finally {
      this.checking = false;
    }
  }

  private remove(cluster: Cluster): void {
    this.clusters.delete(cluster);
    if (this.clusters.size > 0) return;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.reader?.disconnect();
    this.reader = null;
    this.onIdle();
  }

  private openReader(): Cluster {
    const reader = new Cluster(this.startupNodes, {
      ...this.readerOptions,
      // A node that takes the command and never answers must not stop the watch (`checking` would stay set).
      redisOptions: { ...this.readerOptions.redisOptions, connectionName: 'slot-map-watch', commandTimeout: READER_TIMEOUT_MS },
      shardedSubscribers: false,
      // The reader reads the map itself; it re-reads its own on redirections only, like the connections it watches.
      slotsRefreshInterval: 0,
    });
    reader.on('error', () => undefined);
    return reader;
  }
}

/** True when `cluster` sends every slot the reply names to that slot's master. */
function routesBy(cluster: Cluster, reply: Awaited<ReturnType<Cluster['cluster']>>): boolean {
  for (const [from, to, owner] of reply) {
    if (!owner) continue;
    const master = `${owner[0]}:${owner[1]}`;
    for (let slot = from; slot <= to; slot++) if (cluster.slots[slot]?.[0] !== master) return false;
  }
  return true;
}
