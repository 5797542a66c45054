/**
 * Where a hub node is in its shutdown, and the client actions it is still
 * working on. `serving` → `draining` (not ready: no new connections, the
 * connected clients are told to move, their actions still run) → `closing`
 * (new actions are refused with HUB_DRAINING, the ones in flight finish and
 * are acknowledged, then the connections close).
 */
export type DrainPhase = 'serving' | 'draining' | 'closing';

export class DrainState {
  private current: DrainPhase = 'serving';
  private active = 0;
  private idleWaiters: (() => void)[] = [];

  get phase(): DrainPhase {
    return this.current;
  }

  /** New connections (Engine.IO handshakes) are accepted only while serving. */
  get acceptsConnections(): boolean {
    return this.current === 'serving';
  }

  /** Client actions are taken until the node starts closing. */
  get acceptsActions(): boolean {
    return this.current !== 'closing';
  }

  /** Moves forward only: draining after closing changes nothing. */
  enter(phase: Exclude<DrainPhase, 'serving'>): void {
    if (phase === 'draining' && this.current === 'serving') this.current = 'draining';
    if (phase === 'closing') this.current = 'closing';
  }

  /** Marks one action as started; call the function it returns once its ack is sent. */
  begin(): () => void {
    this.active += 1;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.active -= 1;
      if (this.active === 0) for (const wake of this.idleWaiters.splice(0)) wake();
    };
  }

  get inFlight(): number {
    return this.active;
  }

  /**
   * Resolves true once no action is in flight, false if some still are after
   * `timeoutMs`. Waits a turn of the event loop first: an event let through
   * just before closing reaches its handler on the next tick.
   */
  async settled(timeoutMs: number): Promise<boolean> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (this.active === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    const idle = new Promise<true>((resolve) => this.idleWaiters.push(() => resolve(true)));
    const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    const result = await Promise.race([idle, timeout]);
    clearTimeout(timer);
    return result;
  }
}
