import { randomBytes } from 'node:crypto';
import {
  MediaStreamTrack,
  RTCPeerConnection,
  ReceiverEstimatedMaxBitrate,
  RtcpPayloadSpecificFeedback,
  Vp8Packetizer,
  useNACK,
  useOPUS,
  usePLI,
  useSdesMid,
  useVP8,
  type RTCRtpTransceiver,
} from 'werift';
import WebSocket from 'ws';
import type { MidMap, ServerSignal } from '@clinic-hub/protocol';
import { onKeyframeRequests, releaseStoppedSender } from '@clinic-hub/media-server/engine/werift-workarounds';
import { MediaSchedule } from './media-schedule.js';
import type { EncodedMedia } from './recording-media.js';
import { SignalPeer } from './signal-peer.js';

export type { JoinedMessage, ReceivedStream } from './signal-peer.js';

export interface PeerOptions {
  /** Pre-encoded media to publish (mic and camera); none: the peer only receives. */
  media?: EncodedMedia | null;
  /** Answer the server's offers by itself (default), or leave it to the test (`answer`). */
  autoAnswer?: boolean;
  /** Drop this share of incoming SRTP packets (a poor downlink). */
  inboundLossPercent?: number;
  /** Drop this share of outgoing SRTP packets (a poor uplink). */
  outboundLossPercent?: number;
  /** Ignore this many of the server's keyframe requests first, as if they were lost on the way. */
  ignoreKeyframeRequests?: number;
}

/**
 * A participant without a browser: signalling over `ws`, one werift peer
 * connection that answers the server's offers (exactly as the page does),
 * publishing pre-encoded VP8 and Opus in real time when given media, and
 * counting what it receives from the others. Tests use it where a browser is
 * not the point (churn, bad input) and the benchmark uses many of them.
 */
export class NodePeer extends SignalPeer {
  private readonly pc: RTCPeerConnection;
  private readonly audio = new MediaStreamTrack({ kind: 'audio' });
  private readonly video = new MediaStreamTrack({ kind: 'video' });
  private sender: EncodedMediaSender | null = null;
  private subscribeMids: MidMap = {};
  private queue: Promise<void> = Promise.resolve();
  /** Offers answered, and the rev of the last. */
  answered = 0;
  lastRev = 0;
  /** Offers this peer could not answer (a test fails on them). */
  readonly answerErrors: string[] = [];
  /** Keyframe requests (PLI) the server sent for this peer's camera. */
  keyframeRequests = 0;
  /** The bitrates (bits per second) of the REMBs the server sent for this peer's camera, in order. */
  readonly rembs: number[] = [];

  private constructor(
    ws: WebSocket,
    media: EncodedMedia | null,
    private readonly options: { autoAnswer: boolean; inboundLossPercent?: number; outboundLossPercent?: number; ignoreKeyframeRequests?: number },
  ) {
    super(ws);
    this.pc = new RTCPeerConnection({
      // werift drops a packet when `value / 100 < Math.random()`: a value of 60 drops 40% (werift's own quirk, inverted here).
      debug: {
        ...(options.inboundLossPercent ? { inboundPacketLoss: 100 - options.inboundLossPercent } : {}),
        ...(options.outboundLossPercent ? { outboundPacketLoss: 100 - options.outboundLossPercent } : {}),
      },
      codecs: { audio: [useOPUS({ parameters: 'minptime=10;useinbandfec=1' })], video: [useVP8({ rtcpFeedback: [useNACK(), usePLI()] })] },
      headerExtensions: { audio: [useSdesMid()], video: [useSdesMid()] },
      bundlePolicy: 'max-bundle',
      iceServers: [],
      iceUseIpv6: false,
      iceAdditionalHostAddresses: ['127.0.0.1'],
    });
    if (media) this.sender = new EncodedMediaSender(media, this.audio, this.video);
    this.pc.onTrack.subscribe((track) => {
      const transceiver = this.pc.getTransceivers().find((t) => t.receiver.tracks.includes(track) || t.receiver.track === track);
      const mid = transceiver?.mid;
      if (!mid) return;
      const info = this.subscribeMids[mid];
      const count = this.countStream({ mid, participant: info?.participant ?? '?', source: info?.source ?? '?', kind: track.kind === 'audio' ? 'audio' : 'video' });
      track.onReceiveRtp.subscribe(count);
    });
  }

  protected override onMessage(message: ServerSignal): void {
    if (message.type === 'offer' && this.options.autoAnswer) this.queue = this.queue.then(() => this.answer(message)).catch((error: unknown) => void this.answerErrors.push(String(error)));
  }

  /** Opens the signalling socket (no join yet). */
  static async connect(mediaUrl: string, options: PeerOptions = {}): Promise<NodePeer> {
    const ws = await SignalPeer.openSocket(mediaUrl);
    const { inboundLossPercent, outboundLossPercent, ignoreKeyframeRequests } = options;
    return new NodePeer(ws, options.media ?? null, {
      autoAnswer: options.autoAnswer ?? true,
      ...(inboundLossPercent ? { inboundLossPercent } : {}),
      ...(outboundLossPercent ? { outboundLossPercent } : {}),
      ...(ignoreKeyframeRequests ? { ignoreKeyframeRequests } : {}),
    });
  }

  /** Connects and joins; resolves with the peer once `joined` arrived (throws on an error answer). */
  static async join(mediaUrl: string, token: string, options: PeerOptions = {}): Promise<NodePeer> {
    const peer = await NodePeer.connect(mediaUrl, options);
    await peer.sendJoin(token);
    return peer;
  }

  async answer(offer: Extract<ServerSignal, { type: 'offer' }>): Promise<void> {
    this.subscribeMids = { ...this.subscribeMids, ...offer.mids.subscribe };
    await this.pc.setRemoteDescription({ type: 'offer', sdp: offer.sdp });
    for (const transceiver of this.pc.getTransceivers()) {
      const slot = transceiver.mid !== null ? offer.mids.publish[transceiver.mid] : undefined;
      if (slot) this.fillSlot(transceiver, slot.source);
    }
    const answer = await this.pc.createAnswer();
    await this.pc.setLocalDescription(answer);
    // The same werift leak as on the server (werift-workarounds.ts): m-lines the server stopped keep their senders alive.
    for (const transceiver of this.pc.getTransceivers()) if (transceiver.stopped || transceiver.stopping) releaseStoppedSender(transceiver.sender);
    this.answered += 1;
    this.lastRev = offer.rev;
    this.send({ type: 'answer', rev: offer.rev, sdp: this.pc.localDescription!.sdp });
    if (this.sender && !this.sender.playing) this.sender.play();
  }

  private fillSlot(transceiver: RTCRtpTransceiver, source: string): void {
    const track = source === 'mic' ? this.audio : source === 'camera' ? this.video : null;
    if (!track || !this.sender || transceiver.sender.track === track) {
      if (!track || !this.sender) transceiver.setDirection('inactive');
      return;
    }
    transceiver.setDirection('sendonly');
    void transceiver.sender.replaceTrack(track);
    if (track === this.video) {
      // werift's own routing can hand the server's PLI to the wrong object (werift-workarounds.ts): read it from the transport.
      const videoSender = transceiver.sender;
      let toIgnore = this.options.ignoreKeyframeRequests ?? 0;
      onKeyframeRequests(this.pc, (ssrc) => {
        if (ssrc !== videoSender.ssrc) return;
        this.keyframeRequests += 1;
        if (toIgnore > 0) toIgnore -= 1;
        else this.sender?.keyframeRequested();
      });
      for (const dtls of this.pc.dtlsTransports) {
        dtls.onRtcp.subscribe((packet) => {
          if (packet instanceof RtcpPayloadSpecificFeedback && packet.feedback instanceof ReceiverEstimatedMaxBitrate && packet.feedback.ssrcFeedbacks.includes(videoSender.ssrc)) {
            this.rembs.push(Number(packet.feedback.bitrate));
          }
        });
      }
    }
  }

  /** Drops without a goodbye: the socket and the peer connection close. */
  async close(): Promise<void> {
    this.sender?.pause();
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
    await this.pc.close().catch(() => undefined);
  }

  get connectionState(): string {
    return this.pc.connectionState;
  }
}

/**
 * Sends pre-encoded frames on a wall-clock schedule, as a browser's encoder
 * would, looping the file (media-schedule.ts): Opus on the audio track, VP8
 * packetized on the video track. A keyframe request (PLI) makes the next
 * video frame sent the next keyframe of the file.
 */
export class EncodedMediaSender {
  playing = false;
  private timer: NodeJS.Timeout | null = null;
  private readonly vp8: Vp8Packetizer;
  private readonly schedule: MediaSchedule;

  constructor(
    private readonly media: EncodedMedia,
    private readonly audio: MediaStreamTrack,
    private readonly video: MediaStreamTrack,
  ) {
    this.vp8 = new Vp8Packetizer({ ssrc: randomBytes(4).readUInt32BE(), payloadType: 96 });
    this.schedule = new MediaSchedule(media.audio, media.video);
  }

  keyframeRequested(): void {
    this.schedule.keyframeRequested();
  }

  play(): void {
    if (this.timer) return;
    this.playing = true;
    this.schedule.start();
    this.timer = setInterval(() => this.tick(), 10);
  }

  pause(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.playing = false;
  }

  private tick(): void {
    const due = this.schedule.due();
    for (const packet of due.audio) this.audio.writeRtp(packet);
    for (const { frame, timestamp } of due.video) {
      for (const packet of this.vp8.packetize(this.media.video[frame]!.data, timestamp)) this.video.writeRtp(packet);
    }
  }
}
