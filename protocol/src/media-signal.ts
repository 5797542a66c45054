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
 *
 * That is the `werift` engine's signalling. A node on the `mediasoup` engine
 * (the default; `joined.media.engine` says which) is driven by the client
 * instead, the way mediasoup-client works: the client loads the router's RTP
 * capabilities from `joined.media`, creates a send and a receive transport
 * (`transport-create`, answered by an `ack` whose `result` carries the ICE
 * and DTLS parameters), connects them (`transport-connect`), produces its
 * microphone, camera (three simulcast layers) and screen (`produce`), and
 * says what it can receive (`consume-ready`). The server then sends a
 * `consumer` for every track of the others (paused until the client sends
 * `consumer-resume`) and `consumer-closed` when one ends. A client whose
 * network changed restarts ICE on the same transports (`ice-restart`): the
 * others see nothing. docs/consultations.md, "Signalling (mediasoup)".
 */

export const MEDIA_SIGNAL_PATH = '/signal';
/** Largest signalling frame accepted (an SDP for six people is ~20 kB). */
export const MEDIA_SIGNAL_MAX_BYTES = 65_536;

/** Any JSON value at most `levels` objects or arrays deep (0: a string, number, boolean or null). */
function jsonValue(levels: number): z.ZodType {
  const primitive = z.union([z.string(), z.number(), z.boolean(), z.null()]);
  if (levels === 0) return primitive;
  const inner = jsonValue(levels - 1);
  return z.union([primitive, z.array(inner), z.record(z.string(), inner)]);
}

/**
 * A mediasoup parameter object (RTP parameters, DTLS parameters, RTP
 * capabilities) as mediasoup-client makes it: checked for shape by mediasoup
 * itself, which refuses what it cannot use (MEDIA_PARAMETERS_INVALID). Its
 * depth is bounded, as every payload's is (PAYLOAD_MAX_DEPTH): the deepest
 * mediasoup-client writes is a codec's RTCP feedback entry, rtpParameters →
 * codecs → codec → rtcpFeedback → entry, five levels.
 */
const MediasoupObject = z.record(z.string(), jsonValue(4));

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
  /** Set once, on the message that tells a recording stopped by itself: `media-worker-died` (the room's media worker crashed; the files up to then are kept). */
  stopReason: z.literal('media-worker-died').optional(),
});
export type RecordingStatus = z.infer<typeof RecordingStatus>;

/**
 * Client → server. `id` (optional) is echoed in the `ack` or `error` that
 * answers it. Any message may also carry `traceparent` (docs/protocol.md),
 * taken out before validation.
 */
export const ClientSignal = z.discriminatedUnion('type', [
  /**
   * `resume`: the `session` of this client's last `joined`, after its socket
   * dropped (mediasoup): the server hands the participant, still in the room
   * with its transports, to this socket (`joined.resumed`), and the others
   * see nothing. Without it, or when the server no longer has that session,
   * it is a fresh join.
   */
  z.object({ type: z.literal('join'), id: z.string().max(64).optional(), token: z.string().min(1).max(4096), resume: z.string().min(1).max(64).optional() }),
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
  // ---- mediasoup engine only (MEDIA_WRONG_ENGINE on a werift node) ----
  /** Creates this participant's send or receive WebRTC transport (one of each); the ack's `result` is a MediaTransportInfo. */
  z.object({ type: z.literal('transport-create'), id: z.string().max(64).optional(), direction: z.enum(['send', 'recv']) }),
  /** The client's DTLS parameters (fingerprints and role), once per transport. */
  z.object({ type: z.literal('transport-connect'), id: z.string().max(64).optional(), transport: z.string().max(64), dtlsParameters: MediasoupObject }),
  /** New ICE credentials for the same transport (network changed or dropped); the ack's `result` is `{ iceParameters }`. */
  z.object({ type: z.literal('ice-restart'), id: z.string().max(64).optional(), transport: z.string().max(64) }),
  /** Starts sending a source on the send transport; the ack's `result` is `{ producer }` (its id). A second produce of the same source replaces the first. */
  z.object({
    type: z.literal('produce'),
    id: z.string().max(64).optional(),
    transport: z.string().max(64),
    source: MediaSource,
    kind: z.enum(['audio', 'video']),
    rtpParameters: MediasoupObject,
  }),
  /** What the client can receive (its mediasoup-client Device's `rtpCapabilities`): from now on the server sends `consumer` messages. */
  z.object({ type: z.literal('consume-ready'), id: z.string().max(64).optional(), rtpCapabilities: MediasoupObject }),
  /** The client has set up this consumer: the server starts sending its media. */
  z.object({ type: z.literal('consumer-resume'), id: z.string().max(64).optional(), consumer: z.string().max(64) }),
  /**
   * How large this video consumer is shown (CSS pixels of its tile; 0 × 0
   * when hidden): the server sends no higher simulcast layer than the tile
   * needs, and bandwidth goes to larger tiles first.
   */
  z.object({
    type: z.literal('consumer-view'),
    id: z.string().max(64).optional(),
    consumer: z.string().max(64),
    width: z.number().int().min(0).max(8192),
    height: z.number().int().min(0).max(8192),
  }),
]);
export type ClientSignal = z.infer<typeof ClientSignal>;

export type MidMap = Record<string, { participant: string; source: MediaSource }>;

/** Which engine's signalling a node speaks (in `joined.media`). */
export type MediaEngineName = 'werift' | 'mediasoup';

/** `transport-create`'s ack result: what mediasoup-client's `device.createSendTransport`/`createRecvTransport` take. */
export interface MediaTransportInfo {
  id: string;
  direction: 'send' | 'recv';
  iceParameters: Record<string, unknown>;
  iceCandidates: Record<string, unknown>[];
  dtlsParameters: Record<string, unknown>;
}

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
      /** Which signalling follows: werift's server-made offers, or mediasoup's client-driven transports (with the router's RTP capabilities for mediasoup-client's `device.load`). */
      media: { engine: 'werift' } | { engine: 'mediasoup'; routerRtpCapabilities: Record<string, unknown> };
      /** This participant's session on this node: what `join.resume` names after a dropped socket. */
      session: string;
      /** The join resumed that session: the client keeps its transports, producers and consumers (the server sends `consumer` again for each). */
      resumed?: true;
    }
  | { type: 'offer'; rev: number; sdp: string; mids: { publish: MidMap; subscribe: MidMap } }
  | { type: 'participant-joined'; participant: ParticipantInfo }
  | { type: 'participant-left'; participant: string; reason: 'left' | 'dropped' | 'replaced' | 'removed' }
  | { type: 'participant-updated'; participant: ParticipantInfo }
  | { type: 'recording'; recording: RecordingStatus }
  /** `result`: what a mediasoup request returns (transport-create, ice-restart, produce). */
  | { type: 'ack'; id: string; result?: unknown }
  /** mediasoup: another participant's track for this client's receive transport (paused until `consumer-resume`). */
  | {
      type: 'consumer';
      consumer: string;
      producer: string;
      participant: string;
      source: MediaSource;
      kind: 'audio' | 'video';
      rtpParameters: Record<string, unknown>;
    }
  /** mediasoup: that track ended (its participant left or stopped sharing). */
  | { type: 'consumer-closed'; consumer: string }
  /** mediasoup: who is speaking now (the room's ActiveSpeakerObserver); null when nobody has spoken for a while. */
  | { type: 'active-speaker'; participant: string | null }
  /**
   * mediasoup: the media worker hosting this room stopped; the room moved to
   * another. The participant is still in the room: the client closes its
   * transports and creates them again (from `transport-create`), with the
   * router capabilities given here.
   */
  | { type: 'media-reset'; routerRtpCapabilities: Record<string, unknown> }
  | { type: 'pong'; id?: string; serverTime: number }
  | { type: 'error'; id?: string; code: string; message: string; detail?: string }
  /** The room is over (ended by the clinic, or this node is draining and the client should rejoin through the hub). */
  | { type: 'closed'; reason: 'ended' | 'draining' | 'replaced' | 'expired' };
