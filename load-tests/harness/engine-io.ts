/**
 * Engine.IO v4 + Socket.IO v5 framing over a plain WebSocket, as pure
 * functions: no Node API, no socket, so the Node harness and the k6 scripts
 * use the same code.
 *
 * One WebSocket text message is one Engine.IO packet: a type digit then its
 * data. A Socket.IO packet travels inside an Engine.IO "message" (4):
 *
 *   0{"sid":"…","pingInterval":10000,…}     server → open
 *   2 / 3                                   ping (server) / pong (client)
 *   40/queue,{"token":"…"}                   client → connect to /queue with auth
 *   40/queue,{"sid":"…"}                     server → connected
 *   44/queue,{"message":"…","data":{…}}      server → connect refused
 *   42/queue,["queue:event",{…}]             event
 *   42/queue,7["queue:call-next",{…}]        event expecting ack 7
 *   43/queue,7[{"ok":true,…}]                ack 7
 *
 * Binary packets (5x/6x) are not used by the hub and are rejected.
 */

/** Engine.IO v4 packet types, by their wire digit. */
export const ENGINE_TYPES = ['open', 'close', 'ping', 'pong', 'message', 'upgrade', 'noop'] as const;
export type EngineType = (typeof ENGINE_TYPES)[number];

/** Socket.IO v5 packet types, by their wire digit. */
export const SOCKET_TYPES = ['connect', 'disconnect', 'event', 'ack', 'connect_error', 'binary_event', 'binary_ack'] as const;
export type SocketType = (typeof SOCKET_TYPES)[number];

/** What a client must send back for a server ping. */
export const PONG = '3';
/** Query string of a direct WebSocket connection (no long-polling first). */
export const WEBSOCKET_PATH = '/socket.io/?EIO=4&transport=websocket';

export interface EngineOpen {
  sid: string;
  upgrades: string[];
  pingInterval: number;
  pingTimeout: number;
  maxPayload: number;
}

export interface SocketPacket {
  type: SocketType;
  /** "/" for the main namespace. */
  nsp: string;
  /** Ack id: on an event that expects an ack, and on the ack itself. */
  id?: number;
  data?: unknown;
}

export type Frame =
  | { kind: 'open'; handshake: EngineOpen }
  | { kind: 'close' }
  | { kind: 'ping'; data: string }
  | { kind: 'pong'; data: string }
  | { kind: 'noop' }
  | { kind: 'upgrade' }
  | { kind: 'connect'; nsp: string; data: unknown }
  | { kind: 'connect_error'; nsp: string; data: unknown }
  | { kind: 'disconnect'; nsp: string }
  | { kind: 'event'; nsp: string; name: string; args: unknown[]; id?: number }
  | { kind: 'ack'; nsp: string; id: number; args: unknown[] };

export class FramingError extends Error {
  override readonly name = 'FramingError';
}

/** The ws:// URL of a hub's Socket.IO endpoint, from its http:// base URL. */
export function websocketUrl(httpBase: string): string {
  return httpBase.replace(/^http/, 'ws').replace(/\/$/, '') + WEBSOCKET_PATH;
}

export function encodeEngine(type: EngineType, data = ''): string {
  const digit = ENGINE_TYPES.indexOf(type);
  if (digit < 0) throw new FramingError(`unknown Engine.IO packet type ${String(type)}`);
  return `${digit}${data}`;
}

export function decodeEngine(text: string): { type: EngineType; data: string } {
  const type = ENGINE_TYPES[text.charCodeAt(0) - 48];
  if (type === undefined) throw new FramingError(`not an Engine.IO packet: ${preview(text)}`);
  return { type, data: text.slice(1) };
}

/** A Socket.IO packet as the data of an Engine.IO message (without the leading "4"). */
export function encodeSocketPacket(packet: SocketPacket): string {
  const digit = SOCKET_TYPES.indexOf(packet.type);
  if (digit < 0) throw new FramingError(`unknown Socket.IO packet type ${String(packet.type)}`);
  if (packet.type === 'binary_event' || packet.type === 'binary_ack') throw new FramingError('binary packets are not supported');
  let out = String(digit);
  if (packet.nsp && packet.nsp !== '/') out += `${packet.nsp},`;
  if (packet.id !== undefined) {
    if (!Number.isInteger(packet.id) || packet.id < 0) throw new FramingError(`bad ack id ${packet.id}`);
    out += String(packet.id);
  }
  if (packet.data !== undefined) out += JSON.stringify(packet.data);
  return out;
}

/** Parses the data of an Engine.IO message into a Socket.IO packet. */
export function decodeSocketPacket(text: string): SocketPacket {
  const type = SOCKET_TYPES[text.charCodeAt(0) - 48];
  if (type === undefined) throw new FramingError(`not a Socket.IO packet: ${preview(text)}`);
  if (type === 'binary_event' || type === 'binary_ack') throw new FramingError('binary packets are not supported');
  let i = 1;
  let nsp = '/';
  if (text.charAt(i) === '/') {
    const comma = text.indexOf(',', i);
    if (comma < 0) {
      nsp = text.slice(i);
      i = text.length;
    } else {
      nsp = text.slice(i, comma);
      i = comma + 1;
    }
  }
  let id: number | undefined;
  const idStart = i;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) break;
    i++;
  }
  if (i > idStart) id = Number(text.slice(idStart, i));
  let data: unknown;
  if (i < text.length) {
    try {
      data = JSON.parse(text.slice(i));
    } catch {
      throw new FramingError(`bad JSON in Socket.IO packet: ${preview(text)}`);
    }
  }
  const packet: SocketPacket = { type, nsp };
  if (id !== undefined) packet.id = id;
  if (data !== undefined) packet.data = data;
  return packet;
}

/** Decodes one WebSocket text message into what it means for a client. */
export function decodeFrame(text: string): Frame {
  const engine = decodeEngine(text);
  switch (engine.type) {
    case 'open': {
      let handshake: EngineOpen;
      try {
        handshake = JSON.parse(engine.data) as EngineOpen;
      } catch {
        throw new FramingError(`bad open packet: ${preview(text)}`);
      }
      if (typeof handshake?.sid !== 'string') throw new FramingError(`open packet without sid: ${preview(text)}`);
      return { kind: 'open', handshake };
    }
    case 'close':
      return { kind: 'close' };
    case 'ping':
      return { kind: 'ping', data: engine.data };
    case 'pong':
      return { kind: 'pong', data: engine.data };
    case 'noop':
      return { kind: 'noop' };
    case 'upgrade':
      return { kind: 'upgrade' };
    case 'message':
      break;
  }
  const packet = decodeSocketPacket(engine.data);
  switch (packet.type) {
    case 'connect':
      return { kind: 'connect', nsp: packet.nsp, data: packet.data };
    case 'connect_error':
      return { kind: 'connect_error', nsp: packet.nsp, data: packet.data };
    case 'disconnect':
      return { kind: 'disconnect', nsp: packet.nsp };
    case 'event': {
      const [name, ...args] = Array.isArray(packet.data) ? (packet.data as unknown[]) : [];
      if (typeof name !== 'string') throw new FramingError(`event without a name: ${preview(text)}`);
      return packet.id === undefined ? { kind: 'event', nsp: packet.nsp, name, args } : { kind: 'event', nsp: packet.nsp, name, args, id: packet.id };
    }
    case 'ack': {
      if (packet.id === undefined) throw new FramingError(`ack without id: ${preview(text)}`);
      return { kind: 'ack', nsp: packet.nsp, id: packet.id, args: Array.isArray(packet.data) ? (packet.data as unknown[]) : [] };
    }
    default:
      throw new FramingError(`unsupported Socket.IO packet: ${preview(text)}`);
  }
}

/** "40/queue,{auth}": join a namespace, with the handshake auth (the hub wants `{ token }`). */
export function connectFrame(nsp: string, auth?: object): string {
  return encodeEngine('message', encodeSocketPacket(auth === undefined ? { type: 'connect', nsp } : { type: 'connect', nsp, data: auth }));
}

/** "42/queue,[name,...args]", or with an ack id "42/queue,7[...]". */
export function eventFrame(nsp: string, name: string, args: unknown[] = [], ackId?: number): string {
  const packet: SocketPacket = { type: 'event', nsp, data: [name, ...args] };
  if (ackId !== undefined) packet.id = ackId;
  return encodeEngine('message', encodeSocketPacket(packet));
}

/** "43/queue,7[...]": answer a server event that asked for an ack. */
export function ackFrame(nsp: string, id: number, args: unknown[] = []): string {
  return encodeEngine('message', encodeSocketPacket({ type: 'ack', nsp, id, data: args }));
}

/**
 * The exact text every broadcast of `name` on `nsp` starts with (without an
 * ack id): '42/queue,["queue:event",'. A client that receives thousands of
 * them can test this prefix and take the payload with eventPayload() instead
 * of decoding each frame in full.
 */
export function eventPrefix(nsp: string, name: string): string {
  return `${encodeEngine('message', encodeSocketPacket({ type: 'event', nsp }))}[${JSON.stringify(name)},`;
}

/**
 * The JSON text of the arguments after the event name, for a frame that starts
 * with `prefix` (from eventPrefix); null when it does not. For an event with
 * one argument (every hub broadcast) that is the argument's JSON.
 */
export function eventPayload(text: string, prefix: string): string | null {
  if (!text.startsWith(prefix) || text.charCodeAt(text.length - 1) !== 93 /* ] */) return null;
  return text.slice(prefix.length, -1);
}

/** "41/queue,": leave a namespace. */
export function disconnectFrame(nsp: string): string {
  return encodeEngine('message', encodeSocketPacket({ type: 'disconnect', nsp }));
}

function preview(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);
}
