import { io, type Socket } from 'socket.io-client';
import { QUEUE_NAMESPACE, type Ack, type QueueClientToServer, type QueueServerToClient } from '@clinic-hub/protocol';
import { byId } from './dom.js';
import { connectionIndicator } from './page.js';
import { decodeToken, storeTokenInFragment } from './token.js';
import type { ChatSocket } from './chat-connection.js';
import type { ConsultSocket } from './consult-hub.js';

export type QueueSocket = Socket<QueueServerToClient, QueueClientToServer>;

/** What the hub answers to an event (its ack). */
export type AckOf<E extends keyof QueueClientToServer> = Parameters<Parameters<QueueClientToServer[E]>[1]>[0];
export type PayloadOf<E extends keyof QueueClientToServer> = Parameters<QueueClientToServer[E]>[0];

export type ConnectionState =
  | { kind: 'connecting' }
  | { kind: 'live' }
  | { kind: 'reconnecting' }
  /** The hub refused the token (expired, invalid, wrong clinic): retrying will not help. */
  | { kind: 'rejected'; code: string; message: string };

/**
 * Socket.IO on one namespace of the hub that served the page: WebSocket
 * first, long-polling if that fails, reconnecting by itself. `clinic` picks
 * the clinic for an admin token that is valid for all of them.
 */
export function openHubSocket<S extends Socket>(namespace: string, token: string, clinic?: string | null): S {
  return io(namespace, {
    auth: clinic ? { token, clinic } : { token },
    transports: ['websocket', 'polling'],
    tryAllTransports: true,
    reconnection: true,
    reconnectionDelay: 500,
    reconnectionDelayMax: 5000,
    timeout: 10_000,
  }) as S;
}

/** The waiting-room namespace. */
export function openQueueSocket(token: string, clinic?: string | null): QueueSocket {
  return openHubSocket<QueueSocket>(QUEUE_NAMESPACE, token, clinic);
}

/** Reports the connection's state, and reconnects after the hub closed the socket (a node draining for a restart). */
export function watchConnection(anySocket: QueueSocket | ChatSocket | ConsultSocket, onState: (state: ConnectionState) => void): void {
  // Every namespace's connection events are the same.
  const socket = anySocket as QueueSocket;
  let everConnected = false;
  socket.on('connect', () => {
    everConnected = true;
    onState({ kind: 'live' });
  });
  socket.on('disconnect', (reason) => {
    onState({ kind: 'reconnecting' });
    // The client does not reconnect by itself after a server-side disconnect; another node will take us.
    if (reason === 'io server disconnect') setTimeout(() => socket.connect(), 500 + Math.random() * 2000);
  });
  socket.on('connect_error', (error: Error & { data?: { code?: string; message?: string } }) => {
    if (!socket.active) {
      onState({ kind: 'rejected', code: error.data?.code ?? error.message, message: error.data?.message ?? '' });
      return;
    }
    onState({ kind: everConnected ? 'reconnecting' : 'connecting' });
  });
}

export class RequestTimeoutError extends Error {
  constructor(readonly event: string) {
    super(`no answer to ${event}`);
  }
}

/** Sends one event and resolves with the hub's ack; rejects with RequestTimeoutError when none comes in time. */
export function request<E extends keyof QueueClientToServer>(socket: QueueSocket, event: E, payload: PayloadOf<E>, timeoutMs = 5000): Promise<AckOf<E>> {
  // socket.io-client's types put the timeout error in the ack's place for emitWithAck; the callback form is typed by hand here.
  const timed = socket.timeout(timeoutMs) as unknown as { emit(event: string, payload: unknown, ack: (err: Error | null, reply: unknown) => void): void };
  return new Promise((resolve, reject) => {
    timed.emit(event, payload, (err, reply) => (err ? reject(new RequestTimeoutError(event)) : resolve(reply as AckOf<E>)));
  });
}

/** A fresh id for one action (the hub's RequestId: 8–64 of A-Z a-z 0-9 _ -). */
export function newRequestId(): string {
  return crypto.randomUUID().replaceAll('-', '');
}

type ActionEvent = 'queue:checkin' | 'queue:call-next' | 'queue:recall' | 'queue:start' | 'queue:skip' | 'queue:done' | 'queue:cancel';

/**
 * Sends a queue action with one requestId and, when the ack is lost, sends it
 * again with the same requestId: the hub then replays its first answer instead
 * of acting twice (no patient is called twice because a Wi-Fi hiccup ate an ack).
 */
export async function sendAction<E extends ActionEvent>(socket: QueueSocket, event: E, payload: Omit<PayloadOf<E>, 'requestId'>, attempts = 3): Promise<AckOf<E>> {
  const requestId = newRequestId();
  for (let attempt = 1; ; attempt++) {
    try {
      return await request(socket, event, { ...payload, requestId } as PayloadOf<E>);
    } catch (error) {
      if (attempt >= attempts || !(error instanceof RequestTimeoutError)) throw error;
    }
  }
}

/**
 * Display and patient tokens are short-lived: past half of its life, ask the
 * hub for a new one (`auth:refresh`), use it for every later reconnect and
 * keep it in the address for a reload (`storeToken`: where in the address).
 */
export function keepTokenFresh(anySocket: QueueSocket | ChatSocket | ConsultSocket, initialToken: string, storeToken: (token: string) => void = storeTokenInFragment): void {
  // Every namespace answers auth:refresh the same way.
  const socket = anySocket as QueueSocket;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const refreshIn = (delayMs: number) => {
    clearTimeout(timer);
    // setTimeout cannot wait longer than 2^31-1 ms.
    timer = setTimeout(() => void refresh(), Math.min(Math.max(0, delayMs), 2_000_000_000));
  };

  const refresh = async () => {
    if (!socket.connected) {
      socket.once('connect', () => void refresh());
      return;
    }
    let ack: Ack<{ token: string; expiresAt: number }>;
    try {
      ack = await request(socket, 'auth:refresh', {});
    } catch {
      refreshIn(15_000);
      return;
    }
    if (!ack.ok) {
      refreshIn(60_000);
      return;
    }
    socket.auth = { ...(socket.auth as Record<string, unknown>), token: ack.token };
    storeToken(ack.token);
    // Timed from now with the token's own lifetime, so a wrong clock on this computer cannot cause a refresh storm.
    const info = decodeToken(ack.token);
    if (info?.issuedAt != null && info.expiresAt != null) refreshIn(((info.expiresAt - info.issuedAt) / 2) * 1000);
  };

  const info = decodeToken(initialToken);
  if (info?.issuedAt != null && info.expiresAt != null) refreshIn(((info.issuedAt + info.expiresAt) / 2) * 1000 - Date.now());
}

/** The connection indicator in the page's #connection-slot, following `socket`; the page's token kept fresh on it. */
export function showConnection(socket: QueueSocket | ChatSocket, token: string): void {
  const indicator = connectionIndicator();
  byId('connection-slot').replaceChildren(indicator.element);
  watchConnection(socket, indicator.update);
  keepTokenFresh(socket, token);
}
