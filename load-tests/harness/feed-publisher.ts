/**
 * The benchmark's side of the limit server and the brokers: the calls of a
 * feed (call-feed.ts), each built before the run into what its server takes
 * (the Engine.IO frames the hub would write; MQTT PUBLISH packets; NATS PUB
 * operations), then written at its time, one WebSocket message per call and
 * server, the call's events back to back as the hub sends a burst.
 */
import type { ComparisonKind, ComparisonServer } from './comparison-servers.js';
import { MqttClient, NatsClient } from './broker-clients.js';
import type { FeedCall } from './call-feed.js';
import { eventPrefix } from './engine-io.js';
import { publishPacket, type MqttVersion } from './mqtt-wire.js';
import { pubCommand } from './nats-wire.js';
import { RawWebSocket } from './raw-websocket.js';

export interface FeedTarget {
  /** The Socket.IO namespace and event the limit's frames are written in (the hub's: `/queue`, `queue:event`). */
  namespace: string;
  event: string;
  /** MQTT topic and NATS subject the displays subscribe to. */
  topic: string;
  subject: string;
  mqttVersion: MqttVersion;
}

export class FeedPublisher {
  /** Why the publisher's connection to a server ended during the run, if it did. */
  readonly errors: string[] = [];
  private closing = false;

  private constructor(
    private readonly messages: (string | Buffer)[],
    private readonly send: (message: string | Buffer) => void,
    private readonly drainAll: () => Promise<void>,
    private readonly closeAll: () => void,
  ) {}

  /** Builds every call's message and connects to each server (every limit node; the one broker). */
  static async connect(kind: ComparisonKind, servers: ComparisonServer[], feed: FeedCall[], target: FeedTarget): Promise<FeedPublisher> {
    if (kind === 'limit') {
      // Exactly the frames the hub writes for a queue event: 42/queue,["queue:event",<event>].
      const prefix = eventPrefix(target.namespace, target.event);
      const messages = feed.map((call) => call.events.map((event) => `${prefix}${event}]`).join('\n'));
      const sockets = await Promise.all(servers.map((s) => openRaw(s.publishUrl)));
      const publisher = new FeedPublisher(
        messages,
        (message) => {
          for (const ws of sockets) ws.send(message as string);
        },
        async () => undefined,
        () => sockets.forEach((ws) => ws.terminate()),
      );
      sockets.forEach((ws, i) => (ws.onclose = () => publisher.lost(`${servers[i]!.name}: publisher connection closed`)));
      return publisher;
    }
    if (kind === 'mosquitto') {
      const messages = feed.map((call) => Buffer.concat(call.events.map((event) => publishPacket({ topic: target.topic, payload: event, version: target.mqttVersion }))));
      const client = await MqttClient.connect(servers[0]!.publishUrl, { clientId: 'bench-publisher', version: target.mqttVersion });
      // The raw packets are ready: write them as they are.
      const publisher = new FeedPublisher(messages, (message) => client.sendRaw(message as Buffer), () => client.ping(), () => client.disconnect());
      client.onclose = (error) => publisher.lost(`mosquitto: publisher connection closed${error ? `: ${error.message}` : ''}`);
      return publisher;
    }
    const messages = feed.map((call) => Buffer.concat(call.events.map((event) => pubCommand(target.subject, event))));
    const client = await NatsClient.connect(servers[0]!.publishUrl, { name: 'bench-publisher' });
    const publisher = new FeedPublisher(messages, (message) => client.sendRaw(message as Buffer), () => client.flush(), () => client.terminate());
    client.onclose = (error) => publisher.lost(`nats-server: publisher connection closed${error ? `: ${error.message}` : ''}`);
    return publisher;
  }

  get calls(): number {
    return this.messages.length;
  }

  /** Writes call `index` of the feed to every server. */
  publish(index: number): void {
    this.send(this.messages[index]!);
  }

  /** Resolves once the server has read everything written (a PING's answer); the limit has no such answer. */
  drain(): Promise<void> {
    return this.drainAll();
  }

  close(): void {
    this.closing = true;
    this.closeAll();
  }

  private lost(error: string): void {
    if (!this.closing && this.errors.length < 10) this.errors.push(error);
  }
}

function openRaw(url: string): Promise<RawWebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new RawWebSocket(url);
    ws.onopen = () => resolve(ws);
    ws.onerror = (error) => reject(new Error(`${url}: ${error.message}`));
    ws.onclose = () => reject(new Error(`${url}: closed before it opened`));
  });
}
