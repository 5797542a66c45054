import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { RoomTokenIssuer } from '@clinic-hub/platform/token-issuer';
import { ClientSignal, MEDIA_SIGNAL_PATH, consultKeys, isErrorCode } from '@clinic-hub/protocol';
import { MUTATIONS, Random, generate, mutate, randomId, type JsonSchema, type Mutation } from '@clinic-hub/test-kit/fuzz-payloads';
import { REPO_ROOT } from '@clinic-hub/test-kit/hub-node';
import { roomToken, startMediaServerProcess, type MediaServerProcess } from '@clinic-hub/test-kit/media-node';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';

/**
 * The media-server's signalling (issue 14, "media signalling"): generated and
 * mutated messages of every type — join with good, forged and expired room
 * tokens, answers with broken SDP, publish, mute, consent, recording,
 * keyframe, ping, leave — plus text that is not JSON, binary frames, deep
 * nesting, huge arrays and prototype keys. Every message gets an answer;
 * every error carries a code the docs describe, never INTERNAL; the process
 * stays up and healthy with bounded memory. FUZZ_SEED replays a run,
 * MEDIA_FUZZ_SECONDS runs longer (default 10).
 */
const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const SECONDS = Number(process.env.MEDIA_FUZZ_SECONDS ?? 10);
const NODE = 'fuzz-media';
const CONSULT = 'fuzzroom01';
const DOCUMENTED = new Set(
  readdirSync(join(REPO_ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .flatMap((f) => [...readFileSync(join(REPO_ROOT, 'docs', f), 'utf8').matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1]!)),
);
const SCHEMA = z.toJSONSchema(ClientSignal, { io: 'input', unrepresentable: 'any' }) as JsonSchema;

let redisServer: TestRedis;
let redis: Redis;
let media: MediaServerProcess;

const rssBytes = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;

beforeAll(async () => {
  redisServer = await startTestRedis();
  redis = new Redis(redisServer.url);
  await redis.hset(consultKeys('testclinic', CONSULT).meta, { status: 'waiting', node: NODE });
  media = await startMediaServerProcess({
    REDIS_URL: redisServer.url,
    MEDIA_NODE_ID: NODE,
    MEDIA_JOIN_TIMEOUT_MS: '60000',
    // The cases should reach the handlers (RATE_LIMITED is a documented answer, but says little).
    MEDIA_SIGNAL_RATE_PER_SECOND: '10000',
    MEDIA_SIGNAL_BURST: '10000',
    LOG_LEVEL: 'warn',
  });
});

afterAll(async () => {
  await media?.stop();
  redis?.disconnect();
  await redisServer?.cleanup();
});

function hasId(text: string): boolean {
  try {
    const value = JSON.parse(text) as unknown;
    return typeof value === 'object' && value !== null && typeof (value as { id?: unknown }).id === 'string';
  } catch {
    return false;
  }
}

interface Connection {
  ws: WebSocket;
  received: { type: string; code?: string }[];
}

async function connect(url: string): Promise<Connection> {
  const ws = new WebSocket(`${url.replace('http', 'ws')}${MEDIA_SIGNAL_PATH}`);
  const connection: Connection = { ws, received: [] };
  ws.on('message', (data) => {
    try {
      connection.received.push(JSON.parse(data.toString()) as { type: string; code?: string });
    } catch {
      connection.received.push({ type: 'not JSON' });
    }
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return connection;
}

describe(`media signalling fuzz (seed ${SEED}, ${SECONDS} s)`, () => {
  it('answers every message with a documented code, never INTERNAL, and the media-server stays up with bounded memory', { timeout: (SECONDS + 30) * 1000 }, async () => {
    const random = new Random(SEED);
    const forged = new RoomTokenIssuer('another-secret-that-is-long-enough-0123456789');
    const pools = {
      token: [
        roomToken({ sub: 'doctor:fuzz', part: 'doctor', consult: CONSULT }),
        roomToken({ sub: 'patient:fuzz', part: 'patient', consult: CONSULT }),
        roomToken({ sub: 'family:fuzz', part: 'family', consult: 'nosuchroom01' }),
        roomToken({ sub: 'late:fuzz', part: 'patient', consult: CONSULT }, -60),
        forged.issue({ clinic: 'testclinic', consult: CONSULT, sub: 'x', part: 'doctor', name: 'x' }, 600).token,
        'e30.e30.e30',
      ],
      sdp: ['v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n', 'garbage', 'v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n'.repeat(50)],
      participant: ['doctor:fuzz', 'patient:fuzz', 'nobody'],
      rev: [1, 2, 99],
    };
    const failures: string[] = [];
    const codes = new Map<string, number>();
    const connections: Connection[] = [];
    let rssAfterWarmUp = 0;
    let cases = 0;
    let closes = 0;
    const started = Date.now();
    for (; Date.now() - started < SECONDS * 1000 && failures.length === 0; cases++) {
      if (!rssAfterWarmUp && Date.now() - started > SECONDS * 100) rssAfterWarmUp = rssBytes(media.process.pid!);
      const slot = cases % 4;
      if (!connections[slot] || connections[slot]!.ws.readyState !== WebSocket.OPEN) {
        if (connections[slot]) closes++;
        connections[slot] = await connect(media.url);
      }
      const connection = connections[slot]!;
      const mutation: Mutation = random.chance(0.3) ? 'none' : random.pick(MUTATIONS);
      const message = generate(SCHEMA, random, pools);
      if (typeof message === 'object' && message !== null && !Array.isArray(message) && random.chance(0.9)) (message as Record<string, unknown>).id = randomId(random, 1, 8);
      const kind = random.pick(['json', 'json', 'json', 'json', 'not-json', 'binary'] as const);
      const frame: string | Buffer =
        kind === 'binary' ? Buffer.alloc(random.int(0, 70_000), 1) : kind === 'not-json' ? random.pick(['{', 'null', '', '\u0000', `{"type":"join","token":"${'a'.repeat(70_000)}"}`]) : mutate(random, message, mutation);
      const context = `case ${cases} (seed ${SEED}): ${kind} ${mutation}: ${typeof frame === 'string' ? frame.slice(0, 300) : `${frame.length} bytes`}`;
      const before = connection.received.length;
      connection.ws.send(frame);
      // A message with an id is always answered (an error, an ack, a pong, joined…), or the connection closes (leave, a join
      // that cannot be checked); one without is answered when refused (like an event without an ack on the hub).
      const expectsAnswer = typeof frame === 'string' && hasId(frame);
      const deadline = Date.now() + (expectsAnswer ? 8000 : 300);
      while (connection.received.length === before && connection.ws.readyState === WebSocket.OPEN && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      if (expectsAnswer && connection.received.length === before && connection.ws.readyState === WebSocket.OPEN) failures.push(`${context}: no answer within 8 s`);
      for (const reply of connection.received.slice(before)) {
        if (reply.type !== 'error') continue;
        codes.set(reply.code!, (codes.get(reply.code!) ?? 0) + 1);
        if (!isErrorCode(reply.code) || reply.code === 'INTERNAL' || !DOCUMENTED.has(reply.code)) failures.push(`${context}: ${reply.code}`);
      }
    }
    for (const connection of connections) connection?.ws.close();
    const rssAtEnd = rssBytes(media.process.pid!);
    console.log(
      [
        `media signalling fuzz: seed ${SEED}, ${cases} messages in ${((Date.now() - started) / 1000).toFixed(1)} s, ${closes} connections closed by the server (replay: FUZZ_SEED=${SEED})`,
        `media-server RSS after warm-up ${(rssAfterWarmUp / 1048576).toFixed(0)} MiB, at the end ${(rssAtEnd / 1048576).toFixed(0)} MiB (a loaded shared machine: not a release figure)`,
        ...[...codes].sort((a, b) => b[1] - a[1]).map(([code, count]) => `  ${count}\terror ${code}`),
      ].join('\n'),
    );
    expect(failures, `seed ${SEED}; first failing cases:\n${failures.join('\n')}`).toEqual([]);
    expect(media.process.exitCode, media.logs()).toBeNull();
    expect((await fetch(`${media.url}/healthz`)).status).toBe(200);
    expect(media.logs().split('\n').filter((line) => /"level":(50|60)/.test(line) && /failed|uncaught/i.test(line)), `seed ${SEED}`).toEqual([]);
    expect(rssAtEnd - rssAfterWarmUp, `seed ${SEED}`).toBeLessThan(200 * 1048576);
  });
});
