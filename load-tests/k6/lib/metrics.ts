/**
 * Metrics every script shares, opening a socket with its failures counted,
 * and requests timed to their ack. Custom metrics must be created in k6's init context: this module
 * is imported at the top of each script, so they are.
 */
import exec from 'k6/execution';
import { Counter, Trend } from 'k6/metrics';
import type { Ack } from '../../../protocol/src/errors.ts';
import { SocketIoClient, SocketIoError, type AckOf, type ConnectOptions, type EventMap, type PayloadOf } from './socket-io.ts';

/**
 * Ack round trip of each queue action at the client, tagged `op` (checkin,
 * call-next, start, done, cancel, sync): the hub's time plus one network
 * round trip. The hub's own figure is `clinic_hub_action_duration_seconds`
 * on its /metrics.
 */
export const queueOpDuration = new Trend('queue_op_duration', true);
/** Queue actions that failed, tagged `op` and `code` (the hub's error code, ACK_TIMEOUT, CLOSED, NO_FREE_ROOM …). */
export const queueOpErrors = new Counter('queue_op_errors');
/** Connections refused, timed out or lost, tagged `role` and `code` (AUTH_INVALID, CONNECT_TIMEOUT, CLOSED …). */
export const socketErrors = new Counter('socket_errors');

const warned = new Set<string>();

/** Prints a failure once per VU and kind: thousands of displays failing alike say it once each, not once per socket. */
export function warnOnce(kind: string, message: string): void {
  if (warned.has(kind)) return;
  warned.add(kind);
  console.warn(`VU ${exec.vu.idInTest}: ${message}`);
}

/** Connects, or counts the failure in socket_errors and returns null. A later loss of the connection is counted too. */
export async function openSocket<Listen extends EventMap<Listen>, Emit extends EventMap<Emit>>(
  role: string,
  options: ConnectOptions,
): Promise<SocketIoClient<Listen, Emit> | null> {
  const tags = { role, ...options.tags };
  try {
    const socket = await SocketIoClient.connect<Listen, Emit>({ ...options, tags });
    socket.onDisconnect((error) => {
      socketErrors.add(1, { role, code: error.code });
      warnOnce(`${role}:${error.code}`, `${role} socket lost: ${error.message}`);
    });
    return socket;
  } catch (error) {
    const code = error instanceof SocketIoError ? error.code : 'ERROR';
    socketErrors.add(1, { role, code });
    warnOnce(`${role}:${code}`, `${role} socket to ${options.url}${options.nsp} failed: ${(error as Error).message}`);
    return null;
  }
}

/** A request that succeeded: its ack, and when it was sent and when its ack arrived (ms since the epoch, k6's clock). */
export interface Timed<Result> {
  result: Result;
  sentAt: number;
  receivedAt: number;
}

/** The ack of an event that succeeded. */
export type Success<H> = Extract<AckOf<H>, { ok: true }>;

/**
 * Sends one event and records its ack round trip in `metrics.duration`, or
 * its failure in `metrics.errors` (tagged `code`: the hub's error code,
 * ACK_TIMEOUT, CLOSED …), both tagged `op`: the event's name after its
 * namespace (`checkin`, `admit` …). Null when it failed; never rejects.
 */
export async function timedRequest<Listen extends EventMap<Listen>, Emit extends EventMap<Emit>, Event extends keyof Emit & string>(
  socket: SocketIoClient<Listen, Emit>,
  event: Event,
  payload: PayloadOf<Emit[Event]>,
  metrics: { duration: Trend; errors: Counter },
): Promise<Timed<Success<Emit[Event]>> | null> {
  const op = event.slice(event.indexOf(':') + 1);
  const sentAt = Date.now();
  try {
    const { ack, receivedAt } = await socket.request(event, payload);
    const answer = ack as Ack;
    if (!answer.ok) {
      metrics.errors.add(1, { op, code: answer.error.code });
      return null;
    }
    metrics.duration.add(receivedAt - sentAt, { op });
    return { result: ack as Success<Emit[Event]>, sentAt, receivedAt };
  } catch (error) {
    metrics.errors.add(1, { op, code: error instanceof SocketIoError ? error.code : 'ERROR' });
    return null;
  }
}

/** Stops the whole test run with a message: for a setting or a state of the clinic that makes the figures meaningless. */
export function abortTest(message: string): never {
  exec.test.abort(message);
  throw new Error(message);
}
