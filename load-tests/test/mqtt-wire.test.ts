import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MqttClient } from '../harness/broker-clients.js';
import { startMosquitto, type ComparisonServer } from '../harness/comparison-servers.js';
import { MQTT_SUBPROTOCOL, MqttFramingError, MqttReader, connectPacket, publishPacket, subscribePacket, type MqttPacket, type MqttVersion } from '../harness/mqtt-wire.js';
import { RawWebSocket } from '../harness/raw-websocket.js';

/**
 * The one MQTT parser of the load tests (harness/mqtt-wire.ts) and the
 * minimal client built on it, against a real Mosquitto (Debian's, started on
 * free loopback ports with its own configuration, as the benchmark starts
 * it), MQTT 3.1.1 and 5 over WebSocket; then the reader alone on streams cut
 * at every byte.
 */
const dir = mkdtempSync(join(tmpdir(), 'mqtt-wire-'));
let mosquitto: ComparisonServer;

beforeAll(async () => {
  mosquitto = await startMosquitto(dir);
}, 30_000);

afterAll(async () => {
  await mosquitto?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const PAYLOADS = [
  '{"seq":1,"type":"ticket.called","ticket":{"number":"A-001","room":"r1"}}',
  '第1診察室へお入りください',
  // Past 16,383 bytes the remaining length takes 3 bytes.
  'x'.repeat(70_000),
  '',
];

describe.each([4, 5] as MqttVersion[])('MQTT level %i against Mosquitto over WebSocket', (version) => {
  it('connects, subscribes at QoS 0 and receives what is published, in order and byte for byte', async () => {
    const display = await MqttClient.connect(mosquitto.displayUrl, { clientId: `display-v${version}`, version });
    const received: { topic: string; payload: string }[] = [];
    const all = new Promise<void>((resolve) => {
      display.onmessage = (topic, payload) => {
        received.push({ topic, payload: payload.toString('utf8') });
        if (received.length === PAYLOADS.length) resolve();
      };
    });
    expect(await display.subscribe('clinic/bench/queue')).toBe(0);

    const publisher = await MqttClient.connect(mosquitto.publishUrl, { clientId: `publisher-v${version}`, version });
    publisher.publishMany(PAYLOADS.map((payload) => ({ topic: 'clinic/bench/queue', payload })));
    publisher.publishMany([{ topic: 'clinic/other/queue', payload: 'not for the display' }]);
    await publisher.ping();
    await all;
    // Anything more (the other topic) would have come before the answer to this ping.
    await display.ping();
    expect(received.map((r) => r.topic)).toEqual(PAYLOADS.map(() => 'clinic/bench/queue'));
    expect(received.map((r) => r.payload.length)).toEqual(PAYLOADS.map((p) => p.length));
    expect(received.map((r) => r.payload)).toEqual(PAYLOADS);
    expect(display.open && publisher.open).toBe(true);
    display.disconnect();
    publisher.disconnect();
  });

  it('reports a refused subscription (a topic filter with # inside): 3.1.1 closes, 5 sends DISCONNECT with its reason', async () => {
    const client = await MqttClient.connect(mosquitto.displayUrl, { clientId: `refused-v${version}`, version });
    const closed = new Promise<Error | null>((resolve) => (client.onclose = resolve));
    // 0x81: Malformed Packet (MQTT 5 §2.4).
    const reason = version === 5 ? 'the broker disconnected: reason 129' : 'connection closed';
    await expect(client.subscribe('clinic/#/queue')).rejects.toThrow(reason);
    expect((await closed)?.message ?? 'connection closed').toBe(reason);
    expect(client.open).toBe(false);
  });
});

it('CONNACK of the real broker, read by the reader from the raw WebSocket stream (MQTT 5 properties included)', async () => {
  const ws = new RawWebSocket(mosquitto.displayUrl, MQTT_SUBPROTOCOL);
  const packets: MqttPacket[] = [];
  const reader = new MqttReader(5);
  const both = new Promise<void>((resolve) => {
    ws.onbinary = (data) =>
      reader.push(data, (p) => {
        packets.push(p);
        if (packets.length === 2) resolve();
      });
  });
  await new Promise<void>((resolve) => (ws.onopen = resolve));
  ws.sendBinary(Buffer.concat([connectPacket({ clientId: 'raw-v5', version: 5 }), subscribePacket({ packetId: 7, topic: 'a/b', version: 5 })]));
  await both;
  expect(packets).toEqual([
    { type: 'connack', sessionPresent: false, reasonCode: 0 },
    { type: 'suback', packetId: 7, reasonCodes: [0] },
  ]);
  ws.terminate();
});

describe('MqttReader on a stream cut anywhere', () => {
  const stream = Buffer.concat([
    Buffer.from([0x20, 0x02, 0x00, 0x00]), // CONNACK
    publishPacket({ topic: 't/1', payload: 'あいう', version: 4 }),
    publishPacket({ topic: 't/2', payload: 'y'.repeat(200), version: 4 }),
    Buffer.from([0xd0, 0x00]), // PINGRESP
  ]);
  const expected = ['connack', 'publish t/1 あいう', `publish t/2 ${'y'.repeat(200)}`, 'pingresp'];
  const describePacket = (p: MqttPacket) => (p.type === 'publish' ? `publish ${p.topic} ${p.payload.toString('utf8')}` : p.type);

  it('gives the same packets whatever the chunks', () => {
    for (let cut = 1; cut < stream.length; cut++) {
      const reader = new MqttReader(4);
      const seen: string[] = [];
      // The payload is a view of the chunk: read it during the callback, as the generators do.
      reader.push(Buffer.from(stream.subarray(0, cut)), (p) => seen.push(describePacket(p)));
      reader.push(Buffer.from(stream.subarray(cut)), (p) => seen.push(describePacket(p)));
      expect(seen, `cut at ${cut}`).toEqual(expected);
    }
    const byteByByte = new MqttReader(4);
    const seen: string[] = [];
    for (const byte of stream) byteByByte.push(Buffer.from([byte]), (p) => seen.push(describePacket(p)));
    expect(seen).toEqual(expected);
  });

  it('reads a QoS 1 PUBLISH (packet id) and a MQTT 5 PUBLISH with properties', () => {
    const qos1 = Buffer.concat([Buffer.from([0x32, 3 + 2 + 2]), Buffer.from([0, 1, 0x74]), Buffer.from([0x12, 0x34]), Buffer.from('ok')]);
    const v5 = Buffer.concat([Buffer.from([0x30, 3 + 3 + 2]), Buffer.from([0, 1, 0x74]), Buffer.from([2, 0x01, 0x01]), Buffer.from('ok')]);
    const seen: MqttPacket[] = [];
    new MqttReader(4).push(qos1, (p) => seen.push({ ...p, ...(p.type === 'publish' ? { payload: Buffer.from(p.payload) } : {}) }));
    new MqttReader(5).push(v5, (p) => seen.push({ ...p, ...(p.type === 'publish' ? { payload: Buffer.from(p.payload) } : {}) }));
    expect(seen).toEqual([
      { type: 'publish', topic: 't', payload: Buffer.from('ok'), qos: 1, retain: false, dup: false, packetId: 0x1234 },
      { type: 'publish', topic: 't', payload: Buffer.from('ok'), qos: 0, retain: false, dup: false, packetId: null },
    ]);
  });

  it('refuses bytes that are not MQTT', () => {
    expect(() => new MqttReader(4).push(Buffer.from([0x00, 0x00]), () => undefined)).toThrow(MqttFramingError);
    expect(() => new MqttReader(4).push(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]), () => undefined)).toThrow(/malformed remaining length/);
    expect(() => new MqttReader(4).push(Buffer.from([0x30, 0x02, 0x00, 0x09]), () => undefined)).toThrow(/topic beyond the packet/);
    expect(() => new MqttReader(4).push(Buffer.from([0x36, 0x00]), () => undefined)).toThrow(MqttFramingError);
  });
});
