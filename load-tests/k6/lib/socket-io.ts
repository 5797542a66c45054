/**
 * A Socket.IO client for k6: one `k6/websockets` WebSocket speaking
 * Engine.IO v4 + Socket.IO v5 to one namespace, with acks, typed by the
 * protocol's event maps (QueueClientToServer, ChatServerToClient …), so an
 * event name or payload the hub does not take is a compile error.
 *
 * The framing is load-tests/harness/engine-io.ts, the same code the Node
 * harness uses and its tests check. No reconnection, no long-polling, no
 * buffering: a load test must see a failure, not hide it.
 *
 * Why k6/websockets and not k6/ws: k6/ws blocks its VU inside `connect()`
 * until the socket closes, so a VU holds one connection; k6/websockets is
 * the browser WebSocket API on k6's global event loop, so one VU holds the
 * staff socket and its probe displays, a patient and a clinician, or a
 * hundred patients' notification sockets, with timers and promises between
 * them.
 */
import { WebSocket, type ErrorEvent, type MessageEvent } from 'k6/websockets';
import { clearTimeout, setTimeout, type TimeoutID } from 'k6/timers';
import { PONG, connectFrame, decodeFrame, eventFrame, websocketUrl, type Frame } from '../../harness/engine-io.ts';

// Handler parameters are contravariant: `any` lets every protocol handler type satisfy the constraint.
type Handler = (...args: any[]) => void;
/** An event map as the protocol declares one: event name → handler signature. */
export type EventMap<Events> = { [Event in keyof Events]: Handler };

/** The payload a client→server event takes. */
export type PayloadOf<H> = H extends (payload: infer Payload, ...rest: never[]) => void ? Payload : never;
/** What the hub acks a client→server event with. */
export type AckOf<H> = H extends (payload: never, ack: (ack: infer Answer) => void) => void ? Answer : never;
/** A listener for a server→client event: the event's arguments, then when its frame arrived (ms since the epoch). */
export type ListenerOf<H> = H extends (...args: infer Args) => void ? (...args: [...Args, receivedAt: number]) => void : never;

export interface Acked<Answer> {
  ack: Answer;
  /** When the ack's frame arrived (ms since the epoch, k6's clock). */
  receivedAt: number;
}

/** Why a connection or a request failed; `code` is short and fixed, for metric tags. */
export class SocketIoError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface ConnectOptions {
  /** The hub's base URL, http(s)://host[:port]. */
  url: string;
  nsp: string;
  /** The handshake auth the hub reads: `{ token, clinic? }`. */
  auth: { token: string; clinic?: string };
  /** Tags on k6's built-in ws_* metrics of this connection. */
  tags?: Record<string, string>;
  timeoutMs?: number;
}

interface PendingAck {
  resolve(args: unknown[], receivedAt: number): void;
  reject(error: SocketIoError): void;
  timer: TimeoutID;
}

/** A frame that arrived more than this far from k6's JS clock did not get a wall-clock timestamp: use the JS clock. */
const TIMESTAMP_SANITY_MS = 60_000;

/**
 * When a WebSocket message arrived (ms since the epoch): k6 stamps each
 * frame when it is read off the connection, and the JS handler may run
 * later on a busy VU.
 */
export function arrivalTime(event: MessageEvent): number {
  const now = Date.now();
  return typeof event.timestamp === 'number' && Math.abs(event.timestamp - now) < TIMESTAMP_SANITY_MS ? event.timestamp : now;
}

export class SocketIoClient<Listen extends EventMap<Listen>, Emit extends EventMap<Emit>> {
  private state: 'connecting' | 'connected' | 'closed' = 'connecting';
  private nextAckId = 0;
  private readonly pendingAcks = new Map<number, PendingAck>();
  private readonly listeners = new Map<string, Handler[]>();
  private readonly disconnectListeners: ((error: SocketIoError) => void)[] = [];
  private settleConnect: ((error: SocketIoError | null) => void) | null = null;

  private constructor(
    private readonly ws: WebSocket,
    readonly nsp: string,
    private readonly auth: object,
  ) {}

  /** Opens the WebSocket and joins the namespace; rejects with a SocketIoError when refused, closed or too slow. */
  static connect<Listen extends EventMap<Listen>, Emit extends EventMap<Emit>>(options: ConnectOptions): Promise<SocketIoClient<Listen, Emit>> {
    return new Promise((resolve, reject) => {
      let ws: WebSocket;
      try {
        ws = new WebSocket(websocketUrl(options.url), null, { tags: options.tags ?? {} });
      } catch (error) {
        reject(new SocketIoError('WS_ERROR', `cannot open ${options.url}: ${String(error)}`));
        return;
      }
      const socket = new SocketIoClient<Listen, Emit>(ws, options.nsp, options.auth);
      const timeoutMs = options.timeoutMs ?? 10_000;
      const timer = setTimeout(() => {
        socket.shutdown(new SocketIoError('CONNECT_TIMEOUT', `no connect to ${options.nsp} within ${timeoutMs} ms`));
        ws.close();
      }, timeoutMs);
      socket.settleConnect = (error) => {
        clearTimeout(timer);
        socket.settleConnect = null;
        if (error) reject(error);
        else resolve(socket);
      };
      ws.onmessage = (event?: MessageEvent) => {
        if (event) socket.receive(event);
      };
      ws.onerror = (event?: ErrorEvent) => socket.shutdown(new SocketIoError('WS_ERROR', `websocket error: ${String(event?.error ?? 'unknown')}`));
      ws.onclose = () => socket.shutdown(new SocketIoError('CLOSED', 'the connection closed'));
    });
  }

  get connected(): boolean {
    return this.state === 'connected';
  }

  on<Event extends keyof Listen & string>(event: Event, listener: ListenerOf<Listen[Event]>): this {
    const list = this.listeners.get(event) ?? [];
    list.push(listener);
    this.listeners.set(event, list);
    return this;
  }

  /** Called once when a connected socket is lost (not after close()). */
  onDisconnect(listener: (error: SocketIoError) => void): this {
    this.disconnectListeners.push(listener);
    return this;
  }

  /** Sends an event and resolves with its ack; rejects with ACK_TIMEOUT, or CLOSED when the connection goes first. */
  request<Event extends keyof Emit & string>(event: Event, payload: PayloadOf<Emit[Event]>, timeoutMs = 10_000): Promise<Acked<AckOf<Emit[Event]>>> {
    if (this.state !== 'connected') return Promise.reject(new SocketIoError('NOT_CONNECTED', `${event} on a socket that is not connected`));
    const id = this.nextAckId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pendingAcks.delete(id);
        reject(new SocketIoError('ACK_TIMEOUT', `no ack for ${event} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pendingAcks.set(id, { resolve: (args, receivedAt) => resolve({ ack: args[0] as AckOf<Emit[Event]>, receivedAt }), reject, timer });
      this.ws.send(eventFrame(this.nsp, event, [payload], id));
    });
  }

  /** Closes the connection; requests still waiting for an ack are rejected with CLOSED. */
  close(): void {
    if (this.state === 'closed') return;
    this.disconnectListeners.length = 0;
    this.shutdown(new SocketIoError('CLOSED', 'closed by the client'));
    this.ws.close();
  }

  private receive(event: MessageEvent): void {
    if (typeof event.data !== 'string') return;
    const receivedAt = arrivalTime(event);
    let frame: Frame;
    try {
      frame = decodeFrame(event.data);
    } catch (error) {
      this.shutdown(new SocketIoError('FRAMING', String(error)));
      this.ws.close();
      return;
    }
    switch (frame.kind) {
      case 'open':
        this.ws.send(connectFrame(this.nsp, this.auth));
        return;
      case 'ping':
        this.ws.send(PONG);
        return;
      case 'connect':
        if (frame.nsp === this.nsp && this.state === 'connecting') {
          this.state = 'connected';
          this.settleConnect?.(null);
        }
        return;
      case 'connect_error':
        this.shutdown(new SocketIoError(refusalCode(frame.data), `connect to ${this.nsp} refused: ${JSON.stringify(frame.data)}`));
        this.ws.close();
        return;
      case 'ack':
        this.settleAck(frame.id, frame.args, receivedAt);
        return;
      case 'event':
        if (frame.nsp === this.nsp) for (const listener of this.listeners.get(frame.name) ?? []) listener(...frame.args, receivedAt);
        return;
      case 'disconnect':
        if (frame.nsp !== this.nsp) return;
        this.shutdown(new SocketIoError('SERVER_DISCONNECT', `the hub disconnected the socket from ${this.nsp}`));
        this.ws.close();
        return;
      case 'close':
        this.shutdown(new SocketIoError('SERVER_CLOSE', 'the hub closed the connection'));
        this.ws.close();
        return;
      default:
        return;
    }
  }

  private settleAck(id: number, args: unknown[], receivedAt: number): void {
    const pending = this.pendingAcks.get(id);
    if (!pending) return;
    this.pendingAcks.delete(id);
    clearTimeout(pending.timer);
    pending.resolve(args, receivedAt);
  }

  private shutdown(error: SocketIoError): void {
    if (this.state === 'closed') return;
    const wasConnected = this.state === 'connected';
    this.state = 'closed';
    for (const pending of this.pendingAcks.values()) {
      clearTimeout(pending.timer);
      pending.reject(error);
    }
    this.pendingAcks.clear();
    if (this.settleConnect) this.settleConnect(error);
    else if (wasConnected) for (const listener of this.disconnectListeners) listener(error);
  }
}

/** The hub refuses a connect with `{ message, data: { code, message } }`: its error code, for a metric tag. */
function refusalCode(data: unknown): string {
  const details = data as { message?: unknown; data?: { code?: unknown } } | null;
  const code = details?.data?.code ?? details?.message;
  return typeof code === 'string' && /^[A-Z_]{1,40}$/.test(code) ? code : 'CONNECT_REFUSED';
}
