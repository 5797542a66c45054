import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatsClient } from '../harness/broker-clients.js';
import { startNatsServer, type ComparisonServer } from '../harness/comparison-servers.js';
import { NatsFramingError, NatsReader, PING_COMMAND, connectCommand, pubCommand, subCommand, type NatsOp } from '../harness/nats-wire.js';
import { RawWebSocket } from '../harness/raw-websocket.js';

/**
 * The one NATS parser of the load tests (harness/nats-wire.ts) and the
 * minimal client built on it, against a real nats-server (Debian's, started
 * on free loopback ports with its own configuration, as the benchmark starts
 * it) over its WebSocket listener; then the reader alone on streams cut at
 * every byte.
 */
const dir = mkdtempSync(join(tmpdir(), 'nats-wire-'));
let nats: ComparisonServer;

beforeAll(async () => {
  nats = await startNatsServer(dir);
}, 30_000);

afterAll(async () => {
  await nats?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const PAYLOADS = ['{"seq":1,"type":"ticket.called","ticket":{"number":"A-001","room":"r1"}}', '第1診察室へお入りください', 'x'.repeat(70_000), ''];

/**
 * A raw WebSocket to the server, every operation the reader finds in what it
 * sends, and `until(check)`: resolves once `check(ops)` holds (checked as
 * operations arrive).
 */
async function rawConnection(): Promise<{ ws: RawWebSocket; ops: NatsOp[]; until: (check: (ops: NatsOp[]) => boolean) => Promise<void> }> {
  const ws = new RawWebSocket(nats.displayUrl);
  const ops: NatsOp[] = [];
  const reader = new NatsReader();
  const waiters: { check: (ops: NatsOp[]) => boolean; resolve: () => void }[] = [];
  const until = (check: (ops: NatsOp[]) => boolean) => (check(ops) ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ check, resolve })));
  // Payloads are views of the read buffer: copy them as they come.
  ws.onbinary = (data) => {
    reader.push(data, (op) => ops.push(op.op === 'MSG' ? { ...op, payload: Buffer.from(op.payload) } : op.op === 'HMSG' ? { ...op, headers: Buffer.from(op.headers), payload: Buffer.from(op.payload) } : op));
    for (const w of waiters.filter((w) => w.check(ops))) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  };
  await new Promise<void>((resolve) => (ws.onopen = resolve));
  await until((o) => o.length > 0);
  return { ws, ops, until };
}

describe('NATS against nats-server over WebSocket', () => {
  it('connects, subscribes and receives what is published, in order and byte for byte', async () => {
    const display = await NatsClient.connect(nats.displayUrl, { name: 'display' });
    expect(display.info).toMatchObject({ proto: 1, headers: true });
    const received: { subject: string; payload: string }[] = [];
    const all = new Promise<void>((resolve) => {
      display.onmessage = (subject, payload) => {
        received.push({ subject, payload: payload.toString('utf8') });
        if (received.length === PAYLOADS.length) resolve();
      };
    });
    await display.subscribe('clinic.bench.queue');

    const publisher = await NatsClient.connect(nats.publishUrl, { name: 'publisher' });
    publisher.publishMany(PAYLOADS.map((payload) => ({ subject: 'clinic.bench.queue', payload })));
    publisher.publishMany([{ subject: 'clinic.other.queue', payload: 'not for the display' }]);
    await publisher.flush();
    await all;
    // Anything more (the other subject) would have come before the answer to this PING.
    await display.flush();
    expect(received.map((r) => r.subject)).toEqual(PAYLOADS.map(() => 'clinic.bench.queue'));
    expect(received.map((r) => r.payload.length)).toEqual(PAYLOADS.map((p) => p.length));
    expect(received.map((r) => r.payload)).toEqual(PAYLOADS);
    expect(display.open && publisher.open).toBe(true);
    display.terminate();
    publisher.terminate();
  });

  it('reads the server’s INFO, PONG, MSG with a reply subject and HMSG from the raw stream', async () => {
    const { ws, ops, until } = await rawConnection();
    expect(ops[0]).toMatchObject({ op: 'INFO', info: { proto: 1, headers: true } });
    ws.sendBinary(Buffer.from(connectCommand({ name: 'raw', headers: true }) + subCommand('a.b', '9') + PING_COMMAND, 'latin1'));
    await until((o) => o.some((x) => x.op === 'PONG'));
    const headers = 'NATS/1.0\r\nX-Clinic: 1\r\n\r\n';
    ws.sendBinary(
      Buffer.concat([
        Buffer.from('PUB a.b reply.to 2\r\nhi\r\n', 'latin1'),
        // HPUB subject #header-bytes #total-bytes: a header block, then the payload.
        Buffer.from(`HPUB a.b ${headers.length} ${headers.length + 2}\r\n${headers}ok\r\n`, 'latin1'),
        Buffer.from(PING_COMMAND, 'latin1'),
      ]),
    );
    await until((o) => o.filter((x) => x.op === 'PONG').length === 2 || o.some((x) => x.op === '-ERR'));
    expect(ops.slice(1)).toEqual([
      { op: 'PONG' },
      { op: 'MSG', subject: 'a.b', sid: '9', replyTo: 'reply.to', payload: Buffer.from('hi') },
      { op: 'HMSG', subject: 'a.b', sid: '9', replyTo: null, headers: Buffer.from(headers), payload: Buffer.from('ok') },
      { op: 'PONG' },
    ]);
    ws.terminate();
  });

  it('reads the server’s -ERR, and the client closes on it with the server’s words', async () => {
    const { ws, ops, until } = await rawConnection();
    ws.sendBinary(Buffer.from(`${connectCommand({ name: 'bad' })}SUB\r\n`, 'latin1'));
    await until((o) => o.some((x) => x.op === '-ERR'));
    expect(ops.find((o) => o.op === '-ERR')).toEqual({ op: '-ERR', message: expect.stringMatching(/Parser Error|Unknown Protocol|Invalid/i) });
    ws.terminate();

    const client = await NatsClient.connect(nats.displayUrl, { name: 'too-big' });
    const closed = new Promise<Error | null>((resolve) => (client.onclose = resolve));
    // A PUB announcing more than the server's max_payload (1 MB by default). Only the
    // announcement is sent: the server refuses on reading it, and a body still being
    // written when it closes would make it reset the connection (unread bytes), which
    // can reach the client before the -ERR is read (seen in CI as `write ECONNRESET`).
    client.sendRaw(Buffer.from('PUB a.b 1100000\r\n', 'latin1'));
    expect((await closed)?.message).toMatch(/^nats-server: Maximum Payload/);
  });
});

describe('NatsReader on a stream cut anywhere', () => {
  const stream = Buffer.concat([
    Buffer.from('INFO {"proto":1}\r\nPING\r\n+OK\r\n', 'latin1'),
    // 9 bytes: three kana of three bytes each.
    Buffer.from('MSG t.1 1 9\r\n', 'latin1'),
    Buffer.from('あいう', 'utf8'),
    Buffer.from('\r\nmsg t.2 2 r.1 3\r\nabc\r\n-ERR \'Stale Connection\'\r\n', 'latin1'),
  ]);
  const expected = ['INFO {"proto":1}', 'PING', '+OK', 'MSG t.1 1 - あいう', 'MSG t.2 2 r.1 abc', '-ERR Stale Connection'];
  const describeOp = (o: NatsOp) =>
    o.op === 'INFO' ? `INFO ${JSON.stringify(o.info)}` : o.op === 'MSG' ? `MSG ${o.subject} ${o.sid} ${o.replyTo ?? '-'} ${o.payload.toString('utf8')}` : o.op === '-ERR' ? `-ERR ${o.message}` : o.op;

  it('gives the same operations whatever the chunks (and takes lower-case names)', () => {
    for (let cut = 1; cut < stream.length; cut++) {
      const reader = new NatsReader();
      const seen: string[] = [];
      reader.push(Buffer.from(stream.subarray(0, cut)), (o) => seen.push(describeOp(o)));
      reader.push(Buffer.from(stream.subarray(cut)), (o) => seen.push(describeOp(o)));
      expect(seen, `cut at ${cut}`).toEqual(expected);
    }
  });

  it('refuses bytes that are not NATS', () => {
    expect(() => new NatsReader().push(Buffer.from('HELLO\r\n'), () => undefined)).toThrow(NatsFramingError);
    expect(() => new NatsReader().push(Buffer.from('PING\n'), () => undefined)).toThrow(/CRLF/);
    expect(() => new NatsReader().push(Buffer.from('MSG a 1 x\r\n'), () => undefined)).toThrow(/bad MSG size/);
    expect(() => new NatsReader().push(Buffer.from('MSG a 1 2\r\nabXY'), () => undefined)).toThrow(/not followed by CRLF/);
    expect(() => new NatsReader().push(Buffer.alloc(5000, 0x41), () => undefined)).toThrow(/control line too long/);
    expect(() => pubCommand('a b', 'x')).toThrow(NatsFramingError);
  });
});
