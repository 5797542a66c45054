import type { Socket } from 'socket.io-client';
import type { Redis } from 'ioredis';
import {
  CONSULT_NAMESPACE,
  MEDIA_NODES_KEY,
  mediaNodeKey,
  type AiEmotion,
  type AiTranscript,
  type ConsultAdmitted,
  type ConsultClientToServer,
  type ConsultEnded,
  type ConsultServerToClient,
} from '@clinic-hub/protocol';
import { RoomTokenIssuer } from '@clinic-hub/platform/token-issuer';
import { startHubProcess, type HubNodeProcess } from './hub-node.js';
import { connectNamespace, namespaceConnectError, type ConnectOptions } from './queue-client.js';

export type ConsultSocket = Socket<ConsultServerToClient, ConsultClientToServer>;

/** The media token secret test hubs sign room tokens with (MEDIA_TOKEN_SECRET); the tests verify with it as a media-server would. */
export const TEST_MEDIA_SECRET = 'test-media-secret-that-is-long-enough-0123456789';
export const testRoomTokens = new RoomTokenIssuer(TEST_MEDIA_SECRET);

/** A socket.io-client on the consult namespace, connected (or rejected) before it returns. */
export function connectConsult(url: string, token: string | undefined, options: ConnectOptions = {}): Promise<ConsultSocket> {
  return connectNamespace<ConsultSocket>(url, CONSULT_NAMESPACE, token, options);
}

export function consultConnectError(url: string, token: string | undefined, options: ConnectOptions = {}): Promise<{ code: string; message: string; detail?: string }> {
  return namespaceConnectError(url, CONSULT_NAMESPACE, token, options);
}

export type ConsultAck<E extends keyof ConsultClientToServer> = Parameters<Parameters<ConsultClientToServer[E]>[1]>[0];

/** Emits a consult event with an ack and returns the ack (5 s timeout). */
export function consultRequest<E extends keyof ConsultClientToServer>(
  socket: ConsultSocket,
  event: E,
  payload: Parameters<ConsultClientToServer[E]>[0],
  timeoutMs = 5000,
): Promise<ConsultAck<E>> {
  return (socket.timeout(timeoutMs) as unknown as { emitWithAck(e: string, p: unknown): Promise<never> }).emitWithAck(event, payload);
}

/** Emits any event with any arguments and returns the ack. */
export function consultRequestRaw(socket: ConsultSocket, event: string, ...args: unknown[]): Promise<{ ok: boolean; error?: { code: string; detail?: string } }> {
  return (socket.timeout(5000) as unknown as { emitWithAck(e: string, ...a: unknown[]): Promise<never> }).emitWithAck(event, ...args);
}

/** Everything consult that arrives on a socket, as it arrives (duplicates included). */
export function recordConsult(socket: ConsultSocket): {
  admitted: ConsultAdmitted[];
  ended: ConsultEnded[];
  transcripts: AiTranscript[];
  emotions: AiEmotion[];
  errors: { code: string; event?: string }[];
} {
  const got = {
    admitted: [] as ConsultAdmitted[],
    ended: [] as ConsultEnded[],
    transcripts: [] as AiTranscript[],
    emotions: [] as AiEmotion[],
    errors: [] as { code: string; event?: string }[],
  };
  socket.on('consult:admitted', (a) => got.admitted.push(a));
  socket.on('consult:ended', (e) => got.ended.push(e));
  socket.on('consult:transcript', (t) => got.transcripts.push(t));
  socket.on('consult:emotion', (e) => got.emotions.push(e));
  socket.on('hub:error', (e) => got.errors.push(e));
  return got;
}

/**
 * Announces a media-server node the way media-server nodes do (consult.ts):
 * its hash with an expiry (an hour unless a test says: long enough for any
 * test on a busy machine), and its id in the set.
 */
export async function announceMediaNode(
  redis: Redis,
  node: { id: string; url?: string; rooms?: number; participants?: number; draining?: boolean; ttlMs?: number },
): Promise<void> {
  // The hash, then the id: two hash slots (media-server/src/registry/node-registry.ts).
  await redis
    .multi()
    .hset(mediaNodeKey(node.id), {
      url: node.url ?? `ws://127.0.0.1:1/${node.id}`,
      rooms: String(node.rooms ?? 0),
      participants: String(node.participants ?? 0),
      startedAt: String(Date.now()),
      draining: node.draining ? '1' : '0',
    })
    .pexpire(mediaNodeKey(node.id), node.ttlMs ?? 3_600_000)
    .exec();
  await redis.sadd(MEDIA_NODES_KEY, node.id);
}

/** Hub nodes with consultations on: the media token secret and a short room-token life. */
export const CONSULT_HUB_ENV = { MEDIA_TOKEN_SECRET: TEST_MEDIA_SECRET, CONSULT_ROOM_TOKEN_TTL_SECONDS: '120', CONSULT_INVITE_TTL_SECONDS: '900' };

/** Starts hub processes side by side; when one cannot start, stops the others before failing (no process outlives the test). */
export async function startHubProcesses(options: Parameters<typeof startHubProcess>[0][]): Promise<HubNodeProcess[]> {
  const started = await Promise.allSettled(options.map((o) => startHubProcess(o)));
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (!failed) return started.map((r) => (r as PromiseFulfilledResult<HubNodeProcess>).value);
  await Promise.all(started.map((r) => (r.status === 'fulfilled' ? r.value.stop().catch(() => undefined) : undefined)));
  throw failed.reason;
}
