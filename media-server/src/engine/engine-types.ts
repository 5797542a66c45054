import type { ConsultRole, MediaSource } from '@clinic-hub/protocol';

/**
 * The SFU behind a small interface, so that another engine (mediasoup,
 * where its worker binary can be had) can replace werift. Recording and the
 * audio tap see only what is here: published tracks as RTP.
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
  /** Closes every file, encrypts it, stores metadata and queues the finalise job. */
  stop(reason: 'requested' | 'consent-withdrawn' | 'participant-without-consent' | 'room-closed' | 'draining'): Promise<void>;
}
