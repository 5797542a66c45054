/**
 * The media-server's signalling for k6: one `k6/websockets` WebSocket at
 * `<media url>/signal` speaking the plain JSON text frames of
 * protocol/src/media-signal.ts (no Engine.IO), as the consultation page does
 * (web/src/lib/media-client.ts). k6 cannot do WebRTC, so this client joins,
 * reads what the server sends and leaves; it never answers an offer.
 */
import { WebSocket, type ErrorEvent, type MessageEvent } from 'k6/websockets';
import { clearTimeout, setTimeout, type TimeoutID } from 'k6/timers';
import type { ClientSignal, MEDIA_SIGNAL_PATH, ServerSignal } from '../../../protocol/src/media-signal.ts';
import { arrivalTime } from './socket-io.ts';

// The protocol's value, checked against its type: media-signal.ts imports zod, which k6 cannot load.
const SIGNAL_PATH: typeof MEDIA_SIGNAL_PATH = '/signal';

export type ServerSignalOf<Type extends ServerSignal['type']> = Extract<ServerSignal, { type: Type }>;

export interface SignalArrival<Message> {
  message: Message;
  /** When its frame arrived (ms since the epoch, k6's clock). */
  receivedAt: number;
}

/** Why signalling failed; `code` is the media-server's error code, or CONNECT_TIMEOUT, WS_ERROR, CLOSED, TIMEOUT, FRAMING: short and fixed, for metric tags. */
export class MediaSignalError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

interface Waiter {
  type: ServerSignal['type'];
  resolve(arrival: SignalArrival<ServerSignal>): void;
  reject(error: MediaSignalError): void;
  timer: TimeoutID;
}

/** `ws(s)://host/signal` from the media-server's base URL in a room pass (`http(s)://host`). */
export function signalUrl(mediaUrl: string): string {
  return `${mediaUrl.replace(/\/$/, '').replace(/^http/, 'ws')}${SIGNAL_PATH}`;
}

export class MediaSignalSocket {
  private state: 'connecting' | 'open' | 'closed' = 'connecting';
  /** Messages nobody has waited for yet, in order. */
  private readonly inbox: SignalArrival<ServerSignal>[] = [];
  private waiter: Waiter | null = null;
  /** The first `error` from the server or the end of the connection: every wait from then on fails with it. */
  private failure: MediaSignalError | null = null;
  private readonly closeListeners: (() => void)[] = [];

  private constructor(private readonly ws: WebSocket) {}

  /** Opens the WebSocket; rejects with a MediaSignalError when it is refused, fails or takes too long. */
  static open(mediaUrl: string, options: { tags?: Record<string, string>; timeoutMs?: number } = {}): Promise<MediaSignalSocket> {
    return new Promise((resolve, reject) => {
      let ws: WebSocket;
      try {
        ws = new WebSocket(signalUrl(mediaUrl), null, { tags: options.tags ?? {} });
      } catch (error) {
        reject(new MediaSignalError('WS_ERROR', `cannot open ${signalUrl(mediaUrl)}: ${String(error)}`));
        return;
      }
      const socket = new MediaSignalSocket(ws);
      const timeoutMs = options.timeoutMs ?? 10_000;
      let settled = false;
      const settle = (error: MediaSignalError | null) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (error) reject(error);
        else resolve(socket);
      };
      const timer = setTimeout(() => {
        settle(new MediaSignalError('CONNECT_TIMEOUT', `${signalUrl(mediaUrl)} did not open within ${timeoutMs} ms`));
        socket.close();
      }, timeoutMs);
      ws.onopen = () => {
        if (settled) return;
        socket.state = 'open';
        settle(null);
      };
      ws.onmessage = (event?: MessageEvent) => {
        if (event) socket.receive(event);
      };
      ws.onerror = (event?: ErrorEvent) => {
        const error = new MediaSignalError('WS_ERROR', `websocket error: ${String(event?.error ?? 'unknown')}`);
        settle(error);
        socket.fail(error);
      };
      ws.onclose = () => {
        settle(new MediaSignalError('CLOSED', `${signalUrl(mediaUrl)} closed before it opened`));
        socket.closedBy();
      };
    });
  }

  get open(): boolean {
    return this.state === 'open';
  }

  send(message: ClientSignal): void {
    if (this.state === 'open') this.ws.send(JSON.stringify(message));
  }

  /**
   * The first message of `type` not taken yet (it may have come already);
   * rejects with the code of an `error` from the server, CLOSED when the
   * connection ends first, or TIMEOUT. One wait at a time.
   */
  next<Type extends ServerSignal['type']>(type: Type, timeoutMs: number): Promise<SignalArrival<ServerSignalOf<Type>>> {
    const index = this.inbox.findIndex((a) => a.message.type === type);
    if (index >= 0) return Promise.resolve(this.inbox.splice(index, 1)[0] as SignalArrival<ServerSignalOf<Type>>);
    if (this.failure) return Promise.reject(this.failure);
    if (this.waiter) return Promise.reject(new MediaSignalError('BUSY', `already waiting for ${this.waiter.type}`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(new MediaSignalError('TIMEOUT', `no ${type} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = { type, resolve: resolve as Waiter['resolve'], reject, timer };
    });
  }

  /**
   * Leaves the room as the page does (`leave`: the server acks and closes the
   * connection); true when the server closed it within `timeoutMs`, false
   * when this client had to.
   */
  leave(timeoutMs: number): Promise<boolean> {
    if (this.state === 'closed') return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.close();
        resolve(false);
      }, timeoutMs);
      this.closeListeners.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
      this.send({ type: 'leave', id: 'leave' });
    });
  }

  /** Closes the connection from this side; a wait in progress fails with CLOSED. */
  close(): void {
    if (this.state === 'closed') return;
    this.fail(new MediaSignalError('CLOSED', 'closed by the client'));
    this.ws.close();
  }

  private receive(event: MessageEvent): void {
    if (typeof event.data !== 'string') return;
    const receivedAt = arrivalTime(event);
    let message: ServerSignal;
    try {
      message = JSON.parse(event.data) as ServerSignal;
    } catch {
      this.fail(new MediaSignalError('FRAMING', 'a signalling frame that is not JSON'));
      this.ws.close();
      return;
    }
    if (message.type === 'error') {
      this.fail(new MediaSignalError(message.code, `${message.code}: ${message.message}${message.detail ? ` (${message.detail})` : ''}`));
      return;
    }
    const waiter = this.waiter;
    if (waiter && waiter.type === message.type) {
      this.waiter = null;
      clearTimeout(waiter.timer);
      waiter.resolve({ message, receivedAt });
      return;
    }
    this.inbox.push({ message, receivedAt });
  }

  private fail(error: MediaSignalError): void {
    if (!this.failure) this.failure = error;
    const waiter = this.waiter;
    if (!waiter) return;
    this.waiter = null;
    clearTimeout(waiter.timer);
    waiter.reject(this.failure);
  }

  private closedBy(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.fail(new MediaSignalError('CLOSED', 'the media-server closed the connection'));
    for (const listener of this.closeListeners.splice(0)) listener();
  }
}
