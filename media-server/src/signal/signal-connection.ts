import type { Logger } from 'pino';
import type { RawData, WebSocket } from 'ws';
import { ClientSignal, MEDIA_SIGNAL_MAX_BYTES, PAYLOAD_MAX_DEPTH, measurePayload, protocolError, type ErrorCode, type ServerSignal } from '@clinic-hub/protocol';
import { RoomTokenError, type RoomTokenVerifier } from '@clinic-hub/platform/tokens';
import { TokenBucket } from '@clinic-hub/platform/token-bucket';
import { continueTrace, splitTraceparent, traceLogFields, type TraceContext } from '@clinic-hub/platform/tracing';
import type { Participant, SignalPeer } from '../room/participant.js';
import type { Room } from '../room/room.js';
import { SignalError } from './signal-error.js';

/** Close codes of a client that closed on purpose (normal, going away, none given). */
const CLEAN_CLOSE_CODES = new Set([1000, 1001, 1005]);

/** What a connection needs from the server around it. */
export interface SignalContext {
  tokens: RoomTokenVerifier;
  logger: Logger;
  joinTimeoutMs: number;
  rate: { perSecond: number; burst: number };
  /**
   * Finds or makes the room the claims are for, after the node-level checks
   * (draining, the consultation's node and status). Throws SignalError.
   */
  admit(claims: { clinic: string; consult: string; sub: string }): Promise<Room>;
  onError(code: ErrorCode): void;
  onJoined(): void;
}

type Message = ClientSignal;

/**
 * One WebSocket at /signal: a join with a room token, then answers and the
 * participant's requests. Every frame is checked (size, rate, JSON, schema,
 * order) and every refusal is answered with `{type:'error', code}`; nothing a
 * client sends stops the room or the server. Messages of one connection are
 * handled one at a time, in order, each in a span that continues the
 * client's `traceparent` (any message may carry one, as on the hub) or
 * starts a trace: a recording it starts or stops, and that recording's jobs,
 * carry it.
 */
export class SignalConnection implements SignalPeer {
  private participant: Participant | null = null;
  private room: Room | null = null;
  private joining = false;
  private readonly bucket: TokenBucket;
  private queue: Promise<void> = Promise.resolve();
  private joinTimer: NodeJS.Timeout | null;
  private readonly logger: Logger;
  /** Set by any sign of life (a pong or a message); the keep-alive sweep clears it. */
  alive = true;
  closed = false;

  constructor(
    readonly connectionId: string,
    private readonly ws: WebSocket,
    private readonly context: SignalContext,
  ) {
    this.logger = context.logger.child({ connection: connectionId });
    this.bucket = new TokenBucket(context.rate.perSecond, context.rate.burst);
    this.joinTimer = setTimeout(() => {
      this.joinTimer = null;
      if (this.participant || this.closed) return;
      this.sendError('MEDIA_NOT_JOINED', `no join within ${context.joinTimeoutMs} ms`);
      this.close('join timeout', 4408);
    }, context.joinTimeoutMs);
    ws.on('message', (data, isBinary) => this.receive(data, isBinary));
    ws.on('pong', () => (this.alive = true));
    ws.on('close', (code) => this.closedByPeer(code));
    ws.on('error', (error) => this.logger.debug({ err: error }, 'websocket error'));
  }

  send(message: ServerSignal): void {
    if (this.closed || this.ws.readyState !== this.ws.OPEN) return;
    this.ws.send(JSON.stringify(message));
  }

  close(reason: string, code = 1000): void {
    if (this.closed) return;
    this.closed = true;
    this.clearJoinTimer();
    this.logger.debug({ reason }, 'closing');
    this.ws.close(code, reason.slice(0, 100));
  }

  /** No pong since the last sweep: the network is gone. */
  terminate(): void {
    this.ws.terminate();
  }

  private receive(data: RawData, isBinary: boolean): void {
    this.alive = true;
    const size = Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data.byteLength;
    if (size > MEDIA_SIGNAL_MAX_BYTES) return this.sendError('PAYLOAD_TOO_LARGE', `${size} bytes; at most ${MEDIA_SIGNAL_MAX_BYTES}`);
    if (!this.bucket.take()) return this.sendError('RATE_LIMITED', `retry in ${this.bucket.msUntilNext()} ms`);
    if (isBinary) return this.sendError('INVALID_PAYLOAD', 'binary frames are not signalling');
    let raw: unknown;
    try {
      raw = JSON.parse(Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data as ArrayBuffer).toString('utf8'));
    } catch {
      return this.sendError('INVALID_PAYLOAD', 'not JSON');
    }
    // Checked before anything walks it: the hub's rule (JSON.parse itself does not recurse).
    if (measurePayload(raw, { maxBytes: MEDIA_SIGNAL_MAX_BYTES, maxDepth: PAYLOAD_MAX_DEPTH }).over === 'depth') {
      return this.sendError('PAYLOAD_TOO_DEEP', `deeper than ${PAYLOAD_MAX_DEPTH} levels`);
    }
    const { body: json, traceparent } = splitTraceparent(raw);
    const parsed = ClientSignal.safeParse(json);
    if (!parsed.success) {
      const id = typeof json === 'object' && json !== null && typeof (json as { id?: unknown }).id === 'string' ? (json as { id: string }).id.slice(0, 64) : undefined;
      const issue = parsed.error.issues[0];
      return this.sendError('INVALID_PAYLOAD', issue ? `${issue.path.join('.') || 'message'}: ${issue.message}` : undefined, id);
    }
    const message = parsed.data;
    this.queue = this.queue.then(() => this.handle(message, continueTrace(traceparent)));
  }

  private async handle(message: Message, trace: TraceContext): Promise<void> {
    if (this.closed) return;
    try {
      await this.dispatch(message, trace);
    } catch (error) {
      if (error instanceof SignalError) {
        this.sendError(error.code, error.detail, message.id);
        // The join could not be checked (Redis): closed with "try again later", so the page rejoins with its backoff at once.
        if (message.type === 'join' && error.code === 'STORE_UNAVAILABLE') this.close('consultation could not be checked', 1013);
      } else {
        this.logger.error({ err: error, type: message.type, ...traceLogFields(trace) }, 'signalling message failed');
        this.sendError('INTERNAL', undefined, message.id);
      }
    }
  }

  private async dispatch(message: Message, trace: TraceContext): Promise<void> {
    if (message.type === 'ping') {
      this.send(message.id === undefined ? { type: 'pong', serverTime: Date.now() } : { type: 'pong', id: message.id, serverTime: Date.now() });
      return;
    }
    if (message.type === 'join') {
      await this.join(message.token, trace, message.resume);
      this.ack(message.id);
      return;
    }
    const participant = this.participant;
    const room = this.room;
    // A socket whose session another one resumed (its messages still arriving) speaks for nobody now.
    if (!participant || !room || participant.closed || participant.peer !== this) throw new SignalError('MEDIA_NOT_JOINED');
    switch (message.type) {
      case 'answer':
        await room.answer(participant, message.rev, message.sdp);
        break;
      case 'publish':
        room.publish(participant, message.source, message.on);
        break;
      case 'mute':
        room.mute(participant, message.source, message.muted);
        break;
      case 'consent':
        await room.consent(participant, message.granted, trace);
        break;
      case 'recording':
        room.recordingRequest(participant, message.action, trace);
        break;
      case 'keyframe':
        room.keyframe(message.participant, message.source);
        break;
      case 'leave':
        this.ack(message.id);
        this.participant = null;
        room.leave(participant, 'left', trace);
        this.close('left');
        return;
      case 'transport-create':
      case 'transport-connect':
      case 'ice-restart':
      case 'produce':
      case 'consume-ready':
      case 'consumer-resume':
      case 'consumer-view':
        this.ack(message.id, await room.media(participant, message));
        return;
    }
    this.ack(message.id);
  }

  private async join(token: string, trace: TraceContext, resume: string | undefined): Promise<void> {
    if (this.participant || this.joining) throw new SignalError('MEDIA_ALREADY_JOINED');
    let claims;
    try {
      claims = this.context.tokens.verify(token);
    } catch (error) {
      if (error instanceof RoomTokenError) throw new SignalError(error.code);
      throw error;
    }
    this.joining = true;
    try {
      const room = await this.context.admit(claims);
      if (this.closed) return;
      this.room = room;
      this.participant = room.join(claims, this, trace, resume);
    } finally {
      this.joining = false;
    }
    this.clearJoinTimer();
    this.context.onJoined();
  }

  /**
   * The socket closed (either side, or terminated by the keep-alive sweep).
   * A close frame with 1000, 1001 or no code is a client that meant it; any
   * other end (1006: no close frame, the network went; or a code the client
   * chose, as the page's 4000 before it resumes) lets a mediasoup session
   * wait for a resume (Room.connectionLost).
   */
  private closedByPeer(code: number): void {
    this.closed = true;
    this.clearJoinTimer();
    const participant = this.participant;
    this.participant = null;
    if (participant && this.room) this.room.connectionLost(participant, this, CLEAN_CLOSE_CODES.has(code));
  }

  private ack(id: string | undefined, result?: unknown): void {
    if (id !== undefined) this.send(result === undefined ? { type: 'ack', id } : { type: 'ack', id, result });
  }

  private sendError(code: ErrorCode, detail?: string, id?: string): void {
    this.context.onError(code);
    const error = protocolError(code, detail);
    this.send({ type: 'error', ...(id !== undefined ? { id } : {}), code: error.code, message: error.message, ...(error.detail ? { detail: error.detail } : {}) });
  }

  private clearJoinTimer(): void {
    if (this.joinTimer) clearTimeout(this.joinTimer);
    this.joinTimer = null;
  }
}
