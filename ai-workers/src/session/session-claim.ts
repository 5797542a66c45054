import { randomUUID } from 'node:crypto';
import type { RedisClient } from '@clinic-hub/platform/redis';
import { evalScript, loadScript, type LoadedScript } from '@clinic-hub/platform/redis-scripts';

const CLAIM_SESSION = loadScript(new URL('./scripts/', import.meta.url), 'claim-session');

/**
 * Why a run may no longer write its session. `superseded`: its claim is
 * another run's, or was lost in a failover. `rewound`: its claim holds, but
 * the session's state has not had the saves the run made (a failover of the
 * clinic's shard lost the last of them: replication is async); the finals
 * among them reached clinicians and are gone from the stored transcript.
 */
export type ClaimLost = 'superseded' | 'rewound';

/**
 * One run's claim on a live AI session, and the one way its writes reach
 * the session's state: each write (progress save, utterance commit, the end)
 * checks that the claim holds and that the state has had exactly the saves
 * this run counts, then counts one more (scripts/session-write.lua). So a
 * run whose last writes a failover lost finds out at its next write, writes
 * nothing on past the gap, and is claimed again from what the shard kept
 * (the worker does this while it holds the job's lock), redoing the finals
 * that were lost. On Sentinel the job's lock goes with the same master, so
 * another run takes the session over; on a Redis Cluster the jobs queue's
 * shard may not have failed over, and without the count the same run went
 * on past the gap.
 *
 * Writes go one at a time, in the order asked: each must know the count
 * the one before it left. A write whose reply was lost (Redis went away)
 * leaves the count unknown; the next write then finds the state one ahead
 * and the run is claimed again: nothing lost, a little audio read again.
 */
export class SessionClaim {
  readonly owner = randomUUID();
  /** The saves the session's state has had, as far as this run knows (all of them its own since it claimed). */
  private saves = 0;
  private lost: ClaimLost | null = null;
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly redis: RedisClient,
    private readonly stateKey: string,
  ) {}

  /** Why this run may no longer write, once a write or a check has found it. */
  get lostBecause(): ClaimLost | null {
    return this.lost;
  }

  /**
   * Makes this run the session's owner and returns the state as of that
   * moment (HGETALL), in one step (claim-session.lua); a finished session is
   * not claimed. The run counts the saves from there.
   */
  async claim(): Promise<Record<string, string>> {
    const flat = await evalScript<string[]>(this.redis, CLAIM_SESSION, [this.stateKey], [this.owner]);
    const state: Record<string, string> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) state[flat[i]!] = flat[i + 1]!;
    this.saves = Number(state.saves ?? 0);
    return state;
  }

  /**
   * Runs a write script (its KEYS[1] the session's state; its ARGV starting
   * with the owner and the saves counted, then `args`) after this run's
   * writes asked for before it. True when written; false, nothing written,
   * once the claim is lost (`lostBecause` says why). Rejects when Redis does
   * (then whether it was written is not known; the next write finds out).
   */
  write(script: LoadedScript, keys: readonly string[], args: readonly string[]): Promise<boolean> {
    const written = this.tail.then(async () => {
      if (this.lost) return false;
      const reply = await evalScript<number>(this.redis, script, keys, [this.owner, String(this.saves), ...args]);
      if (reply === 1) {
        this.saves++;
        return true;
      }
      this.lost ??= reply === -1 ? 'rewound' : 'superseded';
      return false;
    });
    this.tail = written.catch(() => undefined);
    return written;
  }

  /**
   * What a read of the state's `owner` and `saves` (sent after this run's
   * writes it has heard back from) says of the claim: lost when another run
   * owns the session, or the state has fewer saves than this run was told
   * it made (a failover lost them, found before the next write).
   */
  check(owner: string | null, saves: string | null): ClaimLost | null {
    if (!this.lost) {
      if (owner !== this.owner) this.lost = 'superseded';
      else if (Number(saves ?? 0) < this.saves) this.lost = 'rewound';
    }
    return this.lost;
  }
}
