import type { Redis } from 'ioredis';

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
 */
export class ReplicaAck {
  constructor(
    readonly connection: Redis,
    readonly policy: ReplicaAckPolicy,
    private readonly observe: ReplicaAckObserver = () => undefined,
  ) {}

  get enabled(): boolean {
    return this.policy.replicas > 0;
  }

  /** True once enough replicas have this connection's writes; always true when the policy asks for none. */
  async confirm(options: { fenceKey?: string } = {}): Promise<boolean> {
    if (!this.enabled) return true;
    const started = performance.now();
    if (options.fenceKey) await this.connection.incr(options.fenceKey);
    const replicas = await this.connection.wait(this.policy.replicas, this.policy.timeoutMs);
    const confirmed = replicas >= this.policy.replicas;
    this.observe({ confirmed, replicas, seconds: (performance.now() - started) / 1000 });
    return confirmed;
  }
}
