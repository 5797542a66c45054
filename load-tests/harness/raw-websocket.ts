import { createHash, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

const HANDSHAKE_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const OPCODE = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;
/** Larger frames or messages from the server end the connection (the hub sends a few hundred bytes). */
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/**
 * The client half of RFC 6455 over a plain TCP socket (ws:// only, no
 * extensions), for the load generators: thousands of displays per process,
 * where the `ws` package's per-message cost (a Writable stream, events and
 * Buffers per frame) is what limits how many one core can follow. Text and
 * binary frames both ways (Engine.IO is text; MQTT and NATS over WebSocket
 * are binary), an optional subprotocol (`mqtt`), pings answered, fragments
 * joined, close and errors reported once. Not for anything but measuring: no
 * TLS, no compression, no back-pressure.
 *
 * Checked against the `ws` package's server in load-tests/test/raw-websocket.test.ts.
 */
export class RawWebSocket {
  open = false;
  /** Bytes read after the handshake response: frames and their headers, what the server sent. */
  bytesReceived = 0;
  /** Reads from the socket after the handshake: how many writes of the server's reached us apart. */
  readsReceived = 0;
  onopen: () => void = () => undefined;
  onmessage: (text: string) => void = () => undefined;
  /**
   * A binary message. The Buffer is a view of the read buffer, valid only
   * during the call: a reader that keeps part of it must copy.
   */
  onbinary: (data: Buffer) => void = () => undefined;
  /** Called once, for a failed handshake, a protocol error or a socket error; onclose follows. */
  onerror: (error: Error) => void = () => undefined;
  /** Called once, however the connection ended. */
  onclose: () => void = () => undefined;

  private readonly socket: Socket;
  private readonly key = randomBytes(16).toString('base64');
  private handshakeDone = false;
  private pending: Buffer | null = null;
  private fragments: Buffer[] = [];
  private fragmentBytes = 0;
  /** The opcode of the first fragment of the message being joined. */
  private fragmentOpcode = 0;
  private ended = false;

  /** `subprotocol`: asked for with Sec-WebSocket-Protocol (MQTT over WebSocket needs `mqtt`); the server must not pick another. */
  constructor(
    url: string,
    private readonly subprotocol: string | null = null,
  ) {
    const { hostname, port, pathname, search, protocol } = new URL(url);
    if (protocol !== 'ws:') throw new Error(`RawWebSocket speaks ws:// only (got ${protocol})`);
    const host = hostname.replace(/^\[|\]$/g, '');
    this.socket = connect({ host, port: Number(port) || 80, noDelay: true });
    this.socket.on('connect', () => {
      this.socket.write(
        `GET ${pathname}${search} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${this.key}\r\nSec-WebSocket-Version: 13\r\n` +
          (subprotocol ? `Sec-WebSocket-Protocol: ${subprotocol}\r\n` : '') +
          '\r\n',
      );
    });
    this.socket.on('data', (chunk: Buffer) => this.receive(chunk));
    this.socket.on('error', (error) => this.fail(error));
    this.socket.on('close', () => this.finish());
  }

  send(text: string): void {
    this.sendFrame(OPCODE.text, Buffer.from(text, 'utf8'));
  }

  sendBinary(data: Buffer): void {
    this.sendFrame(OPCODE.binary, data);
  }

  private sendFrame(opcode: number, payload: Buffer): void {
    if (!this.open) return;
    const length = payload.length;
    const headerBytes = length < 126 ? 2 : length < 65_536 ? 4 : 10;
    const frame = Buffer.allocUnsafe(headerBytes + 4 + length);
    frame[0] = 0x80 | opcode;
    if (length < 126) frame[1] = 0x80 | length;
    else if (length < 65_536) {
      frame[1] = 0x80 | 126;
      frame.writeUInt16BE(length, 2);
    } else {
      frame[1] = 0x80 | 127;
      frame.writeBigUInt64BE(BigInt(length), 2);
    }
    this.writeMasked(frame, headerBytes, payload);
  }

  /** Ends the connection at once, without a closing handshake (as `ws`'s terminate()). */
  terminate(): void {
    this.socket.destroy();
  }

  private writeMasked(frame: Buffer, headerBytes: number, payload: Buffer): void {
    // Clients must mask what they send (RFC 6455 5.3).
    const mask = randomBytes(4);
    mask.copy(frame, headerBytes);
    const start = headerBytes + 4;
    for (let i = 0; i < payload.length; i++) frame[start + i] = payload[i]! ^ mask[i & 3]!;
    this.socket.write(frame);
  }

  private control(opcode: number, payload: Buffer): void {
    const frame = Buffer.allocUnsafe(2 + 4 + payload.length);
    frame[0] = 0x80 | opcode;
    frame[1] = 0x80 | payload.length;
    this.writeMasked(frame, 2, payload);
  }

  private receive(chunk: Buffer): void {
    this.bytesReceived += chunk.length;
    if (this.handshakeDone) this.readsReceived++;
    let data = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = null;
    if (!this.handshakeDone) {
      const end = data.indexOf('\r\n\r\n');
      if (end < 0) {
        if (data.length > 16_384) return this.fail(new Error('handshake response too long'));
        this.pending = data;
        return;
      }
      const head = data.toString('latin1', 0, end);
      const expected = createHash('sha1').update(this.key + HANDSHAKE_GUID).digest('base64');
      if (!/^HTTP\/1\.1 101 /.test(head)) return this.fail(new Error(`handshake refused: ${head.split('\r\n')[0]}`));
      const accept = /\r\nsec-websocket-accept:\s*(\S+)/i.exec(head)?.[1];
      if (accept !== expected) return this.fail(new Error('handshake: wrong Sec-WebSocket-Accept'));
      const chosen = /\r\nsec-websocket-protocol:\s*(\S+)/i.exec(head)?.[1];
      if (chosen !== undefined && chosen !== this.subprotocol) return this.fail(new Error(`handshake: the server chose subprotocol ${chosen}`));
      this.handshakeDone = true;
      this.bytesReceived -= end + 4;
      this.open = true;
      this.onopen();
      data = data.subarray(end + 4);
    }
    let offset = 0;
    while (!this.ended && data.length - offset >= 2) {
      const first = data[offset]!;
      const second = data[offset + 1]!;
      if (second & 0x80) return this.fail(new Error('the server masked a frame'));
      let length = second & 0x7f;
      let header = 2;
      if (length === 126) {
        if (data.length - offset < 4) break;
        length = data.readUInt16BE(offset + 2);
        header = 4;
      } else if (length === 127) {
        if (data.length - offset < 10) break;
        const long = data.readBigUInt64BE(offset + 2);
        if (long > BigInt(MAX_MESSAGE_BYTES)) return this.fail(new Error(`frame of ${long} bytes`));
        length = Number(long);
        header = 10;
      }
      if (data.length - offset < header + length) break;
      const payload = data.subarray(offset + header, offset + header + length);
      offset += header + length;
      this.frame(first & 0x80, first & 0x0f, payload);
    }
    if (offset < data.length && !this.ended) this.pending = Buffer.from(data.subarray(offset));
  }

  private frame(fin: number, opcode: number, payload: Buffer): void {
    switch (opcode) {
      case OPCODE.text:
      case OPCODE.binary:
      case OPCODE.continuation: {
        const inMessage = this.fragments.length > 0;
        if (opcode === OPCODE.continuation ? !inMessage : inMessage) return this.fail(new Error('fragments out of order'));
        if (fin && !inMessage) {
          if (opcode === OPCODE.text) this.onmessage(payload.toString('utf8'));
          else this.onbinary(payload);
          return;
        }
        if (!inMessage) this.fragmentOpcode = opcode;
        this.fragmentBytes += payload.length;
        if (this.fragmentBytes > MAX_MESSAGE_BYTES) return this.fail(new Error(`message over ${MAX_MESSAGE_BYTES} bytes`));
        // The payload is a view of the read buffer: keep a copy until the message is whole.
        this.fragments.push(Buffer.from(payload));
        if (!fin) return;
        const whole = Buffer.concat(this.fragments);
        this.fragments = [];
        this.fragmentBytes = 0;
        if (this.fragmentOpcode === OPCODE.text) this.onmessage(whole.toString('utf8'));
        else this.onbinary(whole);
        return;
      }
      case OPCODE.ping:
        this.control(OPCODE.pong, payload);
        return;
      case OPCODE.pong:
        return;
      case OPCODE.close:
        this.control(OPCODE.close, payload.subarray(0, 2));
        this.socket.end();
        return;
      default:
        this.fail(new Error(`unknown opcode ${opcode}`));
    }
  }

  private fail(error: Error): void {
    if (this.ended) return;
    this.onerror(error);
    this.socket.destroy();
    this.finish();
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    this.open = false;
    this.onclose();
  }
}
