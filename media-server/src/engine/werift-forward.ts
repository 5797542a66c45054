import type { RTCRtpSender, RtpPacket } from 'werift';
import type { EngineCounters } from './engine-types.js';
import type { WeriftPublishedTrack } from './werift-published-track.js';

/** Loss a subscriber reports on its video (RTCP receiver reports, smoothed) above which its video is held back. */
const POOR_LINK_LOSS = 0.2;
/** How long video stays held back before it is tried again (from a fresh keyframe). */
const VIDEO_HOLD_MS = 4000;
/**
 * A subscriber still waiting for a keyframe this long after asking asks again:
 * the request, or the keyframe's first packet, can be lost on the way.
 */
const KEYFRAME_RETRY_MS = 1000;
/** Bytes waiting in the UDP socket's send queue above which video is held back: the kernel is not keeping up with this subscriber. */
const SEND_QUEUE_LIMIT_BYTES = 256 * 1024;
/** The send queue is looked at every this many video packets, not on every one. */
const SEND_QUEUE_CHECK_EVERY = 32;

/**
 * One subscriber's downlink. Audio always goes out. Video is held back, for
 * every track this subscriber receives, while the link is poor — the
 * subscriber reports heavy loss, or the socket's send queue is backing up —
 * so that what bandwidth there is carries speech; after a while video
 * resumes from a fresh keyframe. Sends are never awaited, so one slow
 * subscriber never delays another or the publisher.
 */
export class SubscriberLink {
  videoHeld = false;
  private loss = 0;
  private releaseTimer: NodeJS.Timeout | null = null;
  private videoPackets = 0;
  private readonly forwards = new Set<Forward>();

  constructor(
    private readonly sendQueueBytes: () => number,
    private readonly onHoldChange: (held: boolean) => void = () => undefined,
  ) {}

  add(forward: Forward): void {
    this.forwards.add(forward);
  }

  remove(forward: Forward): void {
    this.forwards.delete(forward);
  }

  /** The loss this subscriber's own downlink shows (smoothed, 0..1): also what its publishers' video bitrate follows. */
  get lossFraction(): number {
    return this.loss;
  }

  /** A receiver report's fraction lost (0..1) for one of this subscriber's streams. */
  reportLoss(fractionLost: number): void {
    // Smoothed, so one bad report (a burst) does not cut video: steady 40% loss trips it on the second report.
    this.loss = this.loss * 0.7 + fractionLost * 0.3;
    if (this.loss > POOR_LINK_LOSS) this.hold();
  }

  /** Called per video packet about to be sent. */
  checkQueue(): void {
    this.videoPackets += 1;
    if (this.videoPackets % SEND_QUEUE_CHECK_EVERY === 0 && this.sendQueueBytes() > SEND_QUEUE_LIMIT_BYTES) this.hold();
  }

  private hold(): void {
    if (this.releaseTimer) clearTimeout(this.releaseTimer);
    if (!this.videoHeld) {
      this.videoHeld = true;
      this.onHoldChange(true);
    }
    this.releaseTimer = setTimeout(() => {
      this.releaseTimer = null;
      this.videoHeld = false;
      this.loss = 0;
      this.onHoldChange(false);
      for (const forward of this.forwards) forward.restartFromKeyframe();
    }, VIDEO_HOLD_MS);
  }

  close(): void {
    if (this.releaseTimer) clearTimeout(this.releaseTimer);
    this.releaseTimer = null;
    this.forwards.clear();
  }
}

/**
 * One published track forwarded to one subscriber through a sendonly
 * transceiver of the subscriber's peer connection. werift's sender rewrites
 * SSRC, payload type, sequence numbers and timestamps, keeps the last 128
 * packets and answers the subscriber's NACKs from them.
 */
export class Forward {
  /** Until negotiated and connected, packets are not sent (werift would drop them anyway). */
  private active = false;
  /** Video starts, and restarts after a hold, on a keyframe: a decoder cannot use anything before one. */
  needsKeyframe: boolean;
  private sentAny = false;
  private keyframeAskedAt = 0;
  private lastInputTimestamp = 0;
  private lastReception = { expected: 0, received: 0 };

  constructor(
    readonly track: WeriftPublishedTrack,
    readonly sender: RTCRtpSender,
    private readonly link: SubscriberLink,
    private readonly counters: EngineCounters,
    private readonly onSourceEnded: (forward: Forward) => void,
  ) {
    this.needsKeyframe = track.kind === 'video';
    link.add(this);
    track.addForward(this);
  }

  /** Hot path. `keyframe` is only computed while needsKeyframe is set. */
  send(packet: RtpPacket, keyframe: boolean): void {
    if (!this.active) return;
    if (this.track.kind === 'video') {
      if (this.link.videoHeld) {
        this.needsKeyframe = true;
        this.counters.videoPacketsHeldBack += 1;
        return;
      }
      if (this.needsKeyframe) {
        if (!keyframe) {
          this.counters.videoPacketsHeldBack += 1;
          if (Date.now() - this.keyframeAskedAt >= KEYFRAME_RETRY_MS) this.askForKeyframe();
          return;
        }
        this.needsKeyframe = false;
        // Keep sequence numbers contiguous over the packets held back (or the
        // subscriber NACKs packets it will never get); keep the publisher's
        // timestamp spacing, so the pause stays a pause.
        if (this.sentAny) this.sender.replaceRTP(packet.header, false, (packet.header.timestamp - this.lastInputTimestamp) >>> 0 || 1);
      }
      this.link.checkQueue();
      this.lastInputTimestamp = packet.header.timestamp;
    }
    this.sentAny = true;
    this.counters.packetsOut += 1;
    this.counters.bytesOut += packet.payload.length + 12;
    this.sender.sendRtp(packet).catch(ignoreSendFailure);
  }

  /** The subscriber's connection is up and this stream is in its negotiated session. */
  activate(): void {
    if (this.active) return;
    this.active = true;
    if (this.track.kind === 'video') {
      this.needsKeyframe = true;
      this.askForKeyframe();
    }
  }

  restartFromKeyframe(): void {
    if (this.track.kind !== 'video' || !this.active) return;
    this.needsKeyframe = true;
    this.askForKeyframe();
  }

  private askForKeyframe(): void {
    this.keyframeAskedAt = Date.now();
    this.track.requestKeyframe();
  }

  /**
   * The subscriber reported `fractionLost` on this stream. What was already
   * missing on the publisher's uplink since the last report is not the
   * subscriber's link's fault: only the rest counts against it.
   */
  reportLoss(fractionLost: number): void {
    const now = this.track.receptionCounts();
    const expected = now.expected - this.lastReception.expected;
    const received = now.received - this.lastReception.received;
    this.lastReception = now;
    const upstream = expected > 0 ? Math.max(0, (expected - received) / expected) : 0;
    this.link.reportLoss(Math.max(0, fractionLost - upstream));
  }

  /** The loss this subscriber's downlink shows (smoothed, 0..1; the publisher's uplink's not counted). */
  get subscriberLoss(): number {
    return this.link.lossFraction;
  }

  /** The publisher's track ended: the subscriber's transport drops this forward. */
  sourceEnded(): void {
    this.onSourceEnded(this);
  }

  close(): void {
    this.active = false;
    this.track.removeForward(this);
    this.link.remove(this);
  }
}

/** A send to a subscriber whose connection just closed: nothing to do, the transport is going away. */
function ignoreSendFailure(): void {}
