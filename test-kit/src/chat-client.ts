import type { Socket } from 'socket.io-client';
import {
  CHAT_NAMESPACE,
  ChatFollower,
  type ChatClientToServer,
  type ChatMessage,
  type ChatReceipt,
  type ChatServerToClient,
  type ChatTyping,
  type StaffPresence,
  type ChatActivity,
  type ChatThread,
} from '@clinic-hub/protocol';
import { connectNamespace, namespaceConnectError, type ConnectOptions } from './queue-client.js';

export type ChatSocket = Socket<ChatServerToClient, ChatClientToServer>;

/** A socket.io-client on the chat namespace, connected (or rejected) before it returns. */
export function connectChat(url: string, token: string | undefined, options: ConnectOptions = {}): Promise<ChatSocket> {
  return connectNamespace<ChatSocket>(url, CHAT_NAMESPACE, token, options);
}

/** The `data` of a refused chat connection: the hub's error object. */
export function chatConnectError(url: string, token: string | undefined, options: ConnectOptions = {}): Promise<{ code: string; message: string; detail?: string }> {
  return namespaceConnectError(url, CHAT_NAMESPACE, token, options);
}

export type ChatAck<E extends keyof ChatClientToServer> = Parameters<Parameters<ChatClientToServer[E]>[1]>[0];

/** Emits a chat event with an ack and returns the ack (5 s timeout). */
export function chatRequest<E extends keyof ChatClientToServer>(
  socket: ChatSocket,
  event: E,
  payload: Parameters<ChatClientToServer[E]>[0],
  timeoutMs = 5000,
): Promise<ChatAck<E>> {
  return (socket.timeout(timeoutMs) as unknown as { emitWithAck(e: string, p: unknown): Promise<never> }).emitWithAck(event, payload);
}

/** Emits any event with any arguments and returns the ack. */
export function chatRequestRaw(socket: ChatSocket, event: string, ...args: unknown[]): Promise<{ ok: boolean; error?: { code: string; detail?: string } }> {
  return (socket.timeout(5000) as unknown as { emitWithAck(e: string, ...a: unknown[]): Promise<never> }).emitWithAck(event, ...args);
}

/** Everything chat that arrives on a socket, as it arrives (duplicates included). */
export function recordChat(socket: ChatSocket): {
  messages: ChatMessage[];
  receipts: ChatReceipt[];
  typing: ChatTyping[];
  presence: StaffPresence[];
  threads: ChatThread[];
  activity: ChatActivity[];
  removed: string[];
  errors: { code: string; event?: string }[];
} {
  const got = {
    messages: [] as ChatMessage[],
    receipts: [] as ChatReceipt[],
    typing: [] as ChatTyping[],
    presence: [] as StaffPresence[],
    threads: [] as ChatThread[],
    activity: [] as ChatActivity[],
    removed: [] as string[],
    errors: [] as { code: string; event?: string }[],
  };
  socket.on('chat:message', (m) => got.messages.push(m));
  socket.on('chat:receipt', (r) => got.receipts.push(r));
  socket.on('chat:typing', (t) => got.typing.push(t));
  socket.on('chat:presence', (p) => got.presence.push(p));
  socket.on('chat:thread', (t) => got.threads.push(t));
  socket.on('chat:activity', (a) => got.activity.push(a));
  socket.on('chat:thread-removed', (r) => got.removed.push(r.threadId));
  socket.on('hub:error', (e) => got.errors.push(e));
  return got;
}

/** A ChatFollower on one thread, wired to a socket: live messages plus a join on every connect; `resets` counts its starts over. */
export function followThread(socket: ChatSocket, threadId: string): ChatFollower & { applied: number[]; resets: number } {
  const applied: number[] = [];
  const follower = new ChatFollower({
    join: async (afterId, afterAt) => {
      const ack = await chatRequest(socket, 'chat:join', afterId === null ? { threadId } : { threadId, afterId, ...(afterAt !== undefined && { afterAt }) });
      if (!ack.ok) throw new Error(`${ack.error.code}: ${ack.error.detail ?? ack.error.message}`);
      return ack;
    },
    history: async (query) => {
      const ack = await chatRequest(socket, 'chat:history', { threadId, ...query });
      if (!ack.ok) throw new Error(`${ack.error.code}: ${ack.error.detail ?? ack.error.message}`);
      return ack;
    },
    onMessage: (message) => applied.push(message.seq),
    onReset: () => follower.resets++,
  }) as ChatFollower & { applied: number[]; resets: number };
  follower.applied = applied;
  follower.resets = 0;
  socket.on('chat:message', (message) => {
    if (message.threadId === threadId) follower.handleMessage(message);
  });
  socket.on('chat:receipt', (receipt) => follower.handleReceipt(receipt));
  socket.on('connect', () => void follower.resync().catch(() => undefined));
  return follower;
}

let counter = 0;
/** A fresh clientMessageId. */
export function newClientMessageId(tag = 'm'): string {
  return `${tag}-${process.pid}-${Date.now().toString(36)}-${(counter++).toString(36)}`.replace(/[^A-Za-z0-9_-]/g, '').slice(0, 64).padEnd(8, '0');
}
