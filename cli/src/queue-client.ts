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

export function emitterOf(socket: Socket): Emit {
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
  return (await sendRetried(emit, event, payload, options)) as OkOf<E>;
}

/** sendAction's retry, for any event that takes a requestId (the queue's actions, consult:admit). */
export async function sendRetried(
  emit: Emit,
  event: string,
  payload: object,
  options: { timeoutMs?: number; retryDelayMs?: number } = {},
): Promise<{ ok: true }> {
  const request = { ...payload, requestId: newRequestId() };
  const timeoutMs = options.timeoutMs ?? ACK_TIMEOUT_MS;
  type Ack = { ok: true } | { ok: false; error: { code: string; message?: string; detail?: string } };
  let ack: Ack | null = null;
  for (let attempt = 1; attempt <= 2; attempt++) {
    try {
      ack = (await emit(event, request, timeoutMs)) as Ack;
    } catch {
      ack = null;
    }
    const retryable = ack === null || (!ack.ok && (ack.error.code === 'STORE_UNAVAILABLE' || ack.error.code === 'HUB_DRAINING'));
    if (!retryable || attempt === 2) break;
    await new Promise((resolve) => setTimeout(resolve, options.retryDelayMs ?? RETRY_DELAY_MS));
  }
  if (ack === null) throw new CliError('HUB_NO_ANSWER', { detail: `${event} requestId ${request.requestId}` });
  if (!ack.ok) throw hubError(ack.error);
  return ack;
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
export function openQueueSocket(connection: Connection, options: { reconnection: boolean }): Promise<QueueSocket> {
  return openHubSocket<QueueSocket>(connection, QUEUE_NAMESPACE, options);
}

/** A socket on one of the hub's namespaces with the connection's token (and clinic, for an all-clinics token); not yet connected. */
export async function openHubSocket<S extends Socket>(connection: Connection, namespace: string, options: { reconnection: boolean }): Promise<S> {
  const { io } = await import('socket.io-client');
  return io(`${connection.url}${namespace}`, {
    auth: { token: connection.token, ...(connection.clinic ? { clinic: connection.clinic } : {}) },
    transports: ['websocket', 'polling'],
    tryAllTransports: true,
    reconnection: options.reconnection,
    reconnectionDelay: 500,
    reconnectionDelayMax: 5_000,
    timeout: ACK_TIMEOUT_MS,
    forceNew: true,
  }) as unknown as S;
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
export function connectQueueSocket(connection: Connection): Promise<QueueSocket> {
  return connectHubSocket<QueueSocket>(connection, QUEUE_NAMESPACE);
}

/** connectQueueSocket on any namespace of the hub. */
export async function connectHubSocket<S extends Socket>(connection: Connection, namespace: string): Promise<S> {
  requireClinic(connection);
  const socket = await openHubSocket<S>(connection, namespace, { reconnection: true });
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
