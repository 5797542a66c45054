import type { ClientSignal, ConsultRole, MediaEngineName, MediaSource, MidMap, ServerSignal } from '@clinic-hub/protocol';
import type { TraceContext } from '@clinic-hub/platform/tracing';

/**
 * The SFU behind a small interface: mediasoup (the default) or werift (the
 * fallback where no mediasoup-worker could be built). Recording and the
 * audio tap see only what is here: published tracks as RTP. The two engines
 * negotiate differently (werift: the server makes every offer; mediasoup:
 * the client creates transports and produces), so a transport carries one of
 * two negotiation faces, and the room drives the one it has.
 */

/** One RTP packet as received from a publisher (already SRTP-decrypted). */
export interface RtpPacketLike {
  header: { payloadType: number; sequenceNumber: number; timestamp: number; ssrc: number; marker: boolean };
  payload: Buffer;
  /** The whole packet, serialised (header + payload). */
  serialize(): Buffer;
}

export interface TrackCodec {
  /** `audio/opus` or `video/VP8`. */
  mimeType: string;
  clockRate: number;
  channels?: number;
  payloadType: number;
}

/** A track a participant sends, as the SFU receives it. */
export interface PublishedTrack {
  readonly id: string;
  readonly clinic: string;
  /** The consultation id. */
  readonly roomId: string;
  readonly participantId: string;
  readonly part: ConsultRole;
  readonly kind: 'audio' | 'video';
  readonly source: MediaSource;
  readonly codec: TrackCodec;
  /** Every RTP packet from now on; returns the unsubscribe function. */
  onRtp(listener: (packet: RtpPacketLike) => void): () => void;
  /** Asks the publisher for a keyframe (coalesced with other requests, never dropped). */
  requestKeyframe(): void;
  /** Called once when the track ends (participant left, unpublished, connection closed). */
  onEnded(listener: () => void): () => void;
}

/** What the engine tells the rest of the media-server. */
export interface EngineEvents {
  trackPublished(track: PublishedTrack): void;
  participantJoined(roomId: string, participantId: string, part: ConsultRole): void;
  participantLeft(roomId: string, participantId: string): void;
  roomClosed(roomId: string): void;
}

/**
 * Recording, as the room's signalling sees it. The room decides when (every
 * participant present has consented and a clinician asked); the recorder
 * decides how (files, encryption, metadata, jobs).
 */
export interface Recorder {
  start(context: { clinic: string; consult: string; recordingId: string; tracks: PublishedTrack[] }): RoomRecording;
}

export interface RoomRecording {
  readonly recordingId: string;
  /** A track published while recording (someone joined with consent, or shared a screen). */
  addTrack(track: PublishedTrack): void;
  /** Closes every file, encrypts it, stores metadata and queues the finalise job, which carries `trace` (what stopped the recording). */
  stop(reason: 'requested' | 'consent-withdrawn' | 'participant-without-consent' | 'room-closed' | 'draining' | 'media-worker-died', trace?: TraceContext): Promise<void>;
}

/** Whose connection a transport is. */
export interface TransportOwner {
  clinic: string;
  roomId: string;
  participantId: string;
  part: ConsultRole;
}

/** One server-made offer: the SDP and which of its m-lines carry what (media-signal.ts `offer.mids`). */
export interface TransportOffer {
  sdp: string;
  mids: { publish: MidMap; subscribe: MidMap };
}

export type TransportState = 'new' | 'connecting' | 'connected' | 'disconnected' | 'failed' | 'closed';

/**
 * werift's negotiation: the server makes every offer, the client answers.
 * Publishing slots (the client's mic, camera and screen) and subscriptions
 * (everyone else's tracks) change between offers; `createOffer` puts the
 * current set into the next one.
 */
export interface ServerOffers {
  createOffer(): Promise<TransportOffer>;
  /** Applies the client's answer to the last offer; tracks it now sends are announced through onTrackPublished. */
  applyAnswer(sdp: string): Promise<void>;
  /** Adds or removes the screen-share slot (takes effect with the next offer). */
  setScreenSlot(on: boolean): void;
}

/** The client-driven messages of mediasoup's signalling (media-signal.ts). */
export type ClientMediaRequest = Extract<
  ClientSignal,
  { type: 'transport-create' | 'transport-connect' | 'ice-restart' | 'produce' | 'consume-ready' | 'consumer-resume' | 'consumer-view' }
>;

/** What the server sends a mediasoup client by itself (consumers coming and going, the active speaker, a moved room). */
export type ClientMediaSignal = Extract<ServerSignal, { type: 'consumer' | 'consumer-closed' | 'active-speaker' | 'media-reset' }>;

/**
 * mediasoup's negotiation: the client asks (transports, produce, consume) and
 * the server answers each request; subscriptions become `consumer` messages.
 */
export interface ClientDrivenMedia {
  /** Answers one request; the value is the ack's `result`. Throws SignalError. */
  handle(request: ClientMediaRequest): Promise<unknown>;
  /** Messages for this participant's client. */
  onSignal(listener: (message: ClientMediaSignal) => void): () => void;
  /** The client stopped sending a source (publish on:false): its producer closes and its track ends. */
  stopSource(source: MediaSource): void;
  /** The client resumed on a new socket: tells it every consumer again (those signalled to the old socket may be lost). */
  resync(): void;
}

/**
 * One participant's media connection as the room drives it: what they
 * publish, what they receive (subscribe/unsubscribe), and one of the two
 * negotiation faces (`offers` for werift, `client` for mediasoup).
 */
export interface ParticipantTransport {
  readonly owner: TransportOwner;
  /** Tracks this participant sends, by source, once negotiation has set them up. */
  readonly published: ReadonlyMap<MediaSource, PublishedTrack>;
  readonly offers: ServerOffers | null;
  readonly client: ClientDrivenMedia | null;
  /** Forwards another participant's track to this one. */
  subscribe(track: PublishedTrack): void;
  unsubscribe(trackId: string): void;
  onTrackPublished(listener: (track: PublishedTrack) => void): () => void;
  onStateChange(listener: (state: TransportState) => void): () => void;
  close(): Promise<void>;
}

/** What an engine counts, for metrics and benchmarks. */
export interface EngineCounters {
  /** RTP bytes and packets received from publishers and sent to subscribers (retransmissions included). */
  bytesIn: number;
  bytesOut: number;
  packetsIn: number;
  packetsOut: number;
  /** Keyframe requests sent to publishers (after coalescing) and received from subscribers. */
  plisSent: number;
  plisReceived: number;
  /** Bandwidth limits (REMB) sent to publishers of video, about one a second per track. */
  rembsSent: number;
  /** Video packets not forwarded to a subscriber whose link is poor, or that waits for a keyframe. */
  videoPacketsHeldBack: number;
}

/** What a room's media looks like to a joining client (`joined.media`). */
export type RoomMediaInfo = Extract<ServerSignal, { type: 'joined' }>['media'];

/** A room's media went away under it (mediasoup: its worker died) and was set up again elsewhere. */
export interface RoomMediaReset {
  clinic: string;
  roomId: string;
  reason: 'worker-died';
  /** Whether the room got new media (false: no worker could take it; the room should close). */
  moved: boolean;
}

export interface MediaEngine {
  readonly name: MediaEngineName;
  /** Sets up a room's media (mediasoup: a router on the least-loaded worker) before anyone joins it; idempotent. */
  openRoom(clinic: string, roomId: string): Promise<RoomMediaInfo>;
  /** The room is over: its media goes (every transport of it is closed first). */
  closeRoom(clinic: string, roomId: string): void;
  /** Called when a room's media was lost and rebuilt (its published tracks have ended; transports reset themselves). */
  onRoomReset(listener: (reset: RoomMediaReset) => void): () => void;
  createTransport(owner: TransportOwner): ParticipantTransport;
  /** Published tracks forwarded to subscribers right now (one per track and subscriber). */
  forwardedStreams(): number;
  /**
   * What the engine counted, as last read: werift counts in this process;
   * mediasoup's counts are in its workers, read when asked (refreshCounters,
   * or a read of counters() more than a second after the last) rather than on
   * a timer.
   */
  counters(): EngineCounters;
  /** Reads the counts where they are (mediasoup: from the workers; at most once a second) before a scrape. */
  refreshCounters(): Promise<void>;
  /**
   * The engine's own measure of the RTP bitrate in and out, bits per second,
   * as last read (mediasoup: the workers' rates); null: the metrics average
   * counters() over ten seconds themselves.
   */
  currentBitrate(): { in: number; out: number } | null;
  close(): Promise<void>;
}
