/**
 * One load-generator process: holds a share of a benchmark's clients as lean
 * WebSockets (raw-websocket.ts; Engine.IO v4 + Socket.IO v5 framing, no socket.io-client) in
 * one namespace, optionally joins each to what it should receive (e.g.
 * `chat:join`), sends events with acks at the times it is told, and records
 * when each occurrence of the tracked broadcast reaches each client.
 * For the comparison with brokers its clients speak MQTT or NATS instead
 * (broker-clients.ts), subscribed to one topic whose messages are the
 * tracked payloads, recorded the same way.
 * Started by worker-pool.ts with fork(); talks over IPC (worker-protocol.ts).
 */
import { MqttClient, NatsClient } from './broker-clients.js';
import { PONG, connectFrame, decodeFrame, encodeEngine, encodeSocketPacket, eventFrame, eventPayload, eventPrefix, websocketUrl } from './engine-io.js';
import { RawWebSocket } from './raw-websocket.js';
import { now } from './time.js';
import type { ClientPlan, ClientWire, CoordinatorMessage, EmitRecord, ScheduledEmit, TrackSpec, WorkerMessage, WorkerProgress, WorkerResult } from './worker-protocol.js';

/** Tracked payloads counted in buckets of this many ms, for the delivered-per-second rate over a window. */
const BUCKET_MS = 10;

const send = (message: WorkerMessage) => process.send?.(message);

interface Namespace {
  nsp: string;
  track: TrackSpec;
  /** Every broadcast of the tracked event starts with this: such frames take a short path. */
  trackPrefix: string;
  /** '42/chat,[': any event without an ack id; its name is read from the text. */
  eventStart: string;
  keyMarker: string;
  typeMarker: string | null;
  requireMarker: string | null;
}

let ns: Namespace | null = null;
let sockets: (RawWebSocket | null)[] = [];
/** With an MQTT or NATS wire: the clients (sockets then stay empty). */
let brokers: (MqttClient | NatsClient | null)[] = [];
let joined = new Uint8Array(0);
let connectMs = new Float64Array(0);
/** Per client: the highest key it has seen (out-of-order check). */
let lastKey = new Float64Array(0);
let nextAckId = new Uint32Array(0);
let pendingAcks: Map<number, (args: unknown[]) => void>[] = [];
let failed = 0;
let disconnects = 0;
let messages = 0;
let malformed = 0;
let tracked = 0;
let payloadBytes = 0;
let duplicatesTotal = 0;
let outOfOrder = 0;
let acked = 0;
let stopping = false;
const errors: string[] = [];
const emits: EmitRecord[] = [];
const arrivals = new Map<number, { times: Float64Array; duplicates: number }>();
/** Tracked payloads per BUCKET_MS, from BUCKET_BASE (grown as needed). */
const BUCKET_BASE = Math.floor(now() / BUCKET_MS);
let buckets = new Uint32Array(60_000 / BUCKET_MS);
const byType = new Map<string, number>();
const events = new Map<string, number>();

function noteError(message: string): void {
  if (errors.length < 20) errors.push(message);
}

function countEvent(name: string): void {
  events.set(name, (events.get(name) ?? 0) + 1);
}

/** The value of the first `"field":<digits>` in the JSON text; -1 if absent. */
function readNumber(json: string, marker: string): number {
  const at = json.indexOf(marker);
  if (at < 0) return -1;
  let i = at + marker.length;
  let value = 0;
  const start = i;
  for (; i < json.length; i++) {
    const c = json.charCodeAt(i);
    if (c < 48 || c > 57) break;
    value = value * 10 + (c - 48);
  }
  return i > start ? value : -1;
}

/** The value of the first `"field":"…"` in the JSON text (no escapes expected); null if absent. */
function readString(json: string, marker: string): string | null {
  const at = json.indexOf(marker);
  if (at < 0) return null;
  const end = json.indexOf('"', at + marker.length);
  return end < 0 ? null : json.slice(at + marker.length, end);
}

/** One broadcast of the tracked event, as JSON text. */
function onTracked(client: number, at: number, json: string): void {
  const n = ns!;
  messages++;
  payloadBytes += json.length;
  countEvent(n.track.event);
  const bucket = Math.floor(at / BUCKET_MS) - BUCKET_BASE;
  if (bucket >= buckets.length) {
    const grown = new Uint32Array(Math.max(bucket + 1, buckets.length * 2));
    grown.set(buckets);
    buckets = grown;
  }
  if (bucket >= 0) buckets[bucket]! += 1;
  if (n.typeMarker !== null) {
    const type = readString(json, n.typeMarker);
    if (type === null) {
      malformed++;
      return;
    }
    byType.set(type, (byType.get(type) ?? 0) + 1);
    if (n.track.timedType !== undefined && type !== n.track.timedType) return;
  }
  const key = readNumber(json, n.keyMarker);
  if (key < 0 || (n.requireMarker !== null && json.indexOf(n.requireMarker) < 0)) {
    malformed++;
    return;
  }
  let entry = arrivals.get(key);
  if (!entry) {
    entry = { times: new Float64Array(joined.length).fill(NaN), duplicates: 0 };
    arrivals.set(key, entry);
  }
  if (Number.isNaN(entry.times[client]!)) {
    entry.times[client] = at;
    tracked++;
    if (key < lastKey[client]!) outOfOrder++;
    else lastKey[client] = key;
  } else {
    entry.duplicates++;
    duplicatesTotal++;
  }
}

/** Sends an event with an ack id from one client; `onAck` gets the ack's arguments. */
function emitWithAck(client: number, event: string, payload: unknown, onAck: (args: unknown[]) => void): boolean {
  const ws = sockets[client];
  if (!ws || !ws.open) return false;
  const id = nextAckId[client]!;
  nextAckId[client] = id + 1;
  pendingAcks[client]!.set(id, onAck);
  ws.send(eventFrame(ns!.nsp, event, [payload], id));
  return true;
}

function connectOne(client: number, plan: ClientPlan, join: { event: string; payload: unknown } | undefined, timeoutMs: number): Promise<void> {
  const n = ns!;
  return new Promise((resolve) => {
    const started = now();
    const ws = new RawWebSocket(websocketUrl(plan.url));
    sockets[client] = ws;
    let settled = false;
    const settle = (ok: boolean, why?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (ok) {
        joined[client] = 1;
        connectMs[client] = now() - started;
      } else {
        failed++;
        noteError(`client ${client}: ${why}`);
        ws.terminate();
      }
      resolve();
    };
    const timer = setTimeout(() => settle(false, `connect timed out after ${timeoutMs} ms`), timeoutMs);
    ws.onerror = (error) => settle(false, error.message);
    ws.onclose = () => {
      if (!settled) return settle(false, 'closed before connect');
      if (joined[client] === 1 && !stopping) {
        disconnects++;
        noteError(`client ${client}: disconnected`);
      }
    };
    ws.onmessage = (text) => {
      const at = now();
      if (text === '2') {
        ws.send(PONG);
        return;
      }
      const payload = eventPayload(text, n.trackPrefix);
      if (payload !== null) {
        onTracked(client, at, payload);
        return;
      }
      if (text.startsWith(n.eventStart) && text.charCodeAt(n.eventStart.length) === 34 /* " */) {
        const end = text.indexOf('"', n.eventStart.length + 1);
        if (end > 0) {
          countEvent(text.slice(n.eventStart.length + 1, end));
          return;
        }
      }
      try {
        const frame = decodeFrame(text);
        if (frame.kind === 'ack') {
          const onAck = pendingAcks[client]!.get(frame.id);
          if (onAck) {
            pendingAcks[client]!.delete(frame.id);
            onAck(frame.args);
          }
        } else if (frame.kind === 'event') {
          if (frame.name === n.track.event) onTracked(client, at, JSON.stringify(frame.args[0]));
          else countEvent(frame.name);
        } else if (frame.kind === 'open') {
          ws.send(connectFrame(n.nsp, { token: plan.token }));
        } else if (frame.kind === 'connect') {
          if (!join) return settle(true);
          emitWithAck(client, join.event, join.payload, (args) => {
            const ack = args[0] as { ok?: boolean; error?: { code?: string } } | undefined;
            if (ack?.ok === true) settle(true);
            else settle(false, `${join.event} refused: ${ack?.error?.code ?? JSON.stringify(ack)}`);
          });
        } else if (frame.kind === 'connect_error') {
          settle(false, `connect refused: ${JSON.stringify(frame.data)}`);
        } else if (frame.kind === 'disconnect' || frame.kind === 'close') {
          if (!settled) settle(false, 'disconnected during connect');
        }
      } catch (error) {
        malformed++;
        noteError(`client ${client}: ${(error as Error).message}`);
      }
    };
  });
}

/** One MQTT or NATS client: connected and subscribed, then every message on its subscription is a tracked payload. */
async function connectBroker(client: number, plan: ClientPlan, wire: ClientWire, timeoutMs: number): Promise<void> {
  const started = now();
  const name = `display-${process.pid}-${client}`;
  const attach = <C extends MqttClient | NatsClient>(connection: C): C => {
    brokers[client] = connection;
    connection.onmessage = (_topic, payload) => onTracked(client, now(), payload.toString('utf8'));
    connection.onclose = (error) => {
      if (joined[client] === 1 && !stopping) {
        disconnects++;
        noteError(`client ${client}: disconnected${error ? `: ${error.message}` : ''}`);
      }
    };
    return connection;
  };
  try {
    if (wire.kind === 'mqtt') {
      const mqtt = attach(await MqttClient.connect(plan.url, { clientId: name, version: wire.version, timeoutMs }));
      await mqtt.subscribe(wire.topic, 0, timeoutMs);
    } else {
      const nats = attach(await NatsClient.connect(plan.url, { name, timeoutMs }));
      await nats.subscribe(wire.subject, timeoutMs);
    }
    joined[client] = 1;
    connectMs[client] = now() - started;
  } catch (error) {
    failed++;
    noteError(`client ${client}: ${(error as Error).message}`);
    brokers[client]?.terminate();
  }
}

async function connectAll(message: Extract<CoordinatorMessage, { type: 'connect' }>): Promise<void> {
  const { nsp, track, clients } = message;
  ns = {
    nsp,
    track,
    trackPrefix: eventPrefix(nsp, track.event),
    eventStart: `${encodeEngine('message', encodeSocketPacket({ type: 'event', nsp }))}[`,
    keyMarker: `"${track.keyField}":`,
    typeMarker: track.typeField ? `"${track.typeField}":"` : null,
    requireMarker: track.requireField ? `"${track.requireField}":` : null,
  };
  sockets = message.wire ? [] : new Array(clients.length).fill(null);
  brokers = message.wire ? new Array(clients.length).fill(null) : [];
  joined = new Uint8Array(clients.length);
  connectMs = new Float64Array(clients.length).fill(NaN);
  lastKey = new Float64Array(clients.length).fill(-1);
  nextAckId = new Uint32Array(clients.length);
  pendingAcks = clients.map(() => new Map());
  let next = 0;
  const lane = async () => {
    while (next < clients.length && !stopping) {
      const i = next++;
      if (message.wire) await connectBroker(i, clients[i]!, message.wire, message.timeoutMs);
      else await connectOne(i, clients[i]!, message.join, message.timeoutMs);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, message.concurrency) }, lane));
}

/** Sends each event at its time; the send time is taken when the frame is written, not when it was due. */
function schedule(list: ScheduledEmit[]): void {
  for (const emit of list) {
    const record: EmitRecord = { id: emit.id, sentAt: NaN, ackAt: NaN, ack: null };
    emits.push(record);
    setTimeout(
      () => {
        if (stopping) return;
        const sentAt = now();
        const sent = emitWithAck(emit.client, emit.event, emit.payload, (args) => {
          record.ackAt = now();
          record.ack = args[0] ?? null;
          acked++;
        });
        if (sent) record.sentAt = sentAt;
        else noteError(`client ${emit.client}: not connected, ${emit.id} not sent`);
      },
      Math.max(0, emit.at - now()),
    );
  }
}

function progress(): WorkerProgress {
  let connected = 0;
  for (const j of joined) connected += j;
  const emitted = emits.reduce((a, e) => a + (Number.isNaN(e.sentAt) ? 0 : 1), 0);
  return { type: 'progress', connected, failed, disconnects, tracked, duplicates: duplicatesTotal, messages, emitted, acked };
}

function result(): WorkerResult {
  const keys = [...arrivals.keys()].sort((a, b) => a - b);
  return {
    type: 'result',
    pid: process.pid,
    clients: joined.length,
    joined,
    connectMs,
    keys,
    times: keys.map((k) => arrivals.get(k)!.times),
    duplicates: keys.map((k) => arrivals.get(k)!.duplicates),
    outOfOrder,
    bucketMs: BUCKET_MS,
    buckets: [...buckets.entries()].filter(([, n]) => n > 0).map(([i, n]) => [BUCKET_BASE + i, n]),
    byType: Object.fromEntries(byType),
    events: Object.fromEntries(events),
    messages,
    payloadBytes,
    wireBytes: [...sockets, ...brokers].reduce((sum, c) => sum + (c?.bytesReceived ?? 0), 0),
    wireReads: [...sockets, ...brokers].reduce((sum, c) => sum + (c?.readsReceived ?? 0), 0),
    malformed,
    failed,
    disconnects,
    emits,
    errors,
  };
}

let progressTimer: NodeJS.Timeout | null = null;

process.on('message', (message: CoordinatorMessage) => {
  switch (message.type) {
    case 'connect':
      progressTimer = setInterval(() => send(progress()), message.progressMs);
      connectAll(message).then(
        () => send({ ...progress(), type: 'connected' }),
        (error: unknown) => send({ type: 'fatal', error: String(error) }),
      );
      return;
    case 'emit':
      schedule(message.emits);
      return;
    case 'report':
      send(result());
      return;
    case 'stop':
      stopping = true;
      if (progressTimer) clearInterval(progressTimer);
      for (const ws of sockets) ws?.terminate();
      for (const client of brokers) client?.terminate();
      setTimeout(() => process.exit(0), 50);
      return;
  }
});

// The benchmark went away: nothing left to report to.
process.on('disconnect', () => process.exit(0));
