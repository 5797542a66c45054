import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { RawWebSocket } from '../harness/raw-websocket.js';
import { waitFor } from '@clinic-hub/test-kit/wait';

/**
 * The load generators' minimal WebSocket client against a real, strict
 * server (the `ws` package's, which closes the connection on any protocol
 * violation): handshake, text both ways, the three length encodings,
 * fragments, ping/pong, close, and a refused handshake.
 */
let http: Server;
let wss: WebSocketServer;
let url: string;
const serverSide: WebSocket[] = [];

beforeAll(async () => {
  http = createServer((_req, res) => res.writeHead(400).end('not a websocket'));
  wss = new WebSocketServer({ server: http, path: '/ws', handleProtocols: (offered) => (offered.has('mqtt') ? 'mqtt' : false) });
  wss.on('connection', (ws) => serverSide.push(ws));
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  url = `ws://127.0.0.1:${(http.address() as AddressInfo).port}/ws?EIO=4&transport=websocket`;
});

afterAll(async () => {
  for (const ws of serverSide) ws.terminate();
  wss.close();
  await new Promise<void>((resolve) => http.close(() => resolve()));
});

async function connected(
  subprotocol: string | null = null,
): Promise<{ client: RawWebSocket; server: WebSocket; received: string[]; binary: Buffer[]; errors: Error[]; closed: () => boolean }> {
  const before = serverSide.length;
  const client = new RawWebSocket(url, subprotocol);
  const received: string[] = [];
  const binary: Buffer[] = [];
  const errors: Error[] = [];
  let closed = false;
  client.onmessage = (text) => received.push(text);
  // The Buffer is a view of the read buffer: keep a copy.
  client.onbinary = (data) => binary.push(Buffer.from(data));
  client.onerror = (error) => errors.push(error);
  client.onclose = () => (closed = true);
  await new Promise<void>((resolve) => (client.onopen = resolve));
  await waitFor('the server side', () => serverSide.length > before);
  return { client, server: serverSide.at(-1)!, received, binary, errors, closed: () => closed };
}

/** Lengths, then bytes (a deep toEqual over 70,000-byte Buffers takes seconds). */
function expectSameBuffers(actual: Buffer[], expected: Buffer[]): void {
  expect(actual.map((b) => b.length)).toEqual(expected.map((b) => b.length));
  expect(actual.map((b, i) => b.equals(expected[i]!))).toEqual(expected.map(() => true));
}

describe('RawWebSocket', () => {
  it('exchanges text of every length encoding, unmasked in and masked out, Japanese included', async () => {
    const { client, server, received, errors } = await connected();
    const atServer: string[] = [];
    server.on('message', (data, isBinary) => atServer.push(isBinary ? '(binary)' : data.toString()));
    const texts = ['2', '42["queue:event",{"room":"第1診察室"}]', 'x'.repeat(126), 'y'.repeat(65_535), 'z'.repeat(70_000)];
    for (const text of texts) server.send(text);
    server.send(Buffer.from([1, 2, 3]), { binary: true });
    server.send('after binary');
    await waitFor('every message at the client', () => received.length === texts.length + 1);
    expect(received).toEqual([...texts, 'after binary']);
    for (const text of texts) client.send(text);
    await waitFor('every message at the server', () => atServer.length === texts.length);
    expect(atServer).toEqual(texts);
    expect(errors).toEqual([]);
    client.terminate();
  });

  it('exchanges binary messages of every length encoding, whole and fragmented, beside text', async () => {
    const { client, server, received, binary, errors } = await connected();
    const atServer: Buffer[] = [];
    server.on('message', (data, isBinary) => atServer.push(isBinary ? (data as Buffer) : Buffer.from(`(text) ${data.toString()}`)));
    const buffers = [Buffer.from([0x30, 0x00]), Buffer.alloc(126, 7), Buffer.alloc(65_535, 8), Buffer.alloc(70_000, 9)];
    for (const b of buffers) server.send(b, { binary: true });
    server.send(Buffer.from([1, 2]), { binary: true, fin: false });
    server.send(Buffer.from([3]), { binary: true, fin: true });
    server.send('text between');
    await waitFor('every binary message at the client', () => binary.length === buffers.length + 1 && received.length === 1);
    expectSameBuffers(binary, [...buffers, Buffer.from([1, 2, 3])]);
    expect(received).toEqual(['text between']);
    for (const b of buffers) client.sendBinary(b);
    await waitFor('every binary message at the server', () => atServer.length === buffers.length);
    expectSameBuffers(atServer, buffers);
    expect(errors).toEqual([]);
    client.terminate();
  });

  it('asks for a subprotocol and accepts the server choosing it', async () => {
    const { client, server, errors } = await connected('mqtt');
    expect(server.protocol).toBe('mqtt');
    expect(client.open).toBe(true);
    expect(errors).toEqual([]);
    client.terminate();
  });

  it('joins fragments, answers pings and stays open', async () => {
    const { client, server, received, errors } = await connected();
    server.send('frag', { fin: false });
    server.ping(Buffer.from('are you there'));
    server.send('mented ', { fin: false });
    server.send('テキスト', { fin: true });
    const pong = new Promise<string>((resolve) => server.once('pong', (data) => resolve(data.toString())));
    expect(await pong).toBe('are you there');
    await waitFor('the joined message', () => received.length === 1);
    expect(received).toEqual(['fragmented テキスト']);
    expect(client.open).toBe(true);
    expect(errors).toEqual([]);
    client.terminate();
  });

  it('answers a close and reports it once; terminate ends it from our side', async () => {
    const first = await connected();
    const code = new Promise<number>((resolve) => first.server.once('close', (c) => resolve(c)));
    first.server.close(1001, 'going away');
    expect(await code).toBe(1001);
    await waitFor('onclose', () => first.closed());
    expect(first.client.open).toBe(false);
    expect(first.errors).toEqual([]);

    const second = await connected();
    const gone = new Promise<void>((resolve) => second.server.once('close', () => resolve()));
    second.client.terminate();
    await gone;
    await waitFor('onclose', () => second.closed());
  });

  it('reports a refused handshake as an error, then closes', async () => {
    const client = new RawWebSocket(url.replace('/ws', '/elsewhere'));
    const errors: Error[] = [];
    let closes = 0;
    client.onerror = (error) => errors.push(error);
    client.onclose = () => (closes += 1);
    await waitFor('the close', () => closes > 0);
    expect(errors.map((e) => e.message)).toEqual([expect.stringMatching(/handshake refused: HTTP\/1\.1 400/)]);
    expect(closes).toBe(1);
    expect(client.open).toBe(false);
  });
});
