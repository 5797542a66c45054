import type { Redis } from 'ioredis';
import { connectionOfKey, isCluster, type RedisClient } from './cluster.js';

/**
 * How many replicas must hold a change before it is acknowledged, and how
 * long to wait for them (README, "Several hub nodes": the acknowledgement
 * guarantee). Replication is asynchronous: without this, a change the master
 * committed and the hub acknowledged can vanish when the master dies and a
 * replica that had not received it is promoted.
 */
export interface ReplicaAckPolicy {
  /** 0: acknowledge once the master has it (one Redis, where AOF with fsync always is the guarantee). */
  replicas: number;
  timeoutMs: number;
}

export interface ReplicaAckObserver {
  (outcome: { confirmed: boolean; replicas: number; seconds: number }): void;
}

/**
 * WAIT on the connection that made the writes: Redis answers once
 * `replicas` replicas have acknowledged every write this connection sent
 * before it (or the timeout passed, answering how many had). So the scripts
 * whose changes are acknowledged this way run on a connection of their own:
 * a WAIT that waits for a missing replica holds up only them.
 *
 * A replay (the change was made earlier, maybe through another connection or
 * hub node, maybe not yet replicated) first writes `fenceKey`: the
 * replication stream is in order, so a replica that has the fence has the
 * change before it.
 *
 * A connection that reconnected while confirming (the master died with the
 * WAIT in flight; ioredis sends it again, to the new master, where this
 * connection has written nothing yet and WAIT answers at once) confirms
 * nothing: the change may have been lost with the old master.
 *
 * On a Redis Cluster the wait is per shard: WAIT goes to the connection of
 * the master that owns the change's slot (`key`), the one the script went
 * through. When that master changed between the script and the wait (a
 * failover or a slot migration in between), the change is not confirmed:
 * the client is told STORE_UNAVAILABLE and retries with the same requestId,
 * which replays the change from wherever it now is, fenced.
 *
 * `written` does all of it for a change confirmed by a fence of its shard
 * (the shard before the write, the write, the fence, the wait); `confirm`
 * is the wait alone, for a change made on this very connection.
 */
export class ReplicaAck {
  /**
   * How many times the connection (one Redis or Sentinel) has become ready
   * again: a change while confirming is a reconnection. Its first ready is
   * not one: nothing was sent before it (commands wait offline), so a
   * change taken on a connection still opening is not lost by its opening.
   */
  private readies = 0;

  constructor(
    readonly connection: RedisClient,
    readonly policy: ReplicaAckPolicy,
    private readonly observe: ReplicaAckObserver = () => undefined,
  ) {
    if (!isCluster(connection)) {
      let opened = connection.status === 'ready';
      connection.on('ready', () => {
        if (opened) this.readies++;
        opened = true;
      });
    }
  }

  get enabled(): boolean {
    return this.policy.replicas > 0;
  }

  /**
   * Where the connection (one Redis or Sentinel) is in its reconnections:
   * given to `confirm` as `since`, a reconnection from then on confirms
   * nothing (writes made before it may be lost with the old master).
   */
  get readiness(): number {
    return this.readies;
  }

  /**
   * The connection a change to `key` goes through now: taken before the
   * change, handed to `confirm` as `ranOn`. A cluster connection that has
   * not read the slot map yet (just opened, or reconnecting) is waited for,
   * up to the policy's timeout.
   */
  async shardOf(key: string): Promise<Redis | null> {
    const shard = connectionOfKey(this.connection, key);
    if (shard || !isCluster(this.connection)) return shard;
    const cluster = this.connection;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, this.policy.timeoutMs);
      cluster.once('ready', done);
      function done() {
        clearTimeout(timer);
        cluster.off('ready', done);
        resolve();
      }
    });
    return connectionOfKey(cluster, key);
  }

  /**
   * Runs `write` (none: confirms writes made before, maybe by an earlier
   * attempt) and resolves true once the policy's replicas of `fenceKey`'s
   * shard hold it; true at once when the wait is off. False when not
   * confirmed in time, when the wait fails (the shard's master gone, the
   * slot moved), or when the connection reconnected since `since` (its
   * readiness before the write unless given): the caller retries, and the
   * retry writes again or finds the change and waits again. An error of
   * `write` itself is thrown. `writing` when the confirmation comes later
   * than the writes.
   */
  async written(fenceKey: string, write: () => Promise<unknown> = async () => undefined, since?: number): Promise<boolean> {
    const confirmed = await this.writing(fenceKey, since);
    await write();
    return confirmed();
  }

  /**
   * Takes, before a change, what confirms it afterwards: the function it
   * resolves to writes the fence (the change may have gone through another
   * connection, or been made earlier: the replica that has the fence has it)
   * and waits, resolving as `written` does. The shard is taken now, before
   * the change, so that a failover between the change and the fence (the
   * fence then on the new master, the change lost with the old one)
   * confirms nothing; likewise the readiness (`since`) on one Redis or
   * Sentinel.
   */
  async writing(fenceKey: string, since: number = this.readies): Promise<() => Promise<boolean>> {
    if (!this.enabled) return async () => true;
    const ranOn = await this.shardOf(fenceKey);
    return () => this.confirm({ key: fenceKey, ranOn, fenceKey, since }).catch(() => false);
  }

  /**
   * True once enough replicas have this connection's writes; always true
   * when the policy asks for none. `key` is a key of the change (any: they
   * share a slot; `fenceKey` serves when absent) and `ranOn` what
   * `shardOf(key)` said before it, both needed on a cluster.
   */
  async confirm(options: { key?: string; ranOn?: Redis | null; fenceKey?: string; since?: number } = {}): Promise<boolean> {
    if (!this.enabled) return true;
    const started = performance.now();
    const done = (confirmed: boolean, replicas: number) => {
      this.observe({ confirmed, replicas, seconds: (performance.now() - started) / 1000 });
      return confirmed;
    };
    if (!isCluster(this.connection)) {
      const readies = options.since ?? this.readies;
      if (options.fenceKey) await this.connection.incr(options.fenceKey);
      const replicas = await this.connection.wait(this.policy.replicas, this.policy.timeoutMs);
      if (this.readies !== readies) return done(false, 0);
      return done(replicas >= this.policy.replicas, replicas);
    }
    // The fence lies in the change's slot too: either names the shard.
    const key = options.key ?? options.fenceKey;
    if (!key) throw new Error('ReplicaAck.confirm on a Redis Cluster needs the key of the change (its shard)');
    const shard = connectionOfKey(this.connection, key);
    if (!shard || (options.ranOn !== undefined && options.ranOn !== shard)) return done(false, 0);
    try {
      // Straight to the shard's master, not through the cluster's routing: the fence must go where the WAIT goes.
      if (options.fenceKey) await shard.incr(options.fenceKey);
      const replicas = await shard.wait(this.policy.replicas, this.policy.timeoutMs);
      return done(replicas >= this.policy.replicas, replicas);
    } catch {
      // MOVED or ASK (the slot left this master), or the master is gone: not confirmed, the client retries.
      return done(false, 0);
    }
  }
}
