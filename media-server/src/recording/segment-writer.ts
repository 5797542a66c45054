import { rename, rm } from 'node:fs/promises';
import { Event, MediaStreamTrack, RTCRtpCodecParameters, Vp8RtpPayload } from 'werift';
import { DurationPosition, MediaRecorder, SegmentSizePosition, replaceSegmentSize, type WebmOutput } from 'werift/nonstandard';
import type { Logger } from 'pino';
import type { PublishedTrack, RtpPacketLike } from '../engine/engine-types.js';
import { SealedSegmentWriter, recoverSealedSegment, type RecordingFileIdentity, type RecordingKey } from '@clinic-hub/recordings';
import { WebmTimingScanner } from './webm-duration.js';

/** How long a segment with video waits for its first keyframe (to learn the picture size) before it opens anyway. */
const KEYFRAME_WAIT_MS = 3000;
/** Packets held while waiting for that keyframe: a few seconds of audio and video. */
const MAX_HELD_PACKETS = 4000;
const DEFAULT_SIZE = { width: 640, height: 360 };
/** How long closing waits for the writer's end (cues, final duration); without it the file is still whole, only without cues. */
const END_WAIT_MS = 5000;

export interface SegmentResult {
  /** RTP packets written into the segment; 0: the file holds no media and is thrown away. */
  packets: number;
  startedAt: number;
  stoppedAt: number;
}

/** Where a segment goes: its encrypted file, and what it is encrypted with and bound to. */
export interface SegmentTarget {
  /** The `.webm.enc` path (sealedPath). */
  path: string;
  key: RecordingKey;
  identity: RecordingFileIdentity;
}

/**
 * One WebM file (VP8 + Opus) of one participant's tracks, written by werift's
 * MediaRecorder from local tracks into which the published tracks' RTP is
 * copied. `disableNtp` and `disableLipSync` are what make werift write clean
 * WebM (DESIGN.md: its defaults lose audio and leave gaps). The file opens at
 * the first VP8 keyframe (asked for at once), so its header carries the real
 * picture size; audio that arrives meanwhile is held and written first.
 *
 * The recorder hands its output here (its `stream` option) and this class
 * encrypts it as it comes (SealedSegmentWriter): the WebM head is chunk 0,
 * rewritten once at the end with the Duration and Segment size; everything
 * else is sealed in chunks as they fill. No plaintext byte is ever written
 * to disk. Once the segment is closed nothing more is written.
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
  private file: Promise<SealedSegmentWriter> | null = null;
  /** The WebM head (EBML header, Info, Tracks): patched in memory, written sealed at the start and again at the end. */
  private head: Buffer | null = null;
  private readonly scanner = new WebmTimingScanner();
  private writes: Promise<void> = Promise.resolve();
  private written = 0;
  private writeError: Error | null = null;
  private accepting = true;
  private ended!: () => void;
  private readonly endReceived = new Promise<void>((resolve) => (this.ended = resolve));
  readonly startedAt = Date.now();

  constructor(
    readonly target: SegmentTarget,
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
    const output = new Event<[WebmOutput]>();
    output.subscribe((chunk) => this.onOutput(chunk));
    const recorder = new MediaRecorder({
      stream: output,
      numOfTracks: tracks.length,
      disableNtp: true,
      disableLipSync: true,
      ...(size ?? {}),
    });
    this.recorder = recorder;
    recorder.onError.subscribe((error) => this.logger.error({ err: error.message }, 'recording segment writer failed'));
    if (size === DEFAULT_SIZE) this.logger.warn({ waitedMs: KEYFRAME_WAIT_MS }, 'no keyframe yet: recording segment opened with the default picture size');
    // The recorder subscribes to its tracks only once the last is added: packets before that are held.
    this.opened = (async () => {
      for (const local of tracks) await recorder.addTrack(local);
      const held = this.held;
      this.held = [];
      for (const { local, packet } of held) local.writeRtp(packet);
      this.writing = true;
    })().catch((error: Error) => this.logger.error({ err: error.message }, 'recording segment could not open'));
  }

  /**
   * The recorder's output, encrypted in order. Its first piece is the head,
   * which opens the file; at its end the head gets the duration werift
   * computed, as werift's own file writer does (corrected at close).
   */
  private onOutput(chunk: WebmOutput): void {
    if (!this.accepting) return;
    if (chunk.saveToFile) {
      const bytes = Buffer.from(chunk.saveToFile);
      this.written += bytes.length;
      this.scanner.push(bytes);
      if (!this.file) {
        this.head = bytes;
        const { path, key, identity } = this.target;
        this.file = SealedSegmentWriter.create(path, key, identity, bytes);
        this.file.catch((error: Error) => (this.writeError ??= error));
        return;
      }
      const file = this.file;
      this.writes = this.writes
        .then(async () => (await file).append(bytes))
        .catch((error: Error) => {
          this.writeError ??= error;
        });
    } else if (chunk.eol && this.head) {
      patchHead(this.head, DurationPosition, chunk.eol.durationElement);
      this.ended();
    }
  }

  /** Closes the file: the recorder writes its cues and duration (waited for up to END_WAIT_MS), then nothing more is written. */
  async stop(): Promise<SegmentResult> {
    const stoppedAt = Date.now();
    if (!this.stopped) {
      this.stopped = true;
      for (const unsubscribe of this.unsubscribes) unsubscribe();
      if (this.openTimer) clearTimeout(this.openTimer);
      if (!this.recorder && this.packets > 0) this.open(DEFAULT_SIZE);
      await this.opened;
      if (this.recorder) {
        // werift's stop() also waits for an end event that only its own file writer sends: not awaited.
        this.recorder.stop().catch((error: Error) => this.logger.debug({ err: error.message }, 'recorder stop'));
        let timer: NodeJS.Timeout | undefined;
        const finished = await Promise.race([
          this.endReceived.then(() => true),
          new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), END_WAIT_MS))),
        ]);
        clearTimeout(timer);
        if (!finished) this.logger.warn({ waitedMs: END_WAIT_MS }, 'recording segment closed without its cues (the writer did not finish in time)');
      }
      this.accepting = false;
      await this.writes;
      const file = await this.file?.catch(() => null);
      if (file && this.head) {
        finishHead(this.head, this.written, this.scanner);
        await file.close(this.head).catch((error: Error) => (this.writeError ??= error));
      }
      for (const local of this.locals.values()) local.stop();
      if (this.writeError) {
        await file?.abandon();
        throw this.writeError;
      }
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

/** Writes `bytes` into the head at `position` when they fit there (werift's header patches are at fixed offsets in it). */
function patchHead(head: Buffer, position: number, bytes: Uint8Array): void {
  if (position + bytes.length <= head.length) head.set(bytes, position);
}

/** The head's last corrections: the Segment's size, and the Duration the blocks really span. */
function finishHead(head: Buffer, written: number, scanner: WebmTimingScanner): void {
  patchHead(head, SegmentSizePosition, replaceSegmentSize(written));
  scanner.correctDuration(head);
}

/**
 * A segment whose writer never closed (the node died): what its file holds
 * that authenticates — the head and every whole chunk after it, up to the
 * one being written — is sealed again into a complete file (a new salt, so a
 * new key), with the head's size and Duration corrected, and replaces it.
 * The plaintext is only ever in memory. Returns the WebM's block count (0:
 * no media; the caller deletes the file).
 */
export async function recoverSegment(target: SegmentTarget): Promise<{ blocks: number }> {
  const partial = `${target.path}.recovering`;
  await rm(partial, { force: true });
  const scanner = new WebmTimingScanner();
  let head: Buffer | null = null;
  let written = 0;
  let writer: SealedSegmentWriter | null = null;
  try {
    for await (const plain of recoverSealedSegment(target.path, target.key, target.identity)) {
      scanner.push(plain);
      written += plain.length;
      if (!writer) {
        head = Buffer.from(plain);
        writer = await SealedSegmentWriter.create(partial, target.key, target.identity, head);
      } else {
        await writer.append(plain);
      }
    }
    if (!writer || !head) throw new Error('nothing to recover');
    finishHead(head, written, scanner);
    await writer.close(head);
  } catch (error) {
    await writer?.abandon();
    await rm(partial, { force: true });
    throw error;
  }
  await rename(partial, target.path);
  return { blocks: scanner.timing().blocks };
}
