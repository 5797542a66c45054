/**
 * IPC messages between a benchmark (the coordinator) and its load-generator
 * processes (lean-client-worker.ts), which hold the benchmark's clients.
 */

/**
 * The broadcast a benchmark times: one arrival per occurrence per client.
 * Payloads are read as JSON text, by field name, without parsing them: the
 * generator should spend its CPU on receiving, not on parsing.
 */
export interface TrackSpec {
  /** Server → client event, e.g. `queue:event`, `chat:message`. Its single argument is the payload. */
  event: string;
  /** Numeric field naming one occurrence (the first such field in the payload's JSON), e.g. `seq`. */
  keyField: string;
  /** A string field every payload has (e.g. `type`): payloads are counted by its value; a payload without it is malformed. */
  typeField?: string;
  /** With `typeField`: only payloads of this type are timed, the others only counted. */
  timedType?: string;
  /** A field every timed payload must have (a sanity check); a payload without it is malformed. */
  requireField?: string;
}

/**
 * What the clients speak. Without one: Socket.IO v5 over Engine.IO v4 in the
 * connect message's namespace (the hub, and the limit server, which speaks
 * enough of it). The brokers: a subscription to one topic or subject, whose
 * every message is a payload of the tracked event.
 */
export type ClientWire = { kind: 'mqtt'; topic: string; version: 4 | 5 } | { kind: 'nats'; subject: string };

export interface ClientPlan {
  url: string;
  token: string;
}

export type CoordinatorMessage =
  | {
      type: 'connect';
      /** Socket.IO namespace every client of this worker joins, e.g. `/queue`. */
      nsp: string;
      /** MQTT or NATS instead of Socket.IO (`nsp` and `join` are then not used). */
      wire?: ClientWire;
      /** One entry per client this worker holds: which hub node and its token. */
      clients: ClientPlan[];
      /**
       * Sent by each client once its namespace is joined, with an ack (e.g.
       * `chat:join`): the client counts as connected when the ack is `{ ok: true }`.
       */
      join?: { event: string; payload: unknown };
      track: TrackSpec;
      /** Handshakes in flight at once in this worker: the ramp. */
      concurrency: number;
      timeoutMs: number;
      progressMs: number;
    }
  /** Events to send with an ack, each by one of this worker's clients at its time. */
  | { type: 'emit'; emits: ScheduledEmit[] }
  | { type: 'report' }
  | { type: 'stop' };

export interface ScheduledEmit {
  /** The coordinator's name for this send; comes back in the result. */
  id: string;
  /** Index of the sending client in this worker. */
  client: number;
  /** When to send: timeOrigin + performance.now() of any process on this machine, ms. */
  at: number;
  event: string;
  payload: unknown;
}

export interface EmitRecord {
  id: string;
  /** When it was written to the socket, ms (NaN: not sent, the client was not connected). */
  sentAt: number;
  /** When the ack arrived, ms (NaN: no ack). */
  ackAt: number;
  /** The ack's first argument (e.g. `{ ok: true, message }`), null without an ack. */
  ack: unknown;
}

export interface WorkerProgress {
  type: 'progress' | 'connected';
  connected: number;
  failed: number;
  disconnects: number;
  /** First arrivals of timed payloads, summed over clients. */
  tracked: number;
  duplicates: number;
  /** Payloads of the tracked event, of any type. */
  messages: number;
  emitted: number;
  acked: number;
}

export interface WorkerResult {
  type: 'result';
  pid: number;
  clients: number;
  /** 1 for each client that connected (and joined, when asked to). */
  joined: Uint8Array;
  /** Per client: WebSocket open to connected (joined), ms (NaN if it never did). */
  connectMs: Float64Array;
  /** Keys of the timed payloads seen, ascending. */
  keys: number[];
  /** Per key, per client: first arrival (timeOrigin + now, ms), NaN if it never arrived. */
  times: Float64Array[];
  /** Per key: arrivals beyond the first, over all clients. */
  duplicates: number[];
  /** Timed arrivals whose key was lower than one the same client had already seen. */
  outOfOrder: number;
  bucketMs: number;
  /** [time bucket (arrival ms / bucketMs, floored), payloads of the tracked event] */
  buckets: [number, number][];
  /** Tracked payloads by their `typeField` value. */
  byType: Record<string, number>;
  /** Every server → client event received, by name (the tracked one included). */
  events: Record<string, number>;
  messages: number;
  /** Characters of the tracked payloads' JSON (what a display must read, whatever the wire). */
  payloadBytes: number;
  /** Bytes the servers sent to this process's clients after their WebSocket handshakes (frames, pings and all). */
  wireBytes: number;
  /** Socket reads of those bytes: a burst the server wrote at once is one read, events written apart are several. */
  wireReads: number;
  malformed: number;
  failed: number;
  disconnects: number;
  emits: EmitRecord[];
  errors: string[];
}

export type WorkerMessage = WorkerProgress | WorkerResult | { type: 'fatal'; error: string };
