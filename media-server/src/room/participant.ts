import { randomUUID } from 'node:crypto';
import type { ConsultRole, MediaSource, ParticipantInfo, ServerSignal } from '@clinic-hub/protocol';
import type { ParticipantTransport } from '../engine/engine-types.js';

/** The signalling side of a participant: where the room's messages go. */
export interface SignalPeer {
  /** A connection id for logs (never the person's name). */
  readonly connectionId: string;
  send(message: ServerSignal): void;
  /** Closes the WebSocket after what was sent (normal closure). */
  close(reason: string): void;
}

type Negotiation =
  | { kind: 'idle' }
  /** An offer is being made; an answer now would be for an older one. */
  | { kind: 'offering' }
  | { kind: 'awaiting'; rev: number; timer: NodeJS.Timeout };

/**
 * One person in a room: who they are (from the room token), what they send,
 * their consent, and the offer/answer state of their single peer connection.
 * The server makes every offer and makes the next one only after the last
 * is answered; changes in between are folded into it.
 */
export class Participant {
  readonly joinedAt = Date.now();
  /** What `joined.session` tells the client, and its `join.resume` names after a dropped socket. */
  readonly session = randomUUID();
  /** Running while the participant's socket is gone and a resume may still come. */
  private resumeTimer: NodeJS.Timeout | null = null;
  private rev = 0;
  private negotiation: Negotiation = { kind: 'idle' };
  /** Something changed while an offer was out: offer again once it is answered. */
  private dirty = false;
  /** Sources the client said it stopped sending (publish on:false) although its slot is still negotiated. */
  readonly sourcesOff = new Set<MediaSource>();
  readonly muted = { mic: false, camera: false };
  closed = false;

  constructor(
    readonly id: string,
    readonly part: ConsultRole,
    readonly name: string,
    private signalPeer: SignalPeer,
    readonly transport: ParticipantTransport,
    public consent: boolean,
  ) {}

  /** Where the room's messages for this participant go: the socket that joined, or the one that resumed its session. */
  get peer(): SignalPeer {
    return this.signalPeer;
  }

  /** A socket resumed the session: messages go there from now on (the old socket is the caller's to close). */
  resumedOn(peer: SignalPeer): SignalPeer {
    const old = this.signalPeer;
    this.signalPeer = peer;
    this.stopWaitingForResume();
    return old;
  }

  /** The socket is gone: `expire` runs unless a resume comes within `graceMs`. */
  waitForResume(graceMs: number, expire: () => void): void {
    this.stopWaitingForResume();
    this.resumeTimer = setTimeout(() => {
      this.resumeTimer = null;
      expire();
    }, graceMs);
  }

  get awaitingResume(): boolean {
    return this.resumeTimer !== null;
  }

  private stopWaitingForResume(): void {
    if (this.resumeTimer) clearTimeout(this.resumeTimer);
    this.resumeTimer = null;
  }

  info(): ParticipantInfo {
    const sources = [...this.transport.published.keys()].filter((source) => !this.sourcesOff.has(source));
    return { id: this.id, part: this.part, name: this.name, sources, muted: { ...this.muted }, consent: this.consent };
  }

  /**
   * Asks for a (re)negotiation: now if no offer is out, else right after the
   * outstanding one is answered. `offer` makes and sends one offer with the
   * given rev; `onAnswerTimeout` runs if it is not answered in time.
   */
  renegotiate(offer: (rev: number) => Promise<void>, answerTimeoutMs: number, onAnswerTimeout: () => void): void {
    if (this.closed) return;
    if (this.negotiation.kind !== 'idle') {
      this.dirty = true;
      return;
    }
    this.dirty = false;
    this.negotiation = { kind: 'offering' };
    const rev = ++this.rev;
    offer(rev).then(
      () => {
        if (this.closed || this.negotiation.kind !== 'offering') return;
        this.negotiation = { kind: 'awaiting', rev, timer: setTimeout(onAnswerTimeout, answerTimeoutMs) };
      },
      () => {
        // The offer could not be made (the transport closed under it): nothing is outstanding.
        if (this.negotiation.kind === 'offering') this.negotiation = { kind: 'idle' };
      },
    );
  }

  /** Whether `rev` is the offer the client should be answering now. */
  awaitsAnswer(rev: number): boolean {
    return this.negotiation.kind === 'awaiting' && this.negotiation.rev === rev;
  }

  /** The answer to the outstanding offer was applied; returns whether another offer is due. */
  answered(): boolean {
    if (this.negotiation.kind === 'awaiting') clearTimeout(this.negotiation.timer);
    this.negotiation = { kind: 'idle' };
    return this.dirty;
  }

  close(): void {
    this.closed = true;
    this.stopWaitingForResume();
    if (this.negotiation.kind === 'awaiting') clearTimeout(this.negotiation.timer);
    this.negotiation = { kind: 'idle' };
  }
}
