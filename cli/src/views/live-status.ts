import { CliError } from '../cli-error.js';
import { fetchStatus, type StatusReport } from '../commands/status.js';
import type { Connection } from '../connection.js';

/**
 * Hub nodes and Redis for `clinic status --watch`: /api/ops/status again
 * every few seconds (node heartbeats are themselves every 5 s). The queue
 * numbers of the followed clinic come from the event stream (LiveQueue).
 */
export class LiveStatus {
  report: StatusReport | null = null;
  problem: CliError | null = null;
  version = 0;
  private readonly listeners = new Set<() => void>();
  private timer: NodeJS.Timeout | null = null;
  private inFlight = false;

  constructor(
    private readonly connection: Connection,
    private readonly intervalMs: number,
  ) {}

  /** First fetch (its error is the command's error), then the refresh loop. */
  async start(): Promise<void> {
    this.report = await fetchStatus(this.connection);
    this.timer = setInterval(() => void this.refresh(), this.intervalMs);
  }

  async refresh(): Promise<void> {
    if (this.inFlight) return;
    this.inFlight = true;
    try {
      this.report = await fetchStatus(this.connection);
      this.problem = null;
    } catch (error) {
      this.problem = error instanceof CliError ? error : new CliError('INTERNAL', { message: String(error) });
    } finally {
      this.inFlight = false;
      this.version++;
      for (const listener of this.listeners) listener();
    }
  }

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  getVersion = (): number => this.version;

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.listeners.clear();
  }
}
