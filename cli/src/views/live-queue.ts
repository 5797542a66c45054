import { QueueFollower, type Announcement, type QueueEvent } from '@clinic-hub/protocol';
import { CliError, hubError } from '../cli-error.js';
import type { Connection } from '../connection.js';
import { callNextPatient, type CallResult } from '../consult-client.js';
import { queueView, type QueueView } from '../queue-model.js';
import { connectErrorOf, connectQueueSocket, emitterOf, sendAction, sendOnce, type QueueActionEvent, type QueueSocket } from '../queue-client.js';

export type LinkState = 'live' | 'reconnecting' | 'offline';

/** The resume rule's cheap safety net (docs/protocol.md): one queue:sync a minute. */
const SAFETY_SYNC_MS = 60_000;
/** Refresh the token this long before it expires (the hub checks it on every event). */
const REFRESH_BEFORE_EXPIRY_MS = 10 * 60_000;

/**
 * A clinic's queue kept live over one socket: QueueFollower applies every
 * event exactly once and fills gaps after reconnects; the live views render
 * from it and send their actions through it. No polling.
 */
export class LiveQueue {
  readonly follower: QueueFollower;
  link: LinkState = 'live';
  /** The latest problem worth showing (a failed sync, a hub:error, a refused reconnect). */
  problem: CliError | null = null;
  lastEvent: QueueEvent | null = null;
  announcement: Announcement | null = null;
  /** Bumped on every change: what React's useSyncExternalStore compares. */
  version = 0;

  private readonly listeners = new Set<() => void>();
  private cachedView: { version: number; view: QueueView | null } | null = null;
  private readonly timers: NodeJS.Timeout[] = [];
  private refreshTimer: NodeJS.Timeout | null = null;
  private closed = false;

  private constructor(
    readonly socket: QueueSocket,
    readonly connection: Connection,
  ) {
    const emit = emitterOf(socket);
    this.follower = new QueueFollower({
      sync: async (afterSeq) => sendOnce(emit, 'queue:sync', afterSeq === null ? {} : { afterSeq }),
      onEvent: (event) => {
        this.lastEvent = event;
      },
      onChange: () => this.changed(),
      onSyncError: (error) => {
        this.problem = error instanceof CliError ? error : new CliError('INTERNAL', { message: String(error) });
        this.changed();
      },
    });
    socket.on('queue:event', (event) => this.follower.handleEvent(event));
    socket.on('queue:clinic', (clinic) => this.follower.handleClinic(clinic));
    socket.on('queue:announcement', (announcement) => {
      this.announcement = announcement;
      this.changed();
    });
    socket.on('hub:error', (error) => {
      this.problem = hubError(error);
      this.changed();
    });
    socket.on('connect', () => {
      this.link = 'live';
      this.problem = null;
      this.changed();
      void this.follower.resync().catch(() => undefined);
    });
    socket.on('disconnect', () => {
      if (this.closed) return;
      this.link = 'reconnecting';
      this.changed();
    });
    socket.on('connect_error', (error) => {
      this.problem = connectErrorOf(error, connection);
      // A refusal by the hub (bad or expired token) is final; a network failure is retried by socket.io.
      if (!socket.active) this.link = 'offline';
      this.changed();
    });
    const safety = setInterval(() => {
      if (socket.connected) void this.follower.resync().catch(() => undefined);
    }, SAFETY_SYNC_MS);
    safety.unref();
    this.timers.push(safety);
    this.scheduleRefresh(connection.tokenInfo?.expiresAt ?? 0);
  }

  /** Connects and takes the first snapshot; a refusal or an unreachable hub rejects with its CliError. */
  static async connect(connection: Connection): Promise<LiveQueue> {
    const socket = await connectQueueSocket(connection);
    const live = new LiveQueue(socket, connection);
    try {
      await live.follower.resync();
    } catch (error) {
      live.close();
      throw error;
    }
    return live;
  }

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  getVersion = (): number => this.version;

  view(): QueueView | null {
    if (this.cachedView?.version !== this.version) this.cachedView = { version: this.version, view: queueView(this.follower) };
    return this.cachedView.view;
  }

  /** Calls the next patient to the room; in an online department, admits them to video (callNextPatient). */
  async callNext(dept: string, room: string): Promise<CallResult> {
    const result = await callNextPatient(emitterOf(this.socket), this.connection, dept, room);
    // The ack can come before the live event: apply it now so the screen never lags behind the key press.
    this.follower.handleEvent(result.kind === 'called' ? result.event : result.admission.event);
    return result;
  }

  ticketAction(action: 'recall' | 'start' | 'skip' | 'done' | 'cancel', ticketId: string): Promise<QueueEvent> {
    return this.act(`queue:${action}`, { ticketId });
  }

  close(): void {
    this.closed = true;
    for (const timer of this.timers) clearInterval(timer);
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.socket.close();
    this.listeners.clear();
  }

  private async act(event: QueueActionEvent, payload: Record<string, string>): Promise<QueueEvent> {
    const ack = await sendAction(emitterOf(this.socket), event, payload as never);
    // The ack can come before the live event: apply it now so the screen never lags behind the key press.
    this.follower.handleEvent(ack.event);
    return ack.event;
  }

  private scheduleRefresh(expiresAt: number): void {
    if (!expiresAt || this.closed) return;
    const delay = Math.max(5_000, expiresAt - Date.now() - REFRESH_BEFORE_EXPIRY_MS);
    if (delay > 2 ** 31 - 1) return;
    this.refreshTimer = setTimeout(() => {
      sendOnce(emitterOf(this.socket), 'auth:refresh', {}).then(
        ({ token, expiresAt: next }) => {
          // Reconnects must present the fresh token.
          (this.socket.auth as { token: string }).token = token;
          this.scheduleRefresh(next);
        },
        (error: unknown) => {
          this.problem = error instanceof CliError ? error : null;
          this.changed();
          this.scheduleRefresh(Date.now() + REFRESH_BEFORE_EXPIRY_MS + 30_000);
        },
      );
    }, delay);
    this.refreshTimer.unref();
  }

  private changed(): void {
    this.version++;
    for (const listener of this.listeners) listener();
  }
}
