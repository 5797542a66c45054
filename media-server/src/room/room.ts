import type { Logger } from 'pino';
import {
  CONSULT_MAX_PARTICIPANTS,
  isClinicianConsultRole,
  type MediaSource,
  type RoomTokenClaims,
  type ServerSignal,
} from '@clinic-hub/protocol';
import type { TraceContext } from '@clinic-hub/platform/tracing';
import type { ClientMediaRequest, MediaEngine, PublishedTrack, Recorder, RoomMediaInfo, RoomMediaReset } from '../engine/engine-types.js';
import type { MediaEvents } from '../media-events.js';
import { SignalError } from '../signal/signal-error.js';
import { Participant, type SignalPeer } from './participant.js';
import { RecordingGate, type RecordingStopReason } from './recording-gate.js';
import type { RoomPresence } from './room-presence.js';
import type { RoomRecordEntry, SessionRecord } from './session-record.js';

type IceServers = Extract<ServerSignal, { type: 'joined' }>['iceServers'];
type LeaveReason = Extract<ServerSignal, { type: 'participant-left' }>['reason'];

export interface RoomDeps {
  engine: MediaEngine;
  recorder: Recorder | null;
  record: SessionRecord;
  /** Head count and live/waiting into the consultation's meta hash. */
  presence: RoomPresence;
  events: MediaEvents;
  logger: Logger;
  answerTimeoutMs: number;
  /** How long a participant whose socket dropped stays in the room waiting for a resume (mediasoup); 0: dropped at once. */
  resumeGraceMs: number;
  /** ICE servers for one participant (TURN credentials are per person). */
  iceServersFor: (participantId: string) => IceServers;
  /** The room emptied or was closed: the registry forgets it. */
  onClosed: (room: Room) => void;
}

/**
 * One consultation's room on this node: 2–6 people, each with one peer
 * connection that publishes their microphone and camera (and screen) and
 * receives everyone else's. The room keeps everyone's connection in line
 * with who is present and what they send, announces comings and goings,
 * keeps consent and decides when recording runs, and writes joins, leaves and
 * consents to the session record. What a participant sends comes with its
 * trace (`cause`): a recording it starts or stops is logged with it, and the
 * recording's jobs carry it.
 */
export class Room {
  readonly participants = new Map<string, Participant>();
  /** Consent given in this room, by participant id: a rejoin after a network drop keeps it. */
  private readonly consents = new Map<string, boolean>();
  private readonly recording: RecordingGate;
  private recordingAllowed = true;
  private readonly logger: Logger;
  /** Participants whose next offer is due at the end of this tick (several changes, one offer). */
  private readonly negotiationDue = new Set<Participant>();
  /** What `joined.media` tells clients (the engine, and mediasoup's router capabilities): set at admission, renewed when the room's media moves. */
  private mediaInfo: RoomMediaInfo;
  closed = false;

  constructor(
    readonly clinic: string,
    readonly consult: string,
    private readonly deps: RoomDeps,
  ) {
    this.logger = deps.logger.child({ consult });
    this.recording = new RecordingGate(clinic, consult, deps.recorder, this.logger);
    this.mediaInfo = { engine: deps.engine.name } as RoomMediaInfo;
  }

  /** The room's media as the engine just opened (or reopened) it. */
  setMedia(info: RoomMediaInfo): void {
    this.mediaInfo = info;
  }

  /** Whether this person may come in now: the room has space, or they are already in it (a rejoin replaces them). */
  canAdmit(participantId: string): boolean {
    return this.participants.has(participantId) || this.participants.size < CONSULT_MAX_PARTICIPANTS;
  }

  /**
   * A join on `peer`. With `resume` naming the session the same person still
   * has here (mediasoup: its transports are still up), that session moves to
   * this socket and nobody else sees anything; any other join of someone
   * already present replaces them.
   */
  join(claims: RoomTokenClaims, peer: SignalPeer, cause?: TraceContext, resume?: string): Participant {
    if (this.closed) throw new SignalError('CONSULT_ENDED');
    if (!this.canAdmit(claims.sub)) throw new SignalError('MEDIA_ROOM_FULL');
    const previous = this.participants.get(claims.sub);
    if (previous && resume !== undefined && previous.session === resume && previous.transport.client && !previous.closed) return this.resume(previous, peer);
    if (previous) {
      previous.peer.send({ type: 'closed', reason: 'replaced' });
      previous.peer.close('replaced by a new connection');
      this.remove(previous, 'replaced', cause);
    }
    let transport;
    try {
      transport = this.deps.engine.createTransport({ clinic: this.clinic, roomId: this.consult, participantId: claims.sub, part: claims.part });
    } catch (error) {
      // The room's media went away between admission and now (its last participant left, its worker died): the client retries.
      this.logger.warn({ err: error, participant: claims.sub }, 'no media transport for a join');
      throw new SignalError('MEDIA_NODE_UNAVAILABLE', 'the room is being set up again; join again in a moment');
    }
    const participant = new Participant(claims.sub, claims.part, claims.name, peer, transport, this.consents.get(claims.sub) ?? false);
    // To whichever socket has the session now (a resume moves it).
    transport.client?.onSignal((message) => participant.peer.send(message));
    this.participants.set(participant.id, participant);
    transport.onTrackPublished((track) => this.trackPublished(participant, track));
    transport.onStateChange((state) => {
      this.logger.debug({ participant: participant.id, connection: peer.connectionId, state }, 'media connection state');
      if (state === 'failed' && this.participants.get(participant.id) === participant) {
        this.logger.info({ participant: participant.id, connection: peer.connectionId }, 'media connection failed');
        participant.peer.close('media connection failed');
        this.remove(participant, 'dropped');
      }
    });
    for (const other of this.participants.values()) {
      if (other === participant) continue;
      for (const track of other.transport.published.values()) transport.subscribe(track);
    }
    const others = [...this.participants.values()].filter((p) => p !== participant);
    peer.send({
      type: 'joined',
      self: participant.info(),
      consult: this.consult,
      participants: others.map((p) => p.info()),
      recording: this.recording.status(this.participants.values()),
      iceServers: this.deps.iceServersFor(participant.id),
      media: this.mediaInfo,
      session: participant.session,
    });
    this.broadcast({ type: 'participant-joined', participant: participant.info() }, participant);
    this.logger.info({ participant: participant.id, part: participant.part, connection: peer.connectionId, present: this.participants.size }, 'participant joined');
    this.deps.events.participantJoined(this.consult, participant.id, participant.part);
    this.appendRecord({ type: 'joined', participant: participant.id, part: participant.part });
    this.writePresence();
    this.updateRecording('participant-without-consent', { cause });
    this.negotiate(participant);
    return participant;
  }

  /** The participant left (`leave`), or the room drops them (an offer not answered). Does nothing if they were already replaced. */
  leave(participant: Participant, reason: 'left' | 'dropped', cause?: TraceContext): void {
    if (this.participants.get(participant.id) !== participant) return;
    this.remove(participant, reason, cause);
  }

  /**
   * The participant's socket `peer` closed without `leave`. Closed on
   * purpose (`clean`: a close frame with 1000, 1001 or no code, as a closing
   * tab sends), or on werift (its peer connection needs the signalling), they
   * are dropped now. Otherwise (the network went, or the client closed it to
   * resume) their media stays up and they stay in the room, seen by nobody as
   * gone, for the resume grace; no resume by then and they are dropped. A
   * socket the session has already moved from changes nothing.
   */
  connectionLost(participant: Participant, peer: SignalPeer, clean: boolean): void {
    if (this.participants.get(participant.id) !== participant || participant.peer !== peer) return;
    if (clean || !participant.transport.client || this.deps.resumeGraceMs <= 0) {
      this.remove(participant, 'dropped');
      return;
    }
    this.logger.info({ participant: participant.id, connection: peer.connectionId, graceMs: this.deps.resumeGraceMs }, 'signalling lost; waiting for a resume');
    participant.waitForResume(this.deps.resumeGraceMs, () => {
      if (this.participants.get(participant.id) === participant && participant.peer === peer) this.remove(participant, 'dropped');
    });
  }

  /** The same client, on a new socket: it keeps everything; the old socket (if still open) is closed; the others see nothing. */
  private resume(participant: Participant, peer: SignalPeer): Participant {
    const old = participant.resumedOn(peer);
    if (old !== peer) old.close('resumed on a new connection');
    peer.send({
      type: 'joined',
      self: participant.info(),
      consult: this.consult,
      participants: [...this.participants.values()].filter((p) => p !== participant).map((p) => p.info()),
      recording: this.recording.status(this.participants.values()),
      iceServers: this.deps.iceServersFor(participant.id),
      media: this.mediaInfo,
      session: participant.session,
      resumed: true,
    });
    // What was sent to the dead socket is lost: every consumer again (the client keeps those it has).
    participant.transport.client?.resync();
    this.logger.info({ participant: participant.id, from: old.connectionId, connection: peer.connectionId }, 'participant resumed');
    return participant;
  }

  private remove(participant: Participant, reason: LeaveReason, cause?: TraceContext): void {
    this.participants.delete(participant.id);
    this.negotiationDue.delete(participant);
    participant.close();
    // Closing ends the participant's tracks; their subscribers drop them (trackPublished's onEnded).
    void participant.transport.close();
    this.broadcast({ type: 'participant-left', participant: participant.id, reason });
    this.logger.info({ participant: participant.id, reason, present: this.participants.size }, 'participant left');
    this.deps.events.participantLeft(this.consult, participant.id);
    this.appendRecord({ type: 'left', participant: participant.id, part: participant.part, reason });
    if (reason !== 'replaced') this.writePresence();
    if (this.participants.size === 0 && reason !== 'replaced') {
      this.close('room-closed', cause);
      return;
    }
    // Whoever was missing consent may have been the one who left.
    this.updateRecording('participant-without-consent', { cause });
  }

  private trackPublished(publisher: Participant, track: PublishedTrack): void {
    this.logger.debug({ participant: publisher.id, source: track.source, track: track.id }, 'track published');
    this.deps.events.trackPublished(track);
    this.recording.addTrack(track);
    for (const other of this.participants.values()) {
      if (other === publisher) continue;
      other.transport.subscribe(track);
      this.scheduleNegotiation(other);
    }
    track.onEnded(() => {
      for (const other of this.participants.values()) {
        if (other === publisher) continue;
        other.transport.unsubscribe(track.id);
        this.scheduleNegotiation(other);
      }
    });
  }

  // ---- what clients send ----

  async answer(participant: Participant, rev: number, sdp: string): Promise<void> {
    const offers = participant.transport.offers;
    if (!offers) throw new SignalError('MEDIA_WRONG_ENGINE', 'answer is werift signalling; this node runs mediasoup');
    if (!participant.awaitsAnswer(rev)) throw new SignalError('MEDIA_STALE_ANSWER', `rev ${rev}`);
    const before = JSON.stringify(participant.info().sources);
    try {
      await offers.applyAnswer(sdp);
    } catch (error) {
      // The offer stays outstanding: a good answer to it still counts.
      this.logger.info({ participant: participant.id, rev, err: error }, 'answer not applied');
      throw new SignalError('MEDIA_SDP_INVALID', error instanceof Error ? error.message.slice(0, 200) : undefined);
    }
    if (participant.closed) return;
    if (participant.answered()) this.scheduleNegotiation(participant);
    if (JSON.stringify(participant.info().sources) !== before) this.broadcast({ type: 'participant-updated', participant: participant.info() });
  }

  /** A mediasoup request (transports, produce, consume); returns the ack's result. */
  async media(participant: Participant, request: ClientMediaRequest): Promise<unknown> {
    const client = participant.transport.client;
    if (!client) throw new SignalError('MEDIA_WRONG_ENGINE', `${request.type} is mediasoup signalling; this node runs werift (answer its offers)`);
    const before = JSON.stringify(participant.info().sources);
    const result = await client.handle(request);
    if (!participant.closed && JSON.stringify(participant.info().sources) !== before) this.broadcast({ type: 'participant-updated', participant: participant.info() });
    return result;
  }

  /**
   * The room's media was lost (its mediasoup worker died) and, if `moved`,
   * set up on another worker: each participant's client makes its transports
   * again by itself (they stay in the room). A recording running then has
   * lost its media: it stops, saying why, and is not restarted by itself (a
   * clinician starts a new one).
   */
  mediaReset(reset: RoomMediaReset, info: RoomMediaInfo | null): void {
    if (this.closed) return;
    this.logger.warn({ reason: reset.reason, moved: reset.moved, present: this.participants.size }, 'room media reset');
    if (this.recording.isRecording) {
      this.recording.setRequested(false);
      this.recording.stop('media-worker-died');
      this.broadcast({ type: 'recording', recording: { ...this.recording.status(this.participants.values()), stopReason: 'media-worker-died' } });
    }
    if (!reset.moved || !info) {
      this.close('draining');
      return;
    }
    this.mediaInfo = info;
  }

  publish(participant: Participant, source: MediaSource, on: boolean): void {
    const offers = participant.transport.offers;
    if (!offers) {
      if (!on) participant.transport.client?.stopSource(source);
    } else if (source === 'screen') {
      offers.setScreenSlot(on);
      this.scheduleNegotiation(participant);
    } else if (on && !participant.transport.published.has(source)) {
      // The slot was answered inactive (no device then): offer it again for the client to fill.
      this.scheduleNegotiation(participant);
    }
    if (on) participant.sourcesOff.delete(source);
    else participant.sourcesOff.add(source);
    this.broadcast({ type: 'participant-updated', participant: participant.info() });
  }

  mute(participant: Participant, source: 'mic' | 'camera', muted: boolean): void {
    participant.muted[source] = muted;
    this.broadcast({ type: 'participant-updated', participant: participant.info() });
  }

  async consent(participant: Participant, granted: boolean, cause?: TraceContext): Promise<void> {
    if (participant.consent === granted) return;
    const entry: RoomRecordEntry = { type: granted ? 'consent-granted' : 'consent-withdrawn', participant: participant.id, part: participant.part };
    if (granted) {
      // A consent that is not in the session record does not count: recording could start on it.
      try {
        await this.deps.record.append(this.clinic, this.consult, entry);
      } catch (error) {
        this.logger.warn({ err: error, participant: participant.id }, 'consent not recorded');
        throw new SignalError('STORE_UNAVAILABLE');
      }
      if (participant.closed) return;
    }
    participant.consent = granted;
    this.consents.set(participant.id, granted);
    // A withdrawal takes effect at once, written or not: privacy first, the record follows.
    if (!granted) this.appendRecord(entry);
    this.broadcast({ type: 'participant-updated', participant: participant.info() });
    this.updateRecording(granted ? 'participant-without-consent' : 'consent-withdrawn', { announce: true, cause });
  }

  /** The clinic's rule (its consultation's meta `rec`, written at admission): false refuses a start with RECORDING_NOT_ALLOWED. */
  setRecordingAllowed(allowed: boolean): void {
    this.recordingAllowed = allowed;
  }

  recordingRequest(participant: Participant, action: 'start' | 'stop', cause?: TraceContext): void {
    if (!isClinicianConsultRole(participant.part)) throw new SignalError('AUTH_FORBIDDEN', 'only doctors and nurses start or stop recording');
    if (!this.recording.available) throw new SignalError('RECORDING_KEY_MISSING');
    if (action === 'start' && !this.recordingAllowed) throw new SignalError('RECORDING_NOT_ALLOWED');
    this.recording.setRequested(action === 'start');
    this.updateRecording('requested', { announce: true, cause });
  }

  keyframe(participantId: string, source: 'camera' | 'screen'): void {
    const track = this.participants.get(participantId)?.transport.published.get(source);
    if (!track) throw new SignalError('INVALID_PAYLOAD', `${participantId} sends no ${source}`);
    track.requestKeyframe();
  }

  // ---- room-wide ----

  /** Ends the room: `ended` (the clinic ended the consultation) or `draining` (this node is shutting down). */
  close(reason: 'ended' | 'draining' | 'room-closed', cause?: TraceContext): void {
    if (this.closed) return;
    this.closed = true;
    this.recording.stop(reason === 'draining' ? 'draining' : 'room-closed', cause);
    for (const participant of [...this.participants.values()]) {
      this.participants.delete(participant.id);
      participant.close();
      if (reason !== 'room-closed') {
        participant.peer.send({ type: 'closed', reason });
        participant.peer.close(`room ${reason}`);
      }
      void participant.transport.close();
      this.deps.events.participantLeft(this.consult, participant.id);
      this.appendRecord({ type: 'left', participant: participant.id, part: participant.part, reason: reason === 'draining' ? 'draining' : 'ended' });
    }
    this.negotiationDue.clear();
    this.deps.engine.closeRoom(this.clinic, this.consult);
    this.writePresence();
    this.logger.info({ reason }, 'room closed');
    this.deps.events.roomClosed(this.consult);
    this.deps.onClosed(this);
  }

  private updateRecording(stopReason: RecordingStopReason, options: { announce?: boolean; cause?: TraceContext | undefined } = {}): void {
    if (this.closed) return;
    const before = JSON.stringify(this.recording.status(this.participants.values()));
    this.recording.evaluate([...this.participants.values()], stopReason, options.cause);
    const status = this.recording.status(this.participants.values());
    if (options.announce || JSON.stringify(status) !== before) this.broadcast({ type: 'recording', recording: status });
  }

  private scheduleNegotiation(participant: Participant): void {
    if (!participant.transport.offers) return;
    if (this.closed || participant.closed || this.negotiationDue.has(participant)) return;
    this.negotiationDue.add(participant);
    queueMicrotask(() => {
      if (!this.negotiationDue.delete(participant)) return;
      this.negotiate(participant);
    });
  }

  private negotiate(participant: Participant): void {
    const offers = participant.transport.offers;
    if (!offers) return;
    participant.renegotiate(
      async (rev) => {
        const offer = await offers.createOffer();
        if (participant.closed) throw new Error('left while the offer was made');
        participant.peer.send({ type: 'offer', rev, sdp: offer.sdp, mids: offer.mids });
      },
      this.deps.answerTimeoutMs,
      () => {
        this.logger.warn({ participant: participant.id, connection: participant.peer.connectionId }, 'no answer to the offer in time');
        participant.peer.close('no answer to the offer');
        this.leave(participant, 'dropped');
      },
    );
  }

  broadcast(message: ServerSignal, except?: Participant): void {
    for (const participant of this.participants.values()) if (participant !== except) participant.peer.send(message);
  }

  private appendRecord(entry: RoomRecordEntry): void {
    this.deps.record.append(this.clinic, this.consult, entry).catch((error: unknown) => {
      this.logger.warn({ err: error, type: entry.type, participant: entry.participant }, 'session record entry not written');
    });
  }

  private writePresence(): void {
    this.deps.presence.set(this.clinic, this.consult, this.participants.size).catch((error: unknown) => {
      this.logger.warn({ err: error }, 'room presence not written');
    });
  }

  counts(): { participants: number } {
    return { participants: this.participants.size };
  }
}
