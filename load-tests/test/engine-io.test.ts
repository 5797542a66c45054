import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  PONG,
  FramingError,
  ackFrame,
  connectFrame,
  decodeEngine,
  decodeFrame,
  decodeSocketPacket,
  disconnectFrame,
  encodeEngine,
  encodeSocketPacket,
  eventFrame,
  eventPayload,
  eventPrefix,
  websocketUrl,
} from '../harness/engine-io.js';

describe('Engine.IO v4 framing', () => {
  it('encodes and decodes the packet type digit', () => {
    expect(encodeEngine('pong')).toBe('3');
    expect(encodeEngine('pong', 'probe')).toBe('3probe');
    expect(encodeEngine('message', '2["x"]')).toBe('42["x"]');
    expect(decodeEngine('2')).toEqual({ type: 'ping', data: '' });
    expect(decodeEngine('42["x"]')).toEqual({ type: 'message', data: '2["x"]' });
    expect(PONG).toBe('3');
  });

  it('rejects what is not an Engine.IO packet', () => {
    expect(() => decodeEngine('x')).toThrow(FramingError);
    expect(() => decodeEngine('')).toThrow(FramingError);
    expect(() => decodeEngine('9')).toThrow(FramingError);
  });

  it('decodes the open packet', () => {
    const frame = decodeFrame('0{"sid":"abc","upgrades":[],"pingInterval":10000,"pingTimeout":5000,"maxPayload":1048576}');
    expect(frame).toEqual({
      kind: 'open',
      handshake: { sid: 'abc', upgrades: [], pingInterval: 10000, pingTimeout: 5000, maxPayload: 1048576 },
    });
    expect(() => decodeFrame('0{"upgrades":[]}')).toThrow(FramingError);
    expect(() => decodeFrame('0not json')).toThrow(FramingError);
  });

  it('decodes ping, pong, close and noop', () => {
    expect(decodeFrame('2')).toEqual({ kind: 'ping', data: '' });
    expect(decodeFrame('3probe')).toEqual({ kind: 'pong', data: 'probe' });
    expect(decodeFrame('1')).toEqual({ kind: 'close' });
    expect(decodeFrame('6')).toEqual({ kind: 'noop' });
  });

  it('imports nothing, so k6 loads the same file the Node harness runs', () => {
    // No Node API either: load-tests/k6/tsconfig.json type-checks it without Node's types.
    const source = readFileSync(resolve(import.meta.dirname, '../harness/engine-io.ts'), 'utf8');
    expect(source).not.toMatch(/^\s*import\s/m);
  });

  it('builds the WebSocket URL of a hub', () => {
    expect(websocketUrl('http://127.0.0.1:8080')).toBe('ws://127.0.0.1:8080/socket.io/?EIO=4&transport=websocket');
    expect(websocketUrl('https://hub.example/')).toBe('wss://hub.example/socket.io/?EIO=4&transport=websocket');
  });
});

describe('Socket.IO v5 framing', () => {
  it('connects to a namespace with auth', () => {
    expect(connectFrame('/queue', { token: 't' })).toBe('40/queue,{"token":"t"}');
    expect(connectFrame('/queue')).toBe('40/queue,');
    expect(connectFrame('/', { token: 't' })).toBe('40{"token":"t"}');
  });

  it('decodes the connect answer and a refusal', () => {
    expect(decodeFrame('40/queue,{"sid":"s1"}')).toEqual({ kind: 'connect', nsp: '/queue', data: { sid: 's1' } });
    expect(decodeFrame('40{"sid":"s2"}')).toEqual({ kind: 'connect', nsp: '/', data: { sid: 's2' } });
    expect(decodeFrame('44/queue,{"message":"AUTH_INVALID","data":{"code":"AUTH_INVALID"}}')).toEqual({
      kind: 'connect_error',
      nsp: '/queue',
      data: { message: 'AUTH_INVALID', data: { code: 'AUTH_INVALID' } },
    });
    expect(decodeFrame('41/queue,')).toEqual({ kind: 'disconnect', nsp: '/queue' });
  });

  it('carries auth with a clinic, and Japanese text, unchanged', () => {
    expect(connectFrame('/chat', { token: 't', clinic: 'demo' })).toBe('40/chat,{"token":"t","clinic":"demo"}');
    const frame = eventFrame('/chat', 'chat:send', [{ threadId: 'patient.x1', text: '本日の受付について' }], 12);
    expect(frame).toBe('42/chat,12["chat:send",{"threadId":"patient.x1","text":"本日の受付について"}]');
    expect(decodeFrame(frame)).toEqual({ kind: 'event', nsp: '/chat', name: 'chat:send', args: [{ threadId: 'patient.x1', text: '本日の受付について' }], id: 12 });
  });

  it('encodes events with and without an ack id', () => {
    expect(eventFrame('/queue', 'queue:sync', [{}])).toBe('42/queue,["queue:sync",{}]');
    expect(eventFrame('/queue', 'queue:call-next', [{ dept: 'gp', room: 'r1' }], 7)).toBe('42/queue,7["queue:call-next",{"dept":"gp","room":"r1"}]');
    expect(eventFrame('/', 'hello')).toBe('42["hello"]');
    expect(ackFrame('/queue', 3, [{ ok: true }])).toBe('43/queue,3[{"ok":true}]');
    expect(disconnectFrame('/queue')).toBe('41/queue,');
  });

  it('decodes a queue event broadcast', () => {
    const event = { seq: 12, type: 'ticket.called', at: 1, ticket: { number: 'A-012', room: 'r1' } };
    const frame = decodeFrame(`42/queue,${JSON.stringify(['queue:event', event])}`);
    expect(frame).toEqual({ kind: 'event', nsp: '/queue', name: 'queue:event', args: [event] });
  });

  it('takes the payload of a broadcast by its prefix', () => {
    const prefix = eventPrefix('/queue', 'queue:event');
    expect(prefix).toBe('42/queue,["queue:event",');
    const event = { seq: 3, type: 'ticket.called', ticket: { number: 'A-003' } };
    const frame = eventFrame('/queue', 'queue:event', [event]);
    expect(JSON.parse(eventPayload(frame, prefix)!)).toEqual(event);
    expect(eventPayload(eventFrame('/queue', 'queue:announcement', [event]), prefix)).toBeNull();
    expect(eventPayload(eventFrame('/other', 'queue:event', [event]), prefix)).toBeNull();
    expect(eventPayload('42/queue,["queue:event",{"seq":1}', prefix)).toBeNull();
    expect(eventPrefix('/', 'x')).toBe('42["x",');
  });

  it('decodes acks, with multi-digit ids', () => {
    expect(decodeFrame('43/queue,1234[{"ok":true,"event":{"seq":5}}]')).toEqual({
      kind: 'ack',
      nsp: '/queue',
      id: 1234,
      args: [{ ok: true, event: { seq: 5 } }],
    });
    expect(decodeFrame('42/queue,9["ask",1]')).toEqual({ kind: 'event', nsp: '/queue', name: 'ask', args: [1], id: 9 });
  });

  it('round-trips packets', () => {
    const packets = [
      { type: 'connect', nsp: '/queue', data: { token: 'x' } },
      { type: 'event', nsp: '/queue', data: ['a', { b: [1, 2] }] },
      { type: 'event', nsp: '/', id: 0, data: ['a'] },
      { type: 'ack', nsp: '/chat', id: 42, data: [null] },
      { type: 'disconnect', nsp: '/queue' },
    ] as const;
    for (const packet of packets) expect(decodeSocketPacket(encodeSocketPacket(packet))).toEqual(packet);
  });

  it('rejects binary packets, bad JSON and nameless events', () => {
    expect(() => decodeFrame('451-/queue,["x",{"_placeholder":true,"num":0}]')).toThrow(FramingError);
    expect(() => encodeSocketPacket({ type: 'binary_event', nsp: '/' })).toThrow(FramingError);
    expect(() => decodeFrame('42/queue,["x"')).toThrow(FramingError);
    expect(() => decodeFrame('42/queue,[1]')).toThrow(FramingError);
    expect(() => decodeFrame('43/queue,[]')).toThrow(FramingError);
    expect(() => decodeFrame('4x')).toThrow(FramingError);
    expect(() => encodeSocketPacket({ type: 'ack', nsp: '/', id: -1 })).toThrow(FramingError);
  });
});
