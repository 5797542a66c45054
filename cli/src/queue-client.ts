import { randomBytes } from 'node:crypto';
import type { Socket } from 'socket.io-client';
import { QUEUE_NAMESPACE, type QueueClientToServer, type QueueServerToClient, type QueueSnapshot } from '@clinic-hub/protocol';
import { CliError, hubError } from './cli-error.js';
import { requireClinic, unreachableHint, type Connection } from './connection.js';

export type QueueSocket = Socket<QueueServerToClient, QueueClientToServer>;

type AckOf<E extends keyof QueueClientToServer> = Parameters<Parameters<QueueClientToServer[E]>[1]>[0];
export type OkOf<E extends keyof QueueClientToServer> = Extract<AckOf<E>, { ok: true }>;
export type PayloadOf<E extends keyof QueueClientToServer> = Parameters<QueueClientToServer[E]>[0];

/** Queue actions that take a requestId, so a retry cannot apply them twice. */
export type QueueActionEvent = 'queue:checkin' | 'queue:call-next' | 'queue:recall' | 'queue:start' | 'queue:skip' | 'queue:done' | 'queue:cancel';

/** Sends one event and resolves with its ack; rejects when no ack came within the time. */
export type Emit = (event: string, payload: unknown, timeoutMs: number) => Promise<unknown>;

const ACK_TIMEOUT_MS = 8_000;
const RETRY_DELAY_MS = 300;

export function emitterOf(socket: QueueSocket): Emit {
  return (event, payload, timeoutMs) =>
    (socket.timeout(timeoutMs) as unknown as { emitWithAck(e: string, p: unknown): Promise<unknown> }).emitWithAck(event, payload);
}

/** 16 characters of [A-Za-z0-9_-]: what the hub accepts as a requestId. */
export const newRequestId = () => `cli-${randomBytes(9).toString('base64url')}`;

/**
 * A queue action with a fresh requestId. A lost ack, STORE_UNAVAILABLE or
 * HUB_DRAINING (the node is shutting down; the socket reconnects to another)
 * is retried once with the same requestId: the hub then returns the first
 * result (`replayed: true`) instead of acting twice.
 */
export async function sendAction<E extends QueueActionEvent>(
  emit: Emit,
  event: E,
  payload: Omit<PayloadOf<E>, 'requestId'>,
  options: { timeoutMs?: number; retryDelayMs?: number } = {},
): Promise<OkOf<E>> {
  const request = { ...payload, requestId: newRequestId() };
  const timeoutMs = options.timeoutMs ?? ACK_TIMEOUT_MS;
  let ack: AckOf<E> | null = null;
  for (let attempt = 1; attempt <= 2; attempt++) {
    try {
      ack = (await emit(event, request, timeoutMs)) as AckOf<E>;
    } catch {
      ack = null;
    }
    const retryable = ack === null || (!ack.ok && (ack.error.code === 'STORE_UNAVAILABLE' || ack.error.code === 'HUB_DRAINING'));
    if (!retryable || attempt === 2) break;
    await new Promise((resolve) => setTimeout(resolve, options.retryDelayMs ?? RETRY_DELAY_MS));
  }
  if (ack === null) throw new CliError('HUB_NO_ANSWER', { detail: `${event} requestId ${request.requestId}` });
  if (!ack.ok) throw hubError(ack.error);
  return ack as OkOf<E>;
}

/** An event without requestId (sync, announce): one try. */
export async function sendOnce<E extends keyof QueueClientToServer>(emit: Emit, event: E, payload: PayloadOf<E>): Promise<OkOf<E>> {
  let ack: AckOf<E>;
  try {
    ack = (await emit(event, payload, ACK_TIMEOUT_MS)) as AckOf<E>;
  } catch {
    throw new CliError('HUB_NO_ANSWER', { detail: event });
  }
  if (!ack.ok) throw hubError(ack.error);
  return ack as OkOf<E>;
}

export async function fetchSnapshot(emit: Emit): Promise<QueueSnapshot> {
  const result = await sendOnce(emit, 'queue:sync', {});
  if (result.mode !== 'snapshot') throw new CliError('INTERNAL', { message: 'queue:sync without afterSeq did not return a snapshot' });
  return result.snapshot;
}

/** A socket on the waiting-room namespace; not yet connected. socket.io-client loads only for commands that use it. */
export async function openQueueSocket(connection: Connection, options: { reconnection: boolean }): Promise<QueueSocket> {
  const { io } = await import('socket.io-client');
  return io(`${connection.url}${QUEUE_NAMESPACE}`, {
    auth: { token: connection.token, ...(connection.clinic ? { clinic: connection.clinic } : {}) },
    transports: ['websocket', 'polling'],
    tryAllTransports: true,
    reconnection: options.reconnection,
    reconnectionDelay: 500,
    reconnectionDelayMax: 5_000,
    timeout: ACK_TIMEOUT_MS,
    forceNew: true,
  });
}

/** The `connect_error` of a refused or failed connection as a CliError. */
export function connectErrorOf(error: unknown, connection: Connection): CliError {
  const data = (error as { data?: { code?: unknown } }).data;
  if (data && typeof data === 'object' && 'code' in data) return hubError(data);
  // Engine.IO hides the system error (ECONNREFUSED …) inside the failed request; show it when it is there.
  const context = (error as { context?: { statusText?: { code?: unknown } } }).context;
  const systemCode = typeof context?.statusText?.code === 'string' ? context.statusText.code : null;
  return new CliError('HUB_UNREACHABLE', {
    message: `Cannot reach the hub at ${connection.url}.`,
    detail: systemCode ?? (error as Error).message,
    hint: unreachableHint(connection),
  });
}

/**
 * Connects for a one-shot command. Reconnection stays on (so a retry after a
 * dropped connection can go through) but the first failure is final.
 */
export async function connectQueueSocket(connection: Connection): Promise<QueueSocket> {
  requireClinic(connection);
  const socket = await openQueueSocket(connection, { reconnection: true });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('connect_error', (error) => reject(connectErrorOf(error, connection)));
    });
  } catch (error) {
    socket.close();
    throw error;
  }
  return socket;
}
