import type { Socket } from 'socket.io-client';
import { CHAT_ATTACHMENTS_PATH, CHAT_NAMESPACE, protocolError, type ChatAttachment, type ChatClientToServer, type ChatServerToClient, type ProtocolError } from '@clinic-hub/protocol';
import { RequestTimeoutError, openHubSocket } from './connection.js';

export type ChatSocket = Socket<ChatServerToClient, ChatClientToServer>;
export type ChatAckOf<E extends keyof ChatClientToServer> = Parameters<Parameters<ChatClientToServer[E]>[1]>[0];
export type ChatPayloadOf<E extends keyof ChatClientToServer> = Parameters<ChatClientToServer[E]>[0];

/** Socket.IO on the chat namespace of the hub that served the page. */
export function openChatSocket(token: string, clinic?: string | null): ChatSocket {
  return openHubSocket<ChatSocket>(CHAT_NAMESPACE, token, clinic);
}

/** Sends one chat event and resolves with the hub's ack; rejects with RequestTimeoutError when none comes in time. */
export function chatRequest<E extends keyof ChatClientToServer>(socket: ChatSocket, event: E, payload: ChatPayloadOf<E>, timeoutMs = 5000): Promise<ChatAckOf<E>> {
  const timed = socket.timeout(timeoutMs) as unknown as { emit(event: string, payload: unknown, ack: (err: Error | null, reply: unknown) => void): void };
  return new Promise((resolve, reject) => {
    timed.emit(event, payload, (err, reply) => (err ? reject(new RequestTimeoutError(event)) : resolve(reply as ChatAckOf<E>)));
  });
}

/** A fresh clientMessageId (8–64 of A-Z a-z 0-9 _ -). */
export function newClientMessageId(): string {
  return crypto.randomUUID().replaceAll('-', '');
}

/**
 * Sends a message and, when the ack is lost, sends it again with the same
 * clientMessageId: the hub stores it once and answers the resend with the
 * same id. Waits for the connection when it is down.
 */
export async function sendChatMessage(socket: ChatSocket, payload: ChatPayloadOf<'chat:send'>, attempts = 4): Promise<ChatAckOf<'chat:send'>> {
  for (let attempt = 1; ; attempt++) {
    if (!socket.connected) await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    try {
      const ack = await chatRequest(socket, 'chat:send', payload);
      if (ack.ok || ack.error.code !== 'STORE_UNAVAILABLE' || attempt >= attempts) return ack;
      await new Promise((resolve) => setTimeout(resolve, 1000 * attempt));
    } catch (error) {
      if (attempt >= attempts || !(error instanceof RequestTimeoutError)) throw error;
    }
  }
}

type UploadResult = { ok: true; attachment: ChatAttachment } | { ok: false; error: ProtocolError };

const withClinic = (query: URLSearchParams, clinic: string | null | undefined) => {
  if (clinic) query.set('clinic', clinic);
  return query;
};

/** Uploads one file for a thread (POST with the bearer token); the message that sends it names its id. */
export async function uploadAttachment(token: string, threadId: string, file: File, clinic?: string | null): Promise<UploadResult> {
  const query = withClinic(new URLSearchParams({ thread: threadId, name: file.name }), clinic);
  let res: Response;
  try {
    res = await fetch(`${CHAT_ATTACHMENTS_PATH}?${query}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': file.type || 'application/octet-stream' },
      body: file,
    });
  } catch {
    return { ok: false, error: protocolError('STORE_UNAVAILABLE', 'the upload did not reach the hub') };
  }
  const body = (await res.json().catch(() => null)) as { attachment?: ChatAttachment; error?: ProtocolError } | null;
  if (res.ok && body?.attachment) return { ok: true, attachment: body.attachment };
  return { ok: false, error: body?.error ?? protocolError('INTERNAL', `HTTP ${res.status}`) };
}

/** An attachment's bytes (GET with the bearer token), or the hub's error when it refused. */
export async function fetchAttachment(token: string, attachmentId: string, clinic?: string | null): Promise<Blob | ProtocolError> {
  const query = withClinic(new URLSearchParams(), clinic).toString();
  const res = await fetch(`${CHAT_ATTACHMENTS_PATH}/${encodeURIComponent(attachmentId)}${query ? `?${query}` : ''}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  if (res.ok) return res.blob();
  const body = (await res.json().catch(() => null)) as { error?: ProtocolError } | null;
  return body?.error ?? protocolError('INTERNAL', `HTTP ${res.status}`);
}
