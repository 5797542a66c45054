import type { Socket } from 'socket.io-client';

/**
 * Socket.IO packets written by hand on a connected socket.io-client: for
 * payloads a well-behaved client cannot even build (its encoder walks them
 * recursively), such as JSON nested 5,000 levels deep, sent as text.
 *
 * Packet text as Socket.IO v5 writes it inside an Engine.IO message:
 * `2/queue,7["queue:sync",{…}]` is an event expecting ack 7; the hub answers
 * `3/queue,7[{…}]`.
 */

interface EngineLike {
  send(data: string | Buffer): void;
  on(event: 'message', listener: (data: string | Buffer) => void): void;
  off(event: 'message', listener: (data: string | Buffer) => void): void;
}

const engineOf = (socket: Socket) => (socket.io as unknown as { engine: EngineLike }).engine;
const namespaceOf = (socket: Socket) => (socket as unknown as { nsp: string }).nsp;

/** Ack ids for hand-written packets: far above socket.io-client's own, so they never collide. */
let nextAckId = 1_000_000;

export interface RawReply {
  /** The ack's first argument, parsed; undefined when the hub sent none in time. */
  ack?: { ok: boolean; error?: { code: string; detail?: string } };
  /** True when the transport closed before an answer came. */
  closed: boolean;
}

const nspPart = (nsp: string) => (nsp === '/' ? '' : `${nsp},`);

/** Writes `frames` (the first one names ack `id`) and waits for ack `id`, the transport closing, or the timeout. */
function sendAwaitingAck(socket: Socket, frames: (id: number, nsp: string) => (string | Buffer)[], timeoutMs: number): Promise<RawReply> {
  const id = nextAckId++;
  const nsp = namespaceOf(socket);
  const prefix = `3${nspPart(nsp)}${id}`;
  const engine = engineOf(socket);
  return new Promise((resolve) => {
    const done = (reply: RawReply) => {
      clearTimeout(timer);
      engine.off('message', onMessage);
      socket.io.off('close', onClose);
      resolve(reply);
    };
    const onMessage = (data: string | Buffer) => {
      if (typeof data !== 'string' || !data.startsWith(prefix) || data[prefix.length] !== '[') return;
      const [ack] = JSON.parse(data.slice(prefix.length)) as [RawReply['ack']];
      done({ ack, closed: false });
    };
    const onClose = () => done({ closed: true });
    const timer = setTimeout(() => done({ closed: !socket.connected }), timeoutMs);
    engine.on('message', onMessage);
    socket.io.on('close', onClose);
    for (const frame of frames(id, nsp)) engine.send(frame);
  });
}

const eventText = (event: string, argsText: string) => `[${JSON.stringify(event)}${argsText ? `,${argsText}` : ''}]`;

/**
 * Sends `["<event>", <argsText>]` (argsText is raw JSON text after the event
 * name, e.g. `{"x":[[[]]]}`) on the socket's namespace, expecting an ack.
 */
export function sendRawEvent(socket: Socket, event: string, argsText: string, timeoutMs = 5000): Promise<RawReply> {
  return sendAwaitingAck(socket, (id, nsp) => [`2${nspPart(nsp)}${id}${eventText(event, argsText)}`], timeoutMs);
}

/** Sends an event packet without an ack id: the hub answers a refusal with `hub:error`. */
export function sendRawEventWithoutAck(socket: Socket, event: string, argsText: string): void {
  engineOf(socket).send(`2${nspPart(namespaceOf(socket))}${eventText(event, argsText)}`);
}

/**
 * A binary event: `5<n>-/nsp,id[...]` with `n` placeholders
 * (`{"_placeholder":true,"num":i}`) in argsText, then the attachments.
 */
export function sendRawBinaryEvent(socket: Socket, event: string, argsText: string, attachments: Buffer[], timeoutMs = 5000): Promise<RawReply> {
  return sendAwaitingAck(socket, (id, nsp) => [`5${attachments.length}-${nspPart(nsp)}${id}${eventText(event, argsText)}`, ...attachments], timeoutMs);
}

/** `{"x":[[[…]]]}` with `levels` nested arrays: about 2 bytes a level. */
export function deepArrays(levels: number): string {
  return `{"x":${'['.repeat(levels)}${']'.repeat(levels)}}`;
}

/** `{"a":{"a":…{}…}}` with `levels` nested objects. */
export function deepObjects(levels: number): string {
  return `${'{"a":'.repeat(levels)}{}${'}'.repeat(levels)}`;
}

/**
 * Sends a whole event packet's array as text (`[<name>, <args>…]`), expecting
 * an ack: for names a client cannot send (numbers, objects) and for several
 * arguments.
 */
export function sendRawPacket(socket: Socket, arrayText: string, timeoutMs = 5000): Promise<RawReply> {
  return sendAwaitingAck(socket, (id, nsp) => [`2${nspPart(nsp)}${id}${arrayText}`], timeoutMs);
}
