import { PublishedTrackBase } from './published-track-base.js';
import { randomUUID } from 'node:crypto';
import { ReceiverEstimatedMaxBitrate, RtcpPayloadSpecificFeedback, type RTCRtpTransceiver, type RtpPacket } from 'werift';
import type { MediaSource } from '@clinic-hub/protocol';
import type { Logger } from 'pino';
import type { EngineCounters, PublishedTrack, RtpPacketLike, TrackCodec, TransportOwner } from './engine-types.js';
import { nextVideoBitrate } from './video-bitrate.js';
import { isVp8KeyframeStart } from './vp8.js';
import type { Forward } from './werift-forward.js';

/**
 * Keyframe requests to one publisher are at least this far apart. A request
 * inside the window is not dropped: one PLI goes out when the window ends
 * and answers every request made meanwhile.
 */
export const KEYFRAME_MIN_INTERVAL_MS = 250;
/** How often a publisher's video is told its bitrate (REMB): the policy's step (engine/video-bitrate.ts). */
const REMB_INTERVAL_MS = 1000;

/**
 * One track a participant sends, as werift receives it: the RTP of the
 * publishing transceiver, fanned out to every subscriber's forward and to any
 * other listener (the recorder, the audio tap).
 */
export class WeriftPublishedTrack extends PublishedTrackBase implements PublishedTrack {
  readonly id = randomUUID();
  readonly kind: 'audio' | 'video';
  readonly codec: TrackCodec;
  /** The forwards to subscribers: walked for every packet, so a plain array (no iterator allocation). */
  private forwards: Forward[] = [];
  private readonly listeners = new Set<(packet: RtpPacketLike) => void>();
  private readonly isVp8: boolean;
  private mediaSsrc: number | null = null;
  private lastKeyframeRequestAt = 0;
  private keyframeTimer: NodeJS.Timeout | null = null;
  /** A keyframe was asked for when it could not be sent: asked again with the next packet. */
  private keyframeWanted = false;
  /** Sequence numbers seen (extended past wrap-around), to tell the loss on the publisher's uplink. */
  private firstSeq = -1;
  private highestSeq = -1;
  private packetsReceived = 0;
  /** What the publisher's video is asked to send now (bits per second; engine/video-bitrate.ts). */
  private videoBitrate: number;
  private rembTimer: NodeJS.Timeout | null = null;

  constructor(
    owner: TransportOwner,
    source: MediaSource,
    private readonly transceiver: RTCRtpTransceiver,
    private readonly counters: EngineCounters,
    private readonly logger: Logger,
    private readonly videoCeiling: number,
  ) {
    super(owner, source);
    this.kind = transceiver.kind === 'audio' ? 'audio' : 'video';
    const negotiated = transceiver.codecs[0];
    if (!negotiated || negotiated.payloadType === undefined) throw new Error(`no negotiated codec on the ${source} slot`);
    this.codec = {
      mimeType: negotiated.mimeType.toLowerCase() === 'audio/opus' ? 'audio/opus' : negotiated.mimeType,
      clockRate: negotiated.clockRate,
      ...(negotiated.channels !== undefined ? { channels: negotiated.channels } : {}),
      payloadType: negotiated.payloadType,
    };
    this.isVp8 = negotiated.mimeType.toLowerCase() === 'video/vp8';
    this.videoBitrate = videoCeiling;
  }

  /** Hot path: every packet of this track. */
  deliver(packet: RtpPacket): void {
    if (this.ended) return;
    this.mediaSsrc = packet.header.ssrc;
    // The first packet: the publisher's SSRC is known and its connection is up. Chrome trusts a REMB
    // fully only in its first seconds (it jumps to the value then; later it creeps up by 8% a second).
    if (this.rembTimer === null && this.kind === 'video') this.startBitrateFeedback();
    if (this.keyframeWanted) {
      this.keyframeWanted = false;
      this.requestKeyframe();
    }
    this.counters.packetsIn += 1;
    this.counters.bytesIn += packet.payload.length + 12;
    this.countSequence(packet.header.sequenceNumber);
    const forwards = this.forwards;
    if (forwards.length > 0) {
      // Only parsed when some subscriber waits for a keyframe.
      let keyframe: boolean | null = null;
      for (let i = 0; i < forwards.length; i++) {
        const forward = forwards[i]!;
        if (forward.needsKeyframe && keyframe === null) keyframe = this.isVp8 && isVp8KeyframeStart(packet.payload);
        forward.send(packet, keyframe === true);
      }
    }
    if (this.listeners.size > 0) {
      for (const listener of this.listeners) {
        try {
          listener(packet);
        } catch (error) {
          this.logger.error({ err: error, track: this.id }, 'an RTP listener failed');
        }
      }
    }
  }

  private countSequence(seq: number): void {
    this.packetsReceived += 1;
    if (this.highestSeq < 0) {
      this.firstSeq = this.highestSeq = seq;
      return;
    }
    const ahead = (seq - (this.highestSeq & 0xffff) + 0x10000) & 0xffff;
    if (ahead > 0 && ahead < 0x8000) this.highestSeq += ahead;
  }

  /** Packets the publisher sent so far (from the sequence numbers) and those that arrived. */
  receptionCounts(): { expected: number; received: number } {
    return { expected: this.highestSeq < 0 ? 0 : this.highestSeq - this.firstSeq + 1, received: this.packetsReceived };
  }

  addForward(forward: Forward): void {
    if (this.ended) return;
    this.forwards = [...this.forwards, forward];
  }

  removeForward(forward: Forward): void {
    this.forwards = this.forwards.filter((f) => f !== forward);
  }

  get forwardCount(): number {
    return this.forwards.length;
  }

  onRtp(listener: (packet: RtpPacketLike) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  requestKeyframe(): void {
    if (this.kind !== 'video' || this.ended || this.keyframeTimer) return;
    const wait = this.lastKeyframeRequestAt + KEYFRAME_MIN_INTERVAL_MS - Date.now();
    if (wait <= 0) {
      this.sendPli();
      return;
    }
    this.keyframeTimer = setTimeout(() => {
      this.keyframeTimer = null;
      this.sendPli();
    }, wait);
  }

  private sendPli(): void {
    if (this.ended) return;
    const receiver = this.transceiver.receiver;
    const ssrc = this.mediaSsrc ?? receiver.tracks[0]?.ssrc;
    // Not sendable yet (no SSRC, or the publisher's connection still coming
    // up, as when a subscriber connects first): asked again with the next
    // packet from the publisher, so no request is lost.
    if (ssrc === undefined || receiver.dtlsTransport?.state !== 'connected') {
      this.keyframeWanted = true;
      return;
    }
    this.lastKeyframeRequestAt = Date.now();
    this.counters.plisSent += 1;
    receiver.sendRtcpPLI(ssrc).catch((error: unknown) => {
      this.logger.debug({ err: error, track: this.id }, 'PLI not sent; asking again with the next packet');
      this.keyframeWanted = true;
    });
  }

  private startBitrateFeedback(): void {
    this.sendRemb();
    this.rembTimer = setInterval(() => {
      let worstLoss = 0;
      for (const forward of this.forwards) worstLoss = Math.max(worstLoss, forward.subscriberLoss);
      const next = nextVideoBitrate(this.videoBitrate, worstLoss, this.videoCeiling);
      if (next < this.videoBitrate) this.logger.debug({ track: this.id, bitrate: next, worstLoss }, 'video bitrate lowered for subscriber loss');
      this.videoBitrate = next;
      this.sendRemb();
    }, REMB_INTERVAL_MS);
    this.rembTimer.unref();
  }

  /** Tells the publisher the most its video may send (a REMB for its SSRC). */
  private sendRemb(): void {
    const receiver = this.transceiver.receiver;
    const ssrc = this.mediaSsrc;
    if (this.ended || ssrc === null || receiver.dtlsTransport?.state !== 'connected') return;
    this.counters.rembsSent += 1;
    receiver.dtlsTransport.sendRtcp([rembPacket(receiver.rtcpSsrc, ssrc, this.videoBitrate)]).catch((error: unknown) => {
      this.logger.debug({ err: error, track: this.id }, 'REMB not sent; the next goes in a second');
    });
  }

  end(): void {
    if (!this.trackEnd.end()) return;
    if (this.rembTimer) clearInterval(this.rembTimer);
    this.rembTimer = null;
    if (this.keyframeTimer) clearTimeout(this.keyframeTimer);
    this.keyframeTimer = null;
    const forwards = this.forwards;
    this.forwards = [];
    for (const forward of forwards) forward.sourceEnded();
    this.listeners.clear();
    this.trackEnd.notify((error) => this.logger.error({ err: error, track: this.id }, 'an ended listener failed'));
  }

  get isEnded(): boolean {
    return this.trackEnd.ended;
  }
}

/** A REMB for one media SSRC: the bitrate as an 18-bit mantissa and a 6-bit exponent (draft-alvestrand-rmcat-remb). */
export function rembPacket(senderSsrc: number, mediaSsrc: number, bitsPerSecond: number): RtcpPayloadSpecificFeedback {
  let mantissa = Math.max(0, Math.floor(bitsPerSecond));
  let exponent = 0;
  while (mantissa > 0x3ffff) {
    mantissa = Math.floor(mantissa / 2);
    exponent += 1;
  }
  return new RtcpPayloadSpecificFeedback({
    feedback: new ReceiverEstimatedMaxBitrate({ senderSsrc, mediaSsrc: 0, ssrcNum: 1, brExp: exponent, brMantissa: mantissa, ssrcFeedbacks: [mediaSsrc] }),
  });
}
