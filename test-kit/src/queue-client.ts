import { io, type Socket } from 'socket.io-client';
import {
  QUEUE_NAMESPACE,
  QueueFollower,
  type Announcement,
  type QueueClientToServer,
  type QueueEvent,
  type QueueServerToClient,
  type SyncResult,
} from '@clinic-hub/protocol';
import { sleep } from './wait.js';

export type QueueSocket = Socket<QueueServerToClient, QueueClientToServer>;

export interface ConnectOptions {
  transports?: ('websocket' | 'polling')[];
  clinic?: string;
  /** Off by default; on, the client reconnects by itself (quickly, for tests). */
  reconnection?: boolean;
  /** Request headers of the handshake (Node clients only), e.g. what a load balancer adds. */
  extraHeaders?: Record<string, string>;
}

/** A socket.io-client on any hub namespace, connected (or rejected with the hub's error as `data`) before it returns. */
export async function connectNamespace<S extends Socket>(
  url: string,
  namespace: string,
  token: string | undefined,
  options: ConnectOptions = {},
): Promise<S> {
  const socket = io(`${url}${namespace}`, {
    auth: { ...(token === undefined ? {} : { token }), ...(options.clinic ? { clinic: options.clinic } : {}) },
    transports: options.transports ?? ['websocket'],
    reconnection: options.reconnection ?? false,
    reconnectionDelay: 100,
    reconnectionDelayMax: 500,
    forceNew: true,
    timeout: 5000,
    ...(options.extraHeaders ? { extraHeaders: options.extraHeaders } : {}),
  });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('connect_error', (error) => reject(error));
    });
  } catch (error) {
    socket.close();
    throw error;
  }
  return socket as S;
}

/** The `data` of a refused connection to a namespace: the hub's error object. */
export async function namespaceConnectError(
  url: string,
  namespace: string,
  token: string | undefined,
  options: ConnectOptions = {},
): Promise<{ code: string; message: string; detail?: string }> {
  try {
    const socket = await connectNamespace(url, namespace, token, options);
    socket.close();
  } catch (error) {
    return (error as { data: { code: string; message: string; detail?: string } }).data;
  }
  throw new Error(`expected the connection to ${namespace} to be refused`);
}

/** A socket.io-client on the waiting-room namespace, connected (or rejected) before it returns. */
export function connectQueue(url: string, token: string | undefined, options: ConnectOptions = {}): Promise<QueueSocket> {
  return connectNamespace<QueueSocket>(url, QUEUE_NAMESPACE, token, options);
}

/** The `data` of a refused connection: the hub's error object ({ code, message }). */
export function connectError(url: string, token: string | undefined, options: ConnectOptions = {}): Promise<{ code: string; message: string }> {
  return namespaceConnectError(url, QUEUE_NAMESPACE, token, options);
}

/** Emits with an ack and returns the ack (5 s timeout). */
export function request<E extends keyof QueueClientToServer>(
  socket: QueueSocket,
  event: E,
  payload: Parameters<QueueClientToServer[E]>[0],
  timeoutMs = 5000,
): Promise<Parameters<Parameters<QueueClientToServer[E]>[1]>[0]> {
  return (socket.timeout(timeoutMs) as unknown as { emitWithAck(e: string, p: unknown): Promise<never> }).emitWithAck(event, payload);
}

/** Emits any event with any arguments (to send what a well-behaved client would not) and returns the ack. */
export function requestRaw(socket: QueueSocket, event: string, ...args: unknown[]): Promise<{ ok: boolean; error?: { code: string; detail?: string } }> {
  return (socket.timeout(5000) as unknown as { emitWithAck(e: string, ...a: unknown[]): Promise<never> }).emitWithAck(event, ...args);
}

/**
 * A follower wired to a socket: live events plus queue:sync on every connect.
 * `applied`: the seq of every event it applied, in order; `snapshots`: each
 * snapshot it took (its seq, and how many events it had applied before it).
 */
export function followQueue(socket: QueueSocket): QueueFollower & { applied: number[]; events: QueueEvent[]; snapshots: { seq: number; applied: number }[] } {
  const applied: number[] = [];
  const events: QueueEvent[] = [];
  const snapshots: { seq: number; applied: number }[] = [];
  const follower = new QueueFollower({
    sync: async (afterSeq) => {
      const ack = await request(socket, 'queue:sync', afterSeq === null ? {} : { afterSeq });
      if (!ack.ok) throw new Error(ack.error.code);
      return ack as unknown as SyncResult;
    },
    onEvent: (event) => {
      applied.push(event.seq);
      events.push(event);
    },
    onSnapshot: (snapshot) => snapshots.push({ seq: snapshot.seq, applied: applied.length }),
  }) as QueueFollower & { applied: number[]; events: QueueEvent[]; snapshots: { seq: number; applied: number }[] };
  follower.applied = applied;
  follower.events = events;
  follower.snapshots = snapshots;
  socket.on('queue:event', (event) => follower.handleEvent(event));
  socket.on('queue:clinic', (clinic) => follower.handleClinic(clinic));
  socket.on('connect', () => void follower.resync().catch(() => undefined));
  return follower;
}

/** Everything that arrives on a socket, as it arrives (duplicates included): for exactly-once checks. */
export function recordArrivals(socket: QueueSocket): { events: QueueEvent[]; announcements: Announcement[]; errors: { code: string; event?: string }[] } {
  const arrivals = { events: [] as QueueEvent[], announcements: [] as Announcement[], errors: [] as { code: string; event?: string }[] };
  socket.on('queue:event', (event) => arrivals.events.push(event));
  socket.on('queue:announcement', (announcement) => arrivals.announcements.push(announcement));
  socket.on('hub:error', (error) => arrivals.errors.push(error));
  return arrivals;
}

/** Asserts-by-throwing that the ack is ok, and returns it narrowed. */
export function expectOk<T extends { ok: boolean }>(ack: T): Extract<T, { ok: true }> {
  if (!ack.ok) throw new Error(`expected ok, got ${JSON.stringify((ack as { error?: unknown }).error)}`);
  return ack as Extract<T, { ok: true }>;
}

/** A queue change a client retries until it is acknowledged (in the test clinic's `gp`, room `r1`). */
export type QueueAction =
  | { kind: 'checkin'; requestId: string }
  | { kind: 'call-next'; requestId: string }
  | { kind: 'done'; requestId: string; ticketId: string };

/** What a retrying client saw: STORE_UNAVAILABLE answers, acks that never came, replays of a change already made. */
export interface RetryTally {
  storeUnavailable: number;
  timeouts: number;
  replayed: number;
}

/**
 * Sends one action until it is acknowledged ok, retrying with the same
 * requestId after STORE_UNAVAILABLE or a lost ack: what a well-behaved client
 * does (docs/protocol.md). Adds what it saw to `seen`; throws on any other
 * error code, or when no ok came within `deadlineMs`.
 */
export async function untilAcknowledged(
  staff: QueueSocket,
  action: QueueAction,
  options: { seen: RetryTally; deadlineMs: number; ackTimeoutMs: number },
): Promise<QueueEvent> {
  const { seen, ackTimeoutMs } = options;
  const deadline = Date.now() + options.deadlineMs;
  for (;;) {
    if (Date.now() > deadline) throw new Error(`${action.kind} ${action.requestId} never acknowledged`);
    let ack;
    try {
      if (action.kind === 'checkin') ack = await request(staff, 'queue:checkin', { dept: 'gp', requestId: action.requestId }, ackTimeoutMs);
      else if (action.kind === 'call-next') ack = await request(staff, 'queue:call-next', { dept: 'gp', room: 'r1', requestId: action.requestId }, ackTimeoutMs);
      else ack = await request(staff, 'queue:done', { ticketId: action.ticketId, requestId: action.requestId }, ackTimeoutMs);
    } catch {
      seen.timeouts++;
      continue;
    }
    if (ack.ok) {
      if (ack.replayed) seen.replayed++;
      return ack.event;
    }
    if (ack.error.code !== 'STORE_UNAVAILABLE') throw new Error(`${action.kind} ${action.requestId}: ${ack.error.code}`);
    seen.storeUnavailable++;
    await sleep(100);
  }
}

/** The queue changes a test's client saw acknowledged, by requestId, with the event each made. */
export type AcknowledgedChanges = Map<string, { action: QueueAction; event: QueueEvent }>;

/**
 * Step `i` of a working clinic, each action retried until acknowledged
 * (untilAcknowledged): a check-in, and every third step a call of the next
 * patient and the end of that consultation. Adds each change to
 * `acknowledged`; requestIds are `<tag>-<kind>-<i>`.
 */
export async function workingClinicStep(
  staff: QueueSocket,
  tag: string,
  i: number,
  acknowledged: AcknowledgedChanges,
  retry: Parameters<typeof untilAcknowledged>[2],
): Promise<void> {
  const checkin: QueueAction = { kind: 'checkin', requestId: `${tag}-checkin-${i}` };
  acknowledged.set(checkin.requestId, { action: checkin, event: await untilAcknowledged(staff, checkin, retry) });
  if (i % 3 !== 2) return;
  const call: QueueAction = { kind: 'call-next', requestId: `${tag}-call-${i}` };
  const called = await untilAcknowledged(staff, call, retry);
  acknowledged.set(call.requestId, { action: call, event: called });
  const done: QueueAction = { kind: 'done', requestId: `${tag}-done-${i}`, ticketId: called.ticket.id };
  acknowledged.set(done.requestId, { action: done, event: await untilAcknowledged(staff, done, retry) });
}

/**
 * A staff desk on one hub node and a display on another, both reconnecting
 * by themselves; the display follows the queue (resynced once) and records
 * what arrives: the set-up of a test that works a clinic through an outage.
 */
export async function deskAndDisplay(staffUrl: string, displayUrl: string, tokens: { staff: string; display: string }) {
  const staff = await connectQueue(staffUrl, tokens.staff, { reconnection: true });
  const display = await connectQueue(displayUrl, tokens.display, { reconnection: true });
  const follower = followQueue(display);
  const arrivals = recordArrivals(display);
  await follower.resync();
  return { staff, display, follower, arrivals };
}
