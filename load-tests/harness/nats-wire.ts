/**
 * The NATS client protocol (text, CRLF-terminated), as much as a subscriber
 * and a publisher need: CONNECT, SUB, PUB, PING, PONG out; INFO, MSG, HMSG,
 * PING, PONG, +OK, -ERR in. Pure functions and one streaming reader, no
 * socket: the load generators and the benchmark's publisher use them over
 * NATS's WebSocket listener, which carries the same byte stream in binary
 * messages that may hold several operations or part of one.
 *
 * Checked against a real nats-server in load-tests/test/nats-wire.test.ts.
 */

export type NatsOp =
  | { op: 'INFO'; info: Record<string, unknown> }
  | {
      op: 'MSG';
      subject: string;
      sid: string;
      replyTo: string | null;
      /** A view of the reader's buffer, valid only during the callback. */
      payload: Buffer;
    }
  | { op: 'HMSG'; subject: string; sid: string; replyTo: string | null; /** NATS/1.0 header block, as received. */ headers: Buffer; payload: Buffer }
  | { op: 'PING' }
  | { op: 'PONG' }
  | { op: '+OK' }
  | { op: '-ERR'; message: string };

export class NatsFramingError extends Error {
  override readonly name = 'NatsFramingError';
}

const CRLF = '\r\n';
/** The server's default max_control_line: a longer line without CRLF is not NATS. */
const MAX_CONTROL_LINE = 4096;

export const PING_COMMAND = `PING${CRLF}`;
export const PONG_COMMAND = `PONG${CRLF}`;

/**
 * CONNECT with the options a client without credentials sends. `verbose`
 * off: the server answers nothing to a good command (no +OK).
 */
export function connectCommand(options: { name: string; echo?: boolean; headers?: boolean }): string {
  const body = { verbose: false, pedantic: false, tls_required: false, name: options.name, lang: 'node', version: '0.1.0', protocol: 1, echo: options.echo ?? true, headers: options.headers ?? false, no_responders: false };
  return `CONNECT ${JSON.stringify(body)}${CRLF}`;
}

function checkSubject(subject: string): void {
  if (subject.length === 0 || /[\s]/.test(subject)) throw new NatsFramingError(`bad subject ${JSON.stringify(subject)}`);
}

/** SUB to a subject with a subscription id (any token the client picks). */
export function subCommand(subject: string, sid: string): string {
  checkSubject(subject);
  return `SUB ${subject} ${sid}${CRLF}`;
}

/** PUB of `payload` to `subject`, as bytes (the header counts bytes, not characters). */
export function pubCommand(subject: string, payload: Buffer | string): Buffer {
  checkSubject(subject);
  const bytes = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  return Buffer.concat([Buffer.from(`PUB ${subject} ${bytes.length}${CRLF}`, 'latin1'), bytes, Buffer.from(CRLF, 'latin1')]);
}

const CR = 13;
const LF = 10;

/**
 * Splits a byte stream into operations. Feed it each received chunk; it calls
 * `onOp` for every whole operation and keeps a copy of a partial one for the
 * next chunk. Throws NatsFramingError on bytes that are not NATS.
 */
export class NatsReader {
  private pending: Buffer | null = null;

  push(chunk: Buffer, onOp: (op: NatsOp) => void): void {
    const data = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = null;
    let offset = 0;
    while (offset < data.length) {
      const lineEnd = data.indexOf(LF, offset);
      if (lineEnd < 0) {
        if (data.length - offset > MAX_CONTROL_LINE) throw new NatsFramingError('control line too long');
        break;
      }
      if (lineEnd === offset || data[lineEnd - 1] !== CR) throw new NatsFramingError('control line not ended by CRLF');
      const line = data.toString('latin1', offset, lineEnd - 1);
      const consumed = this.operation(line, data, lineEnd + 1, onOp);
      if (consumed < 0) break;
      offset = consumed;
    }
    // The chunk is a view of the socket's read buffer: keep a copy of what is left.
    if (offset < data.length) this.pending = Buffer.from(data.subarray(offset));
  }

  /** Handles one control line (and the payload after it); the offset after it, or -1 when the payload is not all there yet. */
  private operation(line: string, data: Buffer, after: number, onOp: (op: NatsOp) => void): number {
    const space = line.indexOf(' ');
    const name = (space < 0 ? line : line.slice(0, space)).toUpperCase();
    const args = space < 0 ? '' : line.slice(space + 1).trim();
    switch (name) {
      case 'MSG':
      case 'HMSG': {
        const parts = args.split(/\s+/);
        const headered = name === 'HMSG';
        // MSG subject sid [reply-to] #bytes; HMSG subject sid [reply-to] #header-bytes #total-bytes
        const counts = headered ? 2 : 1;
        if (parts.length !== 2 + counts && parts.length !== 3 + counts) throw new NatsFramingError(`bad ${name} line: ${line.slice(0, 80)}`);
        const total = Number(parts[parts.length - 1]);
        const headerBytes = headered ? Number(parts[parts.length - 2]) : 0;
        if (!Number.isInteger(total) || total < 0 || !Number.isInteger(headerBytes) || headerBytes < 0 || headerBytes > total) {
          throw new NatsFramingError(`bad ${name} size: ${line.slice(0, 80)}`);
        }
        const end = after + total;
        if (end + 2 > data.length) return -1;
        if (data[end] !== CR || data[end + 1] !== LF) throw new NatsFramingError(`${name} payload not followed by CRLF`);
        const replyTo = parts.length === 3 + counts ? parts[2]! : null;
        if (headered) {
          onOp({ op: 'HMSG', subject: parts[0]!, sid: parts[1]!, replyTo, headers: data.subarray(after, after + headerBytes), payload: data.subarray(after + headerBytes, end) });
        } else {
          onOp({ op: 'MSG', subject: parts[0]!, sid: parts[1]!, replyTo, payload: data.subarray(after, end) });
        }
        return end + 2;
      }
      case 'INFO': {
        let info: Record<string, unknown>;
        try {
          info = JSON.parse(args) as Record<string, unknown>;
        } catch {
          throw new NatsFramingError(`bad INFO: ${line.slice(0, 80)}`);
        }
        onOp({ op: 'INFO', info });
        return after;
      }
      case 'PING':
        onOp({ op: 'PING' });
        return after;
      case 'PONG':
        onOp({ op: 'PONG' });
        return after;
      case '+OK':
        onOp({ op: '+OK' });
        return after;
      case '-ERR':
        onOp({ op: '-ERR', message: args.replace(/^'|'$/g, '') });
        return after;
      default:
        throw new NatsFramingError(`unknown operation: ${line.slice(0, 80)}`);
    }
  }
}
