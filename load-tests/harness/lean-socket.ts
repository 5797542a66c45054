import WebSocket from 'ws';
import { PONG, connectFrame, decodeFrame, eventFrame, websocketUrl, type Frame } from './engine-io.js';

/**
 * A Socket.IO client in a few lines: one WebSocket speaking Engine.IO v4 +
 * Socket.IO v5 to one namespace, with acks. No reconnection, no polling,
 * no buffering: what the benchmark needs and nothing it would measure.
 */
export class LeanSocket {
  private nextAckId = 0;
  private readonly pendingAcks = new Map<number, { resolve: (args: unknown[]) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private readonly listeners = new Map<string, ((...args: unknown[]) => void)[]>();
  private closed = false;

  private constructor(
    private readonly ws: WebSocket,
    readonly nsp: string,
  ) {}

  /** Opens the WebSocket and joins `nsp` with `auth`; rejects on a refused connect or after `timeoutMs`. */
  static connect(httpBase: string, nsp: string, auth: object, timeoutMs = 10_000): Promise<LeanSocket> {
    const ws = new WebSocket(websocketUrl(httpBase), { perMessageDeflate: false });
    const socket = new LeanSocket(ws, nsp);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error(`connect to ${httpBase}${nsp} timed out`)), timeoutMs);
      let joined = false;
      const fail = (error: Error) => {
        clearTimeout(timer);
        socket.close();
        reject(error);
      };
      ws.on('error', (error) => (joined ? socket.shutdown(error) : fail(error)));
      ws.on('close', () => (joined ? socket.shutdown(new Error('connection closed')) : fail(new Error('connection closed before connect'))));
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        if (isBinary) return;
        let frame: Frame;
        try {
          frame = decodeFrame(data.toString());
        } catch (error) {
          return joined ? socket.emitLocal('framing_error', error) : fail(error as Error);
        }
        switch (frame.kind) {
          case 'open':
            ws.send(connectFrame(nsp, auth));
            return;
          case 'ping':
            ws.send(PONG);
            return;
          case 'connect':
            if (frame.nsp === nsp && !joined) {
              joined = true;
              clearTimeout(timer);
              resolve(socket);
            }
            return;
          case 'connect_error':
            return fail(new Error(`connect refused: ${JSON.stringify(frame.data)}`));
          case 'ack':
            return socket.settleAck(frame.id, frame.args);
          case 'event':
            return socket.emitLocal(frame.name, ...frame.args);
          case 'disconnect':
          case 'close':
            return socket.shutdown(new Error('disconnected by the server'));
          default:
            return;
        }
      });
    });
  }

  on(event: string, listener: (...args: unknown[]) => void): this {
    const list = this.listeners.get(event) ?? [];
    list.push(listener);
    this.listeners.set(event, list);
    return this;
  }

  /** Sends an event and resolves with the first ack argument. */
  emitWithAck<T = unknown>(event: string, payload: unknown, timeoutMs = 10_000): Promise<T> {
    if (this.closed) return Promise.reject(new Error('socket closed'));
    const id = this.nextAckId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pendingAcks.delete(id);
        reject(new Error(`no ack for ${event} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pendingAcks.set(id, { resolve: (args) => resolve(args[0] as T), reject, timer });
      this.ws.send(eventFrame(this.nsp, event, [payload], id));
    });
  }

  close(): void {
    this.shutdown(new Error('socket closed'));
    this.ws.terminate();
  }

  private settleAck(id: number, args: unknown[]): void {
    const pending = this.pendingAcks.get(id);
    if (!pending) return;
    this.pendingAcks.delete(id);
    clearTimeout(pending.timer);
    pending.resolve(args);
  }

  private emitLocal(event: string, ...args: unknown[]): void {
    for (const listener of this.listeners.get(event) ?? []) listener(...args);
  }

  private shutdown(error: Error): void {
    if (this.closed) return;
    this.closed = true;
    for (const pending of this.pendingAcks.values()) {
      clearTimeout(pending.timer);
      pending.reject(error);
    }
    this.pendingAcks.clear();
    this.emitLocal('disconnect', error.message);
  }
}
