/**
 * One load-generator process of the queue benchmark: holds a share of the
 * display clients as lean WebSockets (Engine.IO v4 + Socket.IO v5 framing,
 * no socket.io-client) and records when each `ticket.called` event reaches
 * each display. Started by bench-queue.ts with fork(); talks over IPC.
 */
import WebSocket from 'ws';
import { PONG, connectFrame, decodeFrame, eventPayload, eventPrefix, websocketUrl } from './engine-io.js';
import type { CoordinatorMessage, WorkerMessage, WorkerProgress, WorkerResult } from './worker-protocol.js';

const NSP = '/queue';
/** Every queue broadcast starts with this: such frames take a short path, the rest are decoded in full. */
const QUEUE_EVENT_PREFIX = eventPrefix(NSP, 'queue:event');
const TYPE_KEY = '"type":"';
const SEQ_KEY = '"seq":';
const NUMBER_KEY = '"number":"';
/** Messages counted in buckets of this many ms, for the delivered-per-second rate over a window. */
const BUCKET_MS = 10;

const TIME_ORIGIN = performance.timeOrigin;
const now = () => TIME_ORIGIN + performance.now();
const send = (message: WorkerMessage) => process.send?.(message);

let sockets: (WebSocket | null)[] = [];
let joined = new Uint8Array(0);
let connectMs = new Float64Array(0);
let failed = 0;
let disconnects = 0;
let messages = 0;
let malformed = 0;
let calledReceived = 0;
let duplicatesTotal = 0;
let stopping = false;
const errors: string[] = [];
const arrivals = new Map<number, { times: Float64Array; duplicates: number }>();
/** queue:event messages per BUCKET_MS, from BUCKET_BASE (grown as needed). */
const BUCKET_BASE = Math.floor(now() / BUCKET_MS);
let buckets = new Uint32Array(60_000 / BUCKET_MS);
const byType = new Map<string, number>();

function noteError(message: string): void {
  if (errors.length < 20) errors.push(message);
}

/**
 * One queue:event broadcast, as JSON text. Only ticket.called events (the ones
 * timed and checked) are looked into, and only for their seq and ticket
 * number; the others are counted by type, read from the text. The generator
 * should spend its CPU on receiving, not on parsing.
 */
function onQueueEvent(client: number, at: number, json: string): void {
  messages++;
  const bucket = Math.floor(at / BUCKET_MS) - BUCKET_BASE;
  if (bucket >= buckets.length) {
    const grown = new Uint32Array(Math.max(bucket + 1, buckets.length * 2));
    grown.set(buckets);
    buckets = grown;
  }
  if (bucket >= 0) buckets[bucket]! += 1;
  const typeAt = json.indexOf(TYPE_KEY);
  const typeEnd = typeAt < 0 ? -1 : json.indexOf('"', typeAt + TYPE_KEY.length);
  if (typeEnd < 0) {
    malformed++;
    return;
  }
  const type = json.slice(typeAt + TYPE_KEY.length, typeEnd);
  byType.set(type, (byType.get(type) ?? 0) + 1);
  if (type !== 'ticket.called') return;
  const seq = readSeq(json);
  if (seq < 0 || json.indexOf(NUMBER_KEY) < 0) {
    malformed++;
    return;
  }
  let entry = arrivals.get(seq);
  if (!entry) {
    entry = { times: new Float64Array(sockets.length).fill(NaN), duplicates: 0 };
    arrivals.set(seq, entry);
  }
  if (Number.isNaN(entry.times[client]!)) {
    entry.times[client] = at;
    calledReceived++;
  } else {
    entry.duplicates++;
    duplicatesTotal++;
  }
}

/** The event's top-level "seq" (the first one: a ticket has no seq field); -1 if absent. */
function readSeq(json: string): number {
  const at = json.indexOf(SEQ_KEY);
  if (at < 0) return -1;
  let i = at + SEQ_KEY.length;
  let seq = 0;
  const start = i;
  for (; i < json.length; i++) {
    const c = json.charCodeAt(i);
    if (c < 48 || c > 57) break;
    seq = seq * 10 + (c - 48);
  }
  return i > start ? seq : -1;
}

function connectOne(client: number, url: string, token: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const started = now();
    const ws = new WebSocket(url, { perMessageDeflate: false, skipUTF8Validation: true });
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
    ws.on('error', (error) => settle(false, error.message));
    ws.on('close', () => {
      if (!settled) return settle(false, 'closed before connect');
      if (joined[client] === 1 && !stopping) {
        disconnects++;
        noteError(`client ${client}: disconnected`);
      }
    });
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const at = now();
      if (isBinary) return;
      const text = data.toString();
      if (text === '2') {
        ws.send(PONG);
        return;
      }
      const payload = eventPayload(text, QUEUE_EVENT_PREFIX);
      if (payload !== null) {
        onQueueEvent(client, at, payload);
        return;
      }
      try {
        const frame = decodeFrame(text);
        if (frame.kind === 'event') {
          if (frame.name === 'queue:event') onQueueEvent(client, at, JSON.stringify(frame.args[0]));
        } else if (frame.kind === 'open') {
          ws.send(connectFrame(NSP, { token }));
        } else if (frame.kind === 'connect') {
          settle(true);
        } else if (frame.kind === 'connect_error') {
          settle(false, `connect refused: ${JSON.stringify(frame.data)}`);
        } else if (frame.kind === 'disconnect' || frame.kind === 'close') {
          if (!settled) settle(false, 'disconnected during connect');
        }
      } catch (error) {
        malformed++;
        noteError(`client ${client}: ${(error as Error).message}`);
      }
    });
  });
}

async function connectAll(clients: { url: string; token: string }[], concurrency: number, timeoutMs: number): Promise<void> {
  sockets = new Array(clients.length).fill(null);
  joined = new Uint8Array(clients.length);
  connectMs = new Float64Array(clients.length).fill(NaN);
  let next = 0;
  const lane = async () => {
    while (next < clients.length && !stopping) {
      const i = next++;
      const client = clients[i]!;
      await connectOne(i, websocketUrl(client.url), client.token, timeoutMs);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, lane));
}

function progress(): WorkerProgress {
  let connected = 0;
  for (const j of joined) connected += j;
  return { type: 'progress', connected, failed, disconnects, calledReceived, duplicates: duplicatesTotal, messages };
}

function result(): WorkerResult {
  const seqs = [...arrivals.keys()].sort((a, b) => a - b);
  return {
    type: 'result',
    pid: process.pid,
    clients: sockets.length,
    joined,
    connectMs,
    seqs,
    times: seqs.map((s) => arrivals.get(s)!.times),
    duplicates: seqs.map((s) => arrivals.get(s)!.duplicates),
    bucketMs: BUCKET_MS,
    buckets: [...buckets.entries()].filter(([, n]) => n > 0).map(([i, n]) => [BUCKET_BASE + i, n]),
    byType: Object.fromEntries(byType),
    messages,
    malformed,
    failed,
    disconnects,
    errors,
  };
}

let progressTimer: NodeJS.Timeout | null = null;

process.on('message', (message: CoordinatorMessage) => {
  switch (message.type) {
    case 'connect':
      progressTimer = setInterval(() => send(progress()), message.progressMs);
      connectAll(message.clients, message.concurrency, message.timeoutMs).then(
        () => send({ ...progress(), type: 'connected' }),
        (error: unknown) => send({ type: 'fatal', error: String(error) }),
      );
      return;
    case 'report':
      send(result());
      return;
    case 'stop':
      stopping = true;
      if (progressTimer) clearInterval(progressTimer);
      for (const ws of sockets) ws?.terminate();
      setTimeout(() => process.exit(0), 50);
      return;
  }
});

// The benchmark went away: nothing left to report to.
process.on('disconnect', () => process.exit(0));
