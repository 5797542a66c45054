/** What every script shares about one run: its start, its id, waiting, and pairing a send with what it caused. */
import exec from 'k6/execution';
import { clearTimeout, setTimeout } from 'k6/timers';

/** What setup() hands every VU. */
export interface RunData {
  /** When setup ran (ms since the epoch): the scenarios' shared time origin. */
  t0: number;
  /** Unique per run: request and message ids start with it, so a run never replays an earlier run's actions. */
  runId: string;
}

export function newRun(): RunData {
  const t0 = Date.now();
  return { t0, runId: `k6${t0.toString(36)}${Math.floor(Math.random() * 36 ** 4).toString(36)}` };
}

/** A prefix for this VU's request ids (8–64 of A-Z a-z 0-9 _ - with a counter after it). */
export function idPrefix(run: RunData): string {
  return `${run.runId}-v${exec.vu.idInTest}-i${exec.vu.iterationInScenario}`;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => {
    if (ms <= 0) resolve();
    else setTimeout(resolve, ms);
  });
}

/**
 * Pairs the time something was sent with the arrivals it caused, in either
 * order (a broadcast can arrive before the ack that says what was sent), and
 * records each arrival's latency. Both times come from this VU's clock.
 */
export class Rendezvous<Key> {
  private readonly sentAt = new Map<Key, number>();
  private readonly early = new Map<Key, number[]>();
  private readonly arrivals = new Map<Key, number>();

  constructor(private readonly record: (latencyMs: number) => void) {}

  sent(key: Key, at: number): void {
    this.sentAt.set(key, at);
    for (const arrived of this.early.get(key) ?? []) this.record(arrived - at);
    this.early.delete(key);
  }

  arrived(key: Key, at: number): void {
    this.arrivals.set(key, (this.arrivals.get(key) ?? 0) + 1);
    const sent = this.sentAt.get(key);
    if (sent === undefined) {
      const list = this.early.get(key) ?? [];
      list.push(at);
      this.early.set(key, list);
    } else {
      this.record(at - sent);
    }
  }

  /** How many times `key` arrived. */
  arrivalsOf(key: Key): number {
    return this.arrivals.get(key) ?? 0;
  }

  /** Keys sent that have not arrived yet, with their send times. */
  pending(): [Key, number][] {
    return [...this.sentAt].filter(([key]) => !this.arrivals.has(key));
  }
}

/**
 * Something expected once (a push to one page), waited for with a deadline
 * whether it comes before the wait begins or after: a push can overtake the
 * ack of the request that caused it.
 */
export class Arrival<T> {
  private value: { got: T } | null = null;
  private waiter: ((value: T) => void) | null = null;

  /** Records the arrival; false when it had arrived already (a duplicate, not recorded). */
  arrive(value: T): boolean {
    if (this.value) return false;
    this.value = { got: value };
    this.waiter?.(value);
    return true;
  }

  /** The arrival, or null when it has not come `timeoutMs` from now. */
  wait(timeoutMs: number): Promise<T | null> {
    if (this.value) return Promise.resolve(this.value.got);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        resolve(null);
      }, timeoutMs);
      this.waiter = (value) => {
        clearTimeout(timer);
        this.waiter = null;
        resolve(value);
      };
    });
  }
}
