import { z } from 'zod';
import { ConsultRole } from './consult.js';

/**
 * Signalling between a browser (or a Node peer) and a media-server node:
 * JSON text frames on one WebSocket at `<media url>/signal`.
 *
 * One RTCPeerConnection per participant (bundle-only). The server makes every
 * offer — at join, when someone comes or goes, when someone shares a screen —
 * and the client only answers, so there is no glare. Offers are numbered
 * (`rev`); an answer names the rev it answers; the server sends the next offer
 * only after the previous one is answered. In each offer the server's
 * recvonly m-lines are where the client sends (its `mids.publish`), its
 * sendonly m-lines carry other participants' tracks (`mids.subscribe`).
 * ICE is not trickled: offers and answers carry their candidates.
 */

export const MEDIA_SIGNAL_PATH = '/signal';
/** Largest signalling frame accepted (an SDP for six people is ~20 kB). */
export const MEDIA_SIGNAL_MAX_BYTES = 65_536;

export const MEDIA_SOURCES = ['mic', 'camera', 'screen'] as const;
export const MediaSource = z.enum(MEDIA_SOURCES);
export type MediaSource = z.infer<typeof MediaSource>;

export const RecordingState = z.enum(['off', 'waiting-consent', 'recording']);
export type RecordingState = z.infer<typeof RecordingState>;

export const ParticipantInfo = z.object({
  id: z.string(),
  part: ConsultRole,
  name: z.string(),
  /** Sources this participant is sending now. */
  sources: z.array(MediaSource),
  muted: z.object({ mic: z.boolean(), camera: z.boolean() }),
  consent: z.boolean(),
});
export type ParticipantInfo = z.infer<typeof ParticipantInfo>;

export const RecordingStatus = z.object({
  state: RecordingState,
  /** Ids of present participants who have not consented (why it is waiting). */
  missingConsent: z.array(z.string()),
  recordingId: z.string().nullable(),
  startedAt: z.number().nullable(),
});
export type RecordingStatus = z.infer<typeof RecordingStatus>;

/**
 * Client → server. `id` (optional) is echoed in the `ack` or `error` that
 * answers it. Any message may also carry `traceparent` (docs/protocol.md),
 * taken out before validation.
 */
export const ClientSignal = z.discriminatedUnion('type', [
  z.object({ type: z.literal('join'), id: z.string().max(64).optional(), token: z.string().min(1).max(4096) }),
  z.object({ type: z.literal('answer'), id: z.string().max(64).optional(), rev: z.number().int().min(1), sdp: z.string().min(1).max(60_000) }),
  /** Start or stop sending a source; the server renegotiates (screen) or just tells the others (mute). */
  z.object({ type: z.literal('publish'), id: z.string().max(64).optional(), source: MediaSource, on: z.boolean() }),
  z.object({ type: z.literal('mute'), id: z.string().max(64).optional(), source: z.enum(['mic', 'camera']), muted: z.boolean() }),
  z.object({ type: z.literal('consent'), id: z.string().max(64).optional(), granted: z.boolean() }),
  /** Clinicians only: ask to record (it starts when everyone present has consented) or stop. */
  z.object({ type: z.literal('recording'), id: z.string().max(64).optional(), action: z.enum(['start', 'stop']) }),
  /** A subscriber asks for a fresh keyframe of one participant's camera or screen. */
  z.object({ type: z.literal('keyframe'), id: z.string().max(64).optional(), participant: z.string().max(128), source: z.enum(['camera', 'screen']) }),
  z.object({ type: z.literal('ping'), id: z.string().max(64).optional() }),
  z.object({ type: z.literal('leave'), id: z.string().max(64).optional() }),
]);
export type ClientSignal = z.infer<typeof ClientSignal>;

export type MidMap = Record<string, { participant: string; source: MediaSource }>;

/** Server → client. */
export type ServerSignal =
  | {
      type: 'joined';
      self: ParticipantInfo;
      consult: string;
      participants: ParticipantInfo[];
      recording: RecordingStatus;
      /** ICE servers the client should use (TURN from the media-server's configuration). */
      iceServers: { urls: string | string[]; username?: string; credential?: string }[];
    }
  | { type: 'offer'; rev: number; sdp: string; mids: { publish: MidMap; subscribe: MidMap } }
  | { type: 'participant-joined'; participant: ParticipantInfo }
  | { type: 'participant-left'; participant: string; reason: 'left' | 'dropped' | 'replaced' | 'removed' }
  | { type: 'participant-updated'; participant: ParticipantInfo }
  | { type: 'recording'; recording: RecordingStatus }
  | { type: 'ack'; id: string }
  | { type: 'pong'; id?: string; serverTime: number }
  | { type: 'error'; id?: string; code: string; message: string; detail?: string }
  /** The room is over (ended by the clinic, or this node is draining and the client should rejoin through the hub). */
  | { type: 'closed'; reason: 'ended' | 'draining' | 'replaced' | 'expired' };
