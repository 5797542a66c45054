import WebSocket from 'ws';
import { MEDIA_SIGNAL_PATH, type ClientSignal, type ParticipantInfo, type ServerSignal } from '@clinic-hub/protocol';
import { isVp8KeyframeStart } from '@clinic-hub/media-server/engine/vp8';

/** What a Node peer has received of one forwarded stream (a werift m-line, a mediasoup consumer). */
export interface ReceivedStream {
  /** The m-line's mid (werift) or the consumer's id (mediasoup). */
  mid: string;
  participant: string;
  source: string;
  kind: 'audio' | 'video';
  packets: number;
  /** Packets never seen between the first and the highest sequence number received (a late one counts back). */
  lost: number;
  /** ms since the peer started joining, of the first packet and of the first keyframe start. */
  firstPacketMs: number | null;
  firstKeyframeMs: number | null;
}

export type JoinedMessage = Extract<ServerSignal, { type: 'joined' }>;

/**
 * The signalling side of a Node peer, whichever engine's media it speaks
 * (node-peer.ts: werift's answers to server-made offers; mediasoup-node-peer.ts:
 * mediasoup's client-driven transports): the socket, every message received,
 * requests and their acks, who is present, and the streams received. Tests
 * that are about the product (admission, rooms, recording, consent) drive a
 * peer through this face alone, so they run the same on both engines
 * (engine-peer.ts).
 */
export abstract class SignalPeer {
  readonly messages: ServerSignal[] = [];
  readonly received = new Map<string, ReceivedStream>();
  joined: JoinedMessage | null = null;
  readonly startedAt = Date.now();
  closedCode: number | null = null;
  private nextId = 1;
  private readonly waiters = new Set<() => void>();

  protected constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      let message: ServerSignal;
      try {
        message = JSON.parse(String(data)) as ServerSignal;
      } catch {
        return;
      }
      this.messages.push(message);
      if (message.type === 'joined') this.joined = message;
      this.onMessage(message);
      this.wake();
    });
    ws.on('close', (code) => {
      this.closedCode = code;
      this.wake();
    });
  }

  /** A message just arrived (after it was recorded); the engine's own signalling reacts here. */
  protected onMessage(_message: ServerSignal): void {}

  private wake(): void {
    for (const wake of [...this.waiters]) wake();
  }

  /** The peer's media connection(s): `connected` once every one is. */
  abstract get connectionState(): string;
  /** Drops without a goodbye: the socket and the media connections close. */
  abstract close(): Promise<void>;

  /** Opens a signalling socket to `mediaUrl`. */
  protected static async openSocket(mediaUrl: string): Promise<WebSocket> {
    const ws = new WebSocket(`${mediaUrl.replace(/^http/, 'ws')}${MEDIA_SIGNAL_PATH}`);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return ws;
  }

  /** Sends `join`; throws (with the error's `code`) when refused, closing the socket. */
  protected async sendJoin(token: string): Promise<void> {
    const reply = await this.request({ type: 'join', token }, 15_000);
    if (reply.type === 'error') {
      this.ws.close();
      throw Object.assign(new Error(`join refused: ${reply.code}`), { code: reply.code });
    }
  }

  /** Everyone else present now, as the messages so far tell it. */
  get participants(): ParticipantInfo[] {
    const present = new Map<string, ParticipantInfo>();
    for (const message of this.messages) {
      if (message.type === 'joined') for (const p of message.participants) present.set(p.id, p);
      if (message.type === 'participant-joined' || message.type === 'participant-updated') present.set(message.participant.id, message.participant);
      if (message.type === 'participant-left') present.delete(message.participant);
    }
    if (this.joined) present.delete(this.joined.self.id);
    return [...present.values()];
  }

  send(message: ClientSignal | Record<string, unknown> | string): void {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  /** Sends with a fresh id and waits for the ack or error that answers it. */
  async request(message: Omit<ClientSignal, 'id'> | Record<string, unknown>, timeoutMs = 10_000): Promise<Extract<ServerSignal, { type: 'ack' | 'error' }>> {
    const id = `r${this.nextId++}`;
    this.send({ ...message, id });
    const reply = await this.waitFor((m) => (m.type === 'ack' || m.type === 'error') && m.id === id, timeoutMs);
    return reply as Extract<ServerSignal, { type: 'ack' | 'error' }>;
  }

  /** Resolves with the first message (already received or to come, from index `from`) that matches. */
  waitFor(predicate: (message: ServerSignal) => boolean, timeoutMs = 10_000, from = 0): Promise<ServerSignal> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.messages.slice(from).find(predicate);
        if (found) {
          cleanup();
          resolve(found);
        } else if (this.closedCode !== null) {
          cleanup();
          reject(new Error(`socket closed (${this.closedCode}) while waiting`));
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for a signalling message`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Waits until `condition` holds, polling. */
  async until(condition: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Packets received from `participant` of `kind` (all its streams of that kind added up). */
  packetsFrom(participant: string, kind: 'audio' | 'video'): number {
    return [...this.received.values()].filter((s) => s.participant === participant && s.kind === kind).reduce((n, s) => n + s.packets, 0);
  }

  /** Packets received of `kind` from anyone. */
  packetsOf(kind: 'audio' | 'video'): number {
    return [...this.received.values()].filter((s) => s.kind === kind).reduce((n, s) => n + s.packets, 0);
  }

  /** A clean goodbye (`leave`), then the socket closes. */
  async leave(): Promise<void> {
    await this.request({ type: 'leave' }, 3000).catch(() => undefined);
    await this.close();
  }

  /** Starts counting a stream: returns what to call with each RTP packet of it. */
  protected countStream(stream: Omit<ReceivedStream, 'packets' | 'lost' | 'firstPacketMs' | 'firstKeyframeMs'>): (packet: { header: { sequenceNumber: number }; payload: Buffer }) => void {
    const counted: ReceivedStream = { ...stream, packets: 0, lost: 0, firstPacketMs: null, firstKeyframeMs: null };
    this.received.set(stream.mid, counted);
    let highest: number | null = null;
    return (packet) => {
      counted.packets += 1;
      const seq = packet.header.sequenceNumber;
      // Ahead by less than half the sequence space: new packets, the ones skipped are lost (a late one counts back).
      const ahead = highest === null ? 1 : (seq - highest + 0x10000) & 0xffff;
      if (ahead > 0 && ahead < 0x8000) {
        if (highest !== null) counted.lost += ahead - 1;
        highest = seq;
      } else if (ahead !== 0 && counted.lost > 0) counted.lost -= 1;
      counted.firstPacketMs ??= Date.now() - this.startedAt;
      if (counted.kind === 'video' && counted.firstKeyframeMs === null && isVp8KeyframeStart(packet.payload)) counted.firstKeyframeMs = Date.now() - this.startedAt;
    };
  }
}
