import { io, type Socket } from 'socket.io-client';
import { QUEUE_NAMESPACE, QueueFollower, type QueueClientToServer, type QueueServerToClient, type SyncResult } from '@clinic-hub/protocol';

export type QueueSocket = Socket<QueueServerToClient, QueueClientToServer>;

/** A socket.io-client on the waiting-room namespace, connected (or rejected) before it returns. */
export async function connectQueue(
  url: string,
  token: string,
  options: { transports?: ('websocket' | 'polling')[]; clinic?: string; reconnection?: boolean } = {},
): Promise<QueueSocket> {
  const socket: QueueSocket = io(`${url}${QUEUE_NAMESPACE}`, {
    auth: { token, ...(options.clinic ? { clinic: options.clinic } : {}) },
    transports: options.transports ?? ['websocket'],
    reconnection: options.reconnection ?? false,
    forceNew: true,
    timeout: 5000,
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', (error) => reject(error));
  });
  return socket;
}

/** Emits with an ack and returns the ack (5 s timeout). */
export function request<E extends keyof QueueClientToServer>(
  socket: QueueSocket,
  event: E,
  payload: Parameters<QueueClientToServer[E]>[0],
): Promise<Parameters<Parameters<QueueClientToServer[E]>[1]>[0]> {
  return (socket.timeout(5000) as unknown as { emitWithAck(e: string, p: unknown): Promise<never> }).emitWithAck(event, payload);
}

/** A follower wired to a socket: live events plus queue:sync on every connect. */
export function followQueue(socket: QueueSocket): QueueFollower & { applied: number[] } {
  const applied: number[] = [];
  const follower = new QueueFollower({
    sync: async (afterSeq) => {
      const ack = await request(socket, 'queue:sync', afterSeq === null ? {} : { afterSeq });
      if (!ack.ok) throw new Error(ack.error.code);
      return ack as unknown as SyncResult;
    },
    onEvent: (event) => applied.push(event.seq),
  }) as QueueFollower & { applied: number[] };
  follower.applied = applied;
  socket.on('queue:event', (event) => follower.handleEvent(event));
  socket.on('connect', () => void follower.resync().catch(() => undefined));
  return follower;
}
