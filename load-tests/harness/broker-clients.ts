/**
 * Minimal MQTT and NATS clients over WebSocket (raw-websocket.ts), built on
 * the one parser of each wire format (mqtt-wire.ts, nats-wire.ts): what a
 * display needs (connect, subscribe, receive) and what the benchmark's
 * publisher needs (publish several messages in one WebSocket message, and
 * know the server has read them). Measuring tools, not libraries: no
 * reconnection, no QoS above 0, no TLS.
 */
import { MQTT_SUBPROTOCOL, MqttReader, PINGREQ_PACKET, connectPacket, disconnectPacket, publishPacket, subscribePacket, type MqttPacket, type MqttVersion } from './mqtt-wire.js';
import { NatsReader, PING_COMMAND, PONG_COMMAND, connectCommand, pubCommand, subCommand, type NatsOp } from './nats-wire.js';
import { RawWebSocket } from './raw-websocket.js';

/** What both clients share: a socket, a first error, a close, and steps that each wait for one answer. */
abstract class BrokerClient {
  /** A message on a subscription: its topic or subject and its payload (a view, valid only during the call). */
  onmessage: (topic: string, payload: Buffer) => void = () => undefined;
  /** Called once when the connection ends; `error` when it ended on one. */
  onclose: (error: Error | null) => void = () => undefined;

  protected readonly ws: RawWebSocket;
  private failure: Error | null = null;
  private closed = false;
  /** Waiters for the next answer of a kind ('open', 'connack', 'PONG' …), oldest first. */
  private readonly waiters: { kind: string; resolve: (value: unknown) => void; reject: (error: Error) => void; timer: NodeJS.Timeout }[] = [];

  protected constructor(url: string, subprotocol: string | null) {
    this.ws = new RawWebSocket(url, subprotocol);
    this.ws.onopen = () => this.answer('open', undefined);
    this.ws.onerror = (error) => (this.failure ??= error);
    this.ws.onclose = () => {
      if (this.closed) return;
      this.closed = true;
      const error = this.failure ?? new Error('connection closed');
      for (const w of this.waiters.splice(0)) {
        clearTimeout(w.timer);
        w.reject(error);
      }
      this.onclose(this.failure);
    };
  }

  get open(): boolean {
    return this.ws.open && !this.closed;
  }

  /** Bytes the server sent after the WebSocket handshake. */
  get bytesReceived(): number {
    return this.ws.bytesReceived;
  }

  /** Socket reads after the WebSocket handshake. */
  get readsReceived(): number {
    return this.ws.readsReceived;
  }

  /** Ends the connection at once. */
  terminate(): void {
    this.ws.terminate();
  }

  /** Writes bytes already in the wire format (operations built beforehand) as one WebSocket message. */
  sendRaw(bytes: Buffer): void {
    this.ws.sendBinary(bytes);
  }

  /** Ends the connection on a protocol error; waiters and onclose get `error`. */
  protected fail(error: Error): void {
    this.failure ??= error;
    this.ws.terminate();
  }

  /** Resolves with the next answer of `kind`; rejects after `timeoutMs` or when the connection ends. */
  protected wait<T>(kind: string, timeoutMs: number): Promise<T> {
    if (this.closed) return Promise.reject(this.failure ?? new Error('connection closed'));
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiters.findIndex((w) => w.timer === timer);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error(`no ${kind} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push({ kind, resolve: resolve as (value: unknown) => void, reject, timer });
    });
  }

  /** Hands `value` to the oldest waiter of `kind`; false when nobody waits for one. */
  protected answer(kind: string, value: unknown): boolean {
    const i = this.waiters.findIndex((w) => w.kind === kind);
    if (i < 0) return false;
    const [w] = this.waiters.splice(i, 1);
    clearTimeout(w!.timer);
    w!.resolve(value);
    return true;
  }

  /** Runs the connection's opening steps; on any failure the socket is closed and the error thrown. */
  protected static async opening<C extends BrokerClient>(client: C, steps: (client: C) => Promise<void>): Promise<C> {
    try {
      await steps(client);
      return client;
    } catch (error) {
      client.terminate();
      throw error;
    }
  }
}

export interface MqttConnectOptions {
  clientId: string;
  version: MqttVersion;
  /** 0 (default): no keep-alive, the broker never drops a silent display. */
  keepAliveSeconds?: number;
  timeoutMs?: number;
}

/** An MQTT client over WebSocket (subprotocol `mqtt`), QoS 0. */
export class MqttClient extends BrokerClient {
  private readonly reader: MqttReader;
  private nextPacketId = 1;

  private constructor(
    url: string,
    readonly version: MqttVersion,
  ) {
    super(url, MQTT_SUBPROTOCOL);
    this.reader = new MqttReader(version);
    this.ws.onbinary = (data) => {
      try {
        this.reader.push(data, this.onPacket);
      } catch (error) {
        this.fail(error as Error);
      }
    };
  }

  /** Opens the WebSocket and sends CONNECT; resolves once the broker accepted it (CONNACK 0). */
  static connect(url: string, options: MqttConnectOptions): Promise<MqttClient> {
    const timeoutMs = options.timeoutMs ?? 10_000;
    return BrokerClient.opening(new MqttClient(url, options.version), async (client) => {
      await client.wait('open', timeoutMs);
      const connack = client.wait<Extract<MqttPacket, { type: 'connack' }>>('connack', timeoutMs);
      client.ws.sendBinary(connectPacket(options));
      const ack = await connack;
      if (ack.reasonCode !== 0) throw new Error(`CONNACK refused: code ${ack.reasonCode}`);
    });
  }

  /** SUBSCRIBE to one topic filter; resolves with the granted QoS, throws on a refusal (0x80 and up). */
  async subscribe(topic: string, qos: 0 | 1 | 2 = 0, timeoutMs = 10_000): Promise<number> {
    const packetId = this.nextPacketId++;
    const suback = this.wait<Extract<MqttPacket, { type: 'suback' }>>(`suback ${packetId}`, timeoutMs);
    this.ws.sendBinary(subscribePacket({ packetId, topic, qos, version: this.version }));
    const granted = (await suback).reasonCodes[0];
    if (granted === undefined || granted >= 0x80) throw new Error(`SUBACK refused ${topic}: code ${granted}`);
    return granted;
  }

  /** PUBLISH at QoS 0, every message of `messages` in one WebSocket message (several packets per message is allowed). */
  publishMany(messages: { topic: string; payload: Buffer | string }[]): void {
    this.ws.sendBinary(Buffer.concat(messages.map((m) => publishPacket({ ...m, version: this.version }))));
  }

  /** PINGREQ → PINGRESP: everything sent before has been read by the broker. */
  async ping(timeoutMs = 10_000): Promise<void> {
    const pong = this.wait<void>('pingresp', timeoutMs);
    this.ws.sendBinary(PINGREQ_PACKET);
    await pong;
  }

  /** DISCONNECT, then the socket closes. */
  disconnect(): void {
    this.ws.sendBinary(disconnectPacket(this.version));
    this.terminate();
  }

  private readonly onPacket = (packet: MqttPacket) => {
    switch (packet.type) {
      case 'publish':
        this.onmessage(packet.topic, packet.payload);
        return;
      case 'connack':
        this.answer('connack', packet);
        return;
      case 'suback':
        this.answer(`suback ${packet.packetId}`, packet);
        return;
      case 'pingresp':
        this.answer('pingresp', undefined);
        return;
      case 'disconnect':
        this.fail(new Error(`the broker disconnected: reason ${packet.reasonCode}`));
        return;
      default:
        this.fail(new Error(`unexpected MQTT packet type ${packet.code}`));
    }
  };
}

/** A NATS client over NATS's WebSocket listener. */
export class NatsClient extends BrokerClient {
  private readonly reader = new NatsReader();
  /** The server's INFO. */
  info: Record<string, unknown> = {};
  private nextSid = 1;

  private constructor(url: string) {
    super(url, null);
    this.ws.onbinary = (data) => this.receive(data);
    // nats-server sends binary messages; text would carry the same stream.
    this.ws.onmessage = (text) => this.receive(Buffer.from(text, 'utf8'));
  }

  /** Opens the WebSocket, waits for INFO, sends CONNECT and PING; resolves at the PONG (the server took CONNECT). */
  static connect(url: string, options: { name: string; timeoutMs?: number }): Promise<NatsClient> {
    const timeoutMs = options.timeoutMs ?? 10_000;
    return BrokerClient.opening(new NatsClient(url), async (client) => {
      // INFO may come in the same read as the end of the handshake: wait for both from the start.
      const info = client.wait<Record<string, unknown>>('INFO', timeoutMs);
      info.catch(() => undefined); // awaited below, unless the socket never opens
      await client.wait('open', timeoutMs);
      client.info = await info;
      const pong = client.wait('PONG', timeoutMs);
      client.ws.sendBinary(Buffer.from(connectCommand({ name: options.name, echo: false }) + PING_COMMAND, 'latin1'));
      await pong;
    });
  }

  /** SUB, then PING: resolves once the server has the subscription. Returns the sid. */
  async subscribe(subject: string, timeoutMs = 10_000): Promise<string> {
    const sid = String(this.nextSid++);
    const pong = this.wait('PONG', timeoutMs);
    this.ws.sendBinary(Buffer.from(subCommand(subject, sid) + PING_COMMAND, 'latin1'));
    await pong;
    return sid;
  }

  /** PUB of every message in one WebSocket message. */
  publishMany(messages: { subject: string; payload: Buffer | string }[]): void {
    this.ws.sendBinary(Buffer.concat(messages.map((m) => pubCommand(m.subject, m.payload))));
  }

  /** PING → PONG: everything sent before has been read by the server. */
  async flush(timeoutMs = 10_000): Promise<void> {
    const pong = this.wait('PONG', timeoutMs);
    this.ws.sendBinary(Buffer.from(PING_COMMAND, 'latin1'));
    await pong;
  }

  private receive(data: Buffer): void {
    try {
      this.reader.push(data, this.onOp);
    } catch (error) {
      this.fail(error as Error);
    }
  }

  private readonly onOp = (op: NatsOp) => {
    switch (op.op) {
      case 'MSG':
      case 'HMSG':
        this.onmessage(op.subject, op.payload);
        return;
      case 'PING':
        this.ws.sendBinary(Buffer.from(PONG_COMMAND, 'latin1'));
        return;
      case 'PONG':
        this.answer('PONG', undefined);
        return;
      case 'INFO':
        if (!this.answer('INFO', op.info)) this.info = op.info;
        return;
      case '+OK':
        return;
      case '-ERR':
        this.fail(new Error(`nats-server: ${op.message}`));
        return;
    }
  };
}
