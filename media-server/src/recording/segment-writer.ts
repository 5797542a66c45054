import { MediaStreamTrack, RTCRtpCodecParameters, Vp8RtpPayload } from 'werift';
import { MediaRecorder } from 'werift/nonstandard';
import type { Logger } from 'pino';
import type { PublishedTrack, RtpPacketLike } from '../engine/engine-types.js';

/** How long a segment with video waits for its first keyframe (to learn the picture size) before it opens anyway. */
const KEYFRAME_WAIT_MS = 3000;
/** Packets held while waiting for that keyframe: a few seconds of audio and video. */
const MAX_HELD_PACKETS = 4000;
const DEFAULT_SIZE = { width: 640, height: 360 };

export interface SegmentResult {
  /** RTP packets written into the segment; 0: the file holds no media and is thrown away. */
  packets: number;
  startedAt: number;
  stoppedAt: number;
}

/**
 * One WebM file (VP8 + Opus) of one participant's tracks, written by werift's
 * MediaRecorder from local tracks into which the published tracks' RTP is
 * copied. `disableNtp` and `disableLipSync` are what make werift write clean
 * WebM (DESIGN.md: its defaults lose audio and leave gaps). The file opens at
 * the first VP8 keyframe (asked for at once), so its header carries the real
 * picture size; audio that arrives meanwhile is held and written first.
 */
export class SegmentWriter {
  private recorder: MediaRecorder | null = null;
  /** Set once the recorder listens to its tracks: packets before that are held, not lost. */
  private opened: Promise<void> | null = null;
  private writing = false;
  private readonly locals = new Map<PublishedTrack, MediaStreamTrack>();
  private readonly firstTimestamps = new Map<PublishedTrack, number>();
  private readonly unsubscribes: (() => void)[] = [];
  private held: { local: MediaStreamTrack; packet: Buffer }[] = [];
  private openTimer: NodeJS.Timeout | null = null;
  private packets = 0;
  private stopped = false;
  readonly startedAt = Date.now();

  constructor(
    readonly path: string,
    readonly tracks: readonly PublishedTrack[],
    private readonly logger: Logger,
  ) {
    for (const track of tracks) {
      const codec = new RTCRtpCodecParameters({
        mimeType: track.codec.mimeType,
        clockRate: track.codec.clockRate,
        payloadType: track.codec.payloadType,
        ...(track.codec.channels === undefined ? {} : { channels: track.codec.channels }),
      });
      this.locals.set(track, new MediaStreamTrack({ kind: track.kind, codec }));
    }
    const hasVideo = tracks.some((t) => t.kind === 'video');
    for (const track of tracks) {
      const local = this.locals.get(track)!;
      this.unsubscribes.push(track.onRtp((packet) => this.onPacket(track, local, packet)));
    }
    if (hasVideo) {
      for (const track of tracks) if (track.kind === 'video') track.requestKeyframe();
      this.openTimer = setTimeout(() => this.open(DEFAULT_SIZE), KEYFRAME_WAIT_MS);
    } else {
      this.open(null);
    }
  }

  private onPacket(track: PublishedTrack, local: MediaStreamTrack, packet: RtpPacketLike): void {
    // Padding-only packets (bandwidth probes) carry no media.
    if (this.stopped || packet.payload.length === 0) return;
    this.packets++;
    if (!this.recorder && track.kind === 'video') {
      const size = vp8KeyframeSize(packet.payload);
      if (size) this.open(size);
    }
    const bytes = this.onWholeMilliseconds(track, packet.serialize());
    if (this.writing) {
      local.writeRtp(bytes);
      return;
    }
    this.held.push({ local, packet: bytes });
    if (this.held.length > MAX_HELD_PACKETS) this.held.shift();
  }

  /**
   * werift's recorder turns each RTP timestamp step into whole milliseconds,
   * truncating (a 30 fps frame step of 33.3 ms counts as 33), so video would
   * drift 1 % behind audio — seconds over a long segment. Rounding each
   * timestamp (relative to the track's first) to a whole millisecond keeps
   * every step whole and the error from adding up.
   */
  private onWholeMilliseconds(track: PublishedTrack, bytes: Buffer): Buffer {
    const ticksPerMs = track.codec.clockRate / 1000;
    if (!Number.isInteger(ticksPerMs) || ticksPerMs <= 1 || bytes.length < 12) return bytes;
    const timestamp = bytes.readUInt32BE(4);
    const first = this.firstTimestamps.get(track);
    if (first === undefined) {
      this.firstTimestamps.set(track, timestamp);
      return bytes;
    }
    // Signed 32-bit difference: wrap-around and slightly reordered packets both come out right.
    const relative = (timestamp - first) | 0;
    // A copy: the engine may hand the same bytes to subscribers.
    const out = Buffer.from(bytes);
    out.writeUInt32BE((first + Math.round(relative / ticksPerMs) * ticksPerMs) >>> 0, 4);
    return out;
  }

  private open(size: { width: number; height: number } | null): void {
    if (this.recorder) return;
    if (this.openTimer) clearTimeout(this.openTimer);
    this.openTimer = null;
    const tracks = [...this.locals.values()];
    const recorder = new MediaRecorder({
      path: this.path,
      numOfTracks: tracks.length,
      disableNtp: true,
      disableLipSync: true,
      ...(size ?? {}),
    });
    this.recorder = recorder;
    recorder.onError.subscribe((error) => this.logger.error({ err: error.message }, 'recording segment writer failed'));
    if (size === DEFAULT_SIZE) this.logger.warn({ waitedMs: KEYFRAME_WAIT_MS }, 'no keyframe yet: recording segment opened with the default picture size');
    // The recorder subscribes to its tracks only once the last is added and its file is ready.
    this.opened = (async () => {
      for (const local of tracks) await recorder.addTrack(local);
      const held = this.held;
      this.held = [];
      for (const { local, packet } of held) local.writeRtp(packet);
      this.writing = true;
    })().catch((error: Error) => this.logger.error({ err: error.message }, 'recording segment could not open'));
  }

  /** Closes the file (werift writes its duration and cues). */
  async stop(): Promise<SegmentResult> {
    const stoppedAt = Date.now();
    if (!this.stopped) {
      this.stopped = true;
      for (const unsubscribe of this.unsubscribes) unsubscribe();
      if (this.openTimer) clearTimeout(this.openTimer);
      if (!this.recorder && this.packets > 0) this.open(DEFAULT_SIZE);
      await this.opened;
      if (this.recorder) await this.recorder.stop();
      for (const local of this.locals.values()) local.stop();
    }
    return { packets: this.packets, startedAt: this.startedAt, stoppedAt };
  }
}

/** The picture size from the first packet of a VP8 keyframe (RFC 6386 §9.1), or null for any other packet. */
export function vp8KeyframeSize(payload: Buffer): { width: number; height: number } | null {
  if (payload.length < 4) return null;
  let descriptor: Vp8RtpPayload;
  try {
    descriptor = Vp8RtpPayload.deSerialize(payload);
  } catch {
    return null;
  }
  if (!descriptor.payloadHeaderExist || !descriptor.isKeyframe) return null;
  const frame = descriptor.payload;
  if (frame.length < 10 || frame[3] !== 0x9d || frame[4] !== 0x01 || frame[5] !== 0x2a) return null;
  const width = frame.readUInt16LE(6) & 0x3fff;
  const height = frame.readUInt16LE(8) & 0x3fff;
  return width > 0 && height > 0 ? { width, height } : null;
}
