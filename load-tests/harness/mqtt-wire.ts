/**
 * MQTT 3.1.1 and 5 control packets, as much of them as a display that
 * subscribes at QoS 0 and a publisher need: CONNECT, SUBSCRIBE, PUBLISH
 * (QoS 0 out; any QoS in), PINGREQ, DISCONNECT out; CONNACK, SUBACK,
 * PUBLISH, PINGRESP, DISCONNECT in. Pure functions and one streaming reader,
 * no socket: the load generators and the benchmark's publisher use them over
 * WebSocket (binary messages, subprotocol `mqtt`), where a message may hold
 * several packets or part of one (MQTT 3.1.1 §6, MQTT 5 §6).
 *
 * Checked against a real Mosquitto in load-tests/test/mqtt-wire.test.ts.
 */

/** The WebSocket subprotocol an MQTT client asks for. */
export const MQTT_SUBPROTOCOL = 'mqtt';

/** Protocol levels: 4 is MQTT 3.1.1, 5 is MQTT 5.0. */
export type MqttVersion = 4 | 5;

export const PACKET_TYPES = {
  connect: 1,
  connack: 2,
  publish: 3,
  puback: 4,
  subscribe: 8,
  suback: 9,
  pingreq: 12,
  pingresp: 13,
  disconnect: 14,
} as const;

export type MqttPacket =
  | { type: 'connack'; sessionPresent: boolean; /** 3.1.1 return code or 5 reason code: 0 is accepted. */ reasonCode: number }
  | { type: 'suback'; packetId: number; /** Granted QoS per topic (0–2), or a failure code (0x80 and up). */ reasonCodes: number[] }
  | {
      type: 'publish';
      topic: string;
      /** A view of the reader's buffer, valid only during the callback. */
      payload: Buffer;
      qos: number;
      retain: boolean;
      dup: boolean;
      packetId: number | null;
    }
  | { type: 'pingresp' }
  | { type: 'disconnect'; /** 5: the reason code; 3.1.1 servers never send DISCONNECT (0). */ reasonCode: number }
  /** A packet a QoS 0 subscriber does not expect (PUBACK …): its type number. */
  | { type: 'other'; code: number };

export class MqttFramingError extends Error {
  override readonly name = 'MqttFramingError';
}

/** The Variable Byte Integer of MQTT (1–4 bytes, 7 bits each, least significant first). */
function variableByteInteger(value: number): Buffer {
  if (!Number.isInteger(value) || value < 0 || value > 268_435_455) throw new MqttFramingError(`length ${value} out of range`);
  const bytes: number[] = [];
  do {
    let byte = value % 128;
    value = Math.floor(value / 128);
    if (value > 0) byte |= 0x80;
    bytes.push(byte);
  } while (value > 0);
  return Buffer.from(bytes);
}

function utf8String(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length > 65_535) throw new MqttFramingError('string over 65,535 bytes');
  const out = Buffer.allocUnsafe(2 + bytes.length);
  out.writeUInt16BE(bytes.length, 0);
  bytes.copy(out, 2);
  return out;
}

function packet(firstByte: number, parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([firstByte]), variableByteInteger(body.length), body]);
}

/** MQTT 5's empty property list. */
const NO_PROPERTIES = Buffer.from([0]);

/**
 * CONNECT with a clean session and no will, user or password. `keepAliveSeconds`
 * 0 turns keep-alive off (the server never closes an idle client).
 */
export function connectPacket(options: { clientId: string; version: MqttVersion; keepAliveSeconds?: number }): Buffer {
  const keepAlive = Buffer.allocUnsafe(2);
  keepAlive.writeUInt16BE(options.keepAliveSeconds ?? 0, 0);
  const CLEAN_START = 0x02;
  return packet(PACKET_TYPES.connect << 4, [
    utf8String('MQTT'),
    Buffer.from([options.version, CLEAN_START]),
    keepAlive,
    ...(options.version === 5 ? [NO_PROPERTIES] : []),
    utf8String(options.clientId),
  ]);
}

/** SUBSCRIBE to one topic filter at `qos` (0 for displays). */
export function subscribePacket(options: { packetId: number; topic: string; version: MqttVersion; qos?: 0 | 1 | 2 }): Buffer {
  if (options.packetId < 1 || options.packetId > 65_535) throw new MqttFramingError(`packet id ${options.packetId} out of range`);
  const id = Buffer.allocUnsafe(2);
  id.writeUInt16BE(options.packetId, 0);
  // SUBSCRIBE's fixed header flags are 0b0010 (MQTT 3.1.1 §3.8.1).
  return packet((PACKET_TYPES.subscribe << 4) | 0x02, [
    id,
    ...(options.version === 5 ? [NO_PROPERTIES] : []),
    utf8String(options.topic),
    Buffer.from([options.qos ?? 0]),
  ]);
}

/** PUBLISH at QoS 0 (no packet id, nothing comes back). */
export function publishPacket(options: { topic: string; payload: Buffer | string; version: MqttVersion }): Buffer {
  const payload = typeof options.payload === 'string' ? Buffer.from(options.payload, 'utf8') : options.payload;
  return packet(PACKET_TYPES.publish << 4, [utf8String(options.topic), ...(options.version === 5 ? [NO_PROPERTIES] : []), payload]);
}

export const PINGREQ_PACKET = Buffer.from([PACKET_TYPES.pingreq << 4, 0]);

/** DISCONNECT (5: reason 0, normal disconnection). */
export function disconnectPacket(version: MqttVersion): Buffer {
  return version === 5 ? Buffer.from([PACKET_TYPES.disconnect << 4, 1, 0]) : Buffer.from([PACKET_TYPES.disconnect << 4, 0]);
}

/** Bytes of a Variable Byte Integer at `offset` and its value; null when the bytes are not all there yet. */
function readVariableByteInteger(data: Buffer, offset: number, end: number): { value: number; bytes: number } | null {
  let value = 0;
  let multiplier = 1;
  for (let i = 0; i < 4; i++) {
    if (offset + i >= end) return null;
    const byte = data[offset + i]!;
    value += (byte & 0x7f) * multiplier;
    if ((byte & 0x80) === 0) return { value, bytes: i + 1 };
    multiplier *= 128;
  }
  throw new MqttFramingError('malformed remaining length');
}

/**
 * Splits a byte stream into packets. Feed it each received chunk; it calls
 * `onPacket` for every whole packet and keeps a copy of a partial one for the
 * next chunk. Throws MqttFramingError on bytes that are not MQTT.
 */
export class MqttReader {
  private pending: Buffer | null = null;

  constructor(private readonly version: MqttVersion) {}

  push(chunk: Buffer, onPacket: (packet: MqttPacket) => void): void {
    const data = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = null;
    let offset = 0;
    while (offset < data.length) {
      const length = readVariableByteInteger(data, offset + 1, data.length);
      if (length === null) break;
      const bodyStart = offset + 1 + length.bytes;
      const bodyEnd = bodyStart + length.value;
      if (bodyEnd > data.length) break;
      onPacket(this.decode(data[offset]!, data, bodyStart, bodyEnd));
      offset = bodyEnd;
    }
    // The chunk is a view of the socket's read buffer: keep a copy of what is left.
    if (offset < data.length) this.pending = Buffer.from(data.subarray(offset));
  }

  private decode(first: number, data: Buffer, start: number, end: number): MqttPacket {
    const code = first >> 4;
    const need = (bytes: number) => {
      if (end - start < bytes) throw new MqttFramingError(`packet type ${code} too short (${end - start} bytes)`);
    };
    switch (code) {
      case PACKET_TYPES.connack:
        need(2);
        return { type: 'connack', sessionPresent: (data[start]! & 1) === 1, reasonCode: data[start + 1]! };
      case PACKET_TYPES.suback: {
        need(2);
        let at = start + 2;
        if (this.version === 5) at = this.skipProperties(data, at, end);
        return { type: 'suback', packetId: data.readUInt16BE(start), reasonCodes: [...data.subarray(at, end)] };
      }
      case PACKET_TYPES.publish: {
        need(2);
        const qos = (first >> 1) & 3;
        if (qos === 3) throw new MqttFramingError('PUBLISH with QoS 3');
        const topicLength = data.readUInt16BE(start);
        let at = start + 2 + topicLength;
        if (at > end) throw new MqttFramingError('PUBLISH topic beyond the packet');
        const topic = data.toString('utf8', start + 2, at);
        let packetId: number | null = null;
        if (qos > 0) {
          if (at + 2 > end) throw new MqttFramingError('PUBLISH packet id beyond the packet');
          packetId = data.readUInt16BE(at);
          at += 2;
        }
        if (this.version === 5) at = this.skipProperties(data, at, end);
        return { type: 'publish', topic, payload: data.subarray(at, end), qos, retain: (first & 1) === 1, dup: (first & 8) === 8, packetId };
      }
      case PACKET_TYPES.pingresp:
        return { type: 'pingresp' };
      case PACKET_TYPES.disconnect:
        return { type: 'disconnect', reasonCode: end > start ? data[start]! : 0 };
      default:
        if (code === 0 || code > 15) throw new MqttFramingError(`packet type ${code}`);
        return { type: 'other', code };
    }
  }

  /** MQTT 5: the offset after the property list at `at`. */
  private skipProperties(data: Buffer, at: number, end: number): number {
    const length = readVariableByteInteger(data, at, end);
    if (length === null || at + length.bytes + length.value > end) throw new MqttFramingError('properties beyond the packet');
    return at + length.bytes + length.value;
  }
}
