import type { Namespace, Socket } from 'socket.io';

/** What a uWebSockets.js server offers: one message to every WebSocket subscribed to a topic. */
export type TopicPublish = (topic: string, message: string) => void;

/** socket.io-parser's EVENT packet type. */
const EVENT_PACKET = 2;
/**
 * How Socket.IO names the uWS topic of a room (socket.io/dist/uws.js, 4.8):
 * the namespace and the room joined by an ASCII unit separator. Each
 * WebSocket is subscribed to the topics of its rooms when it joins them.
 */
const topicOf = (nsp: string, room: string) => `${nsp}\x1f${room}`;

/**
 * Emits to every socket of a room on this node only (as `nsp.local.to(room)`),
 * the event encoded once.
 *
 * Why not Socket.IO's own broadcast: on uWebSockets.js it already publishes
 * the encoded packet to the room's topic once, but then walks every socket of
 * the room (a Set of all their ids built per emit) to find the few still on
 * HTTP long-polling. With thousands of displays in a clinic that walk was the
 * largest cost of a fan-out in JavaScript (README, Benchmarks: about a tenth
 * of a hub node's CPU at 2,000 displays). Here the namespace keeps the sockets
 * that are not on WebSocket apart, so an emit is one publish plus one emit
 * per such socket.
 *
 * Until `useTopics` is called (and on Node's HTTP server, which has no
 * topics) it is Socket.IO's `nsp.local.to(room).emit`.
 */
export class LocalBroadcast {
  /** Sockets whose transport is not (yet) WebSocket: they are not subscribed to topics. */
  private readonly notOnWebSocket = new Set<Socket>();
  private publish: TopicPublish | null = null;

  constructor(private readonly nsp: Namespace) {
    nsp.on('connection', (socket) => {
      if (socket.conn.transport.name === 'websocket') return;
      this.notOnWebSocket.add(socket);
      // Socket.IO subscribes the socket to its rooms' topics on the same event, in the same turn.
      socket.conn.once('upgrade', () => this.notOnWebSocket.delete(socket));
      socket.once('disconnect', () => this.notOnWebSocket.delete(socket));
    });
  }

  /** From now on, publish to the rooms' topics (uWebSockets.js). */
  useTopics(publish: TopicPublish): void {
    this.publish = publish;
  }

  /** closeRoomTransports, in this namespace. */
  closeTransports(room: string): void {
    closeRoomTransports(this.nsp, room);
  }

  emit(room: string, event: string, payload: unknown): void {
    if (!this.publish) {
      (this.nsp.local.to(room) as unknown as { emit(event: string, payload: unknown): boolean }).emit(event, payload);
      return;
    }
    const [encoded] = this.nsp.server.encoder.encode({ type: EVENT_PACKET, nsp: this.nsp.name, data: [event, payload] }) as [string];
    // "4": an Engine.IO message, as Socket.IO's own uWS publish writes it.
    this.publish(topicOf(this.nsp.name, room), `4${encoded}`);
    for (const socket of this.notOnWebSocket) {
      if (socket.rooms.has(room)) (socket as unknown as { emit(event: string, payload: unknown): boolean }).emit(event, payload);
    }
  }
}

/**
 * Closes the transport of every socket of a room on this node, without a
 * Socket.IO disconnect packet: the clients see "transport close" and
 * reconnect by themselves (as when a node drains).
 */
export function closeRoomTransports(nsp: Namespace, room: string): void {
  for (const socket of nsp.sockets.values()) if (socket.rooms.has(room)) socket.conn.close();
}
