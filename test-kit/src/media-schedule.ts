import { randomBytes } from 'node:crypto';
import { RtpHeader, RtpPacket } from 'werift';
import type { EncodedFrame } from './recording-media.js';

/** Opus's payload type in every Node peer's SDP (node-peer.ts, mediasoup-node-peer.ts). */
export const OPUS_PAYLOAD_TYPE = 111;

/** A video frame due now: which frame of the file (the same index in every simulcast layer) and its RTP timestamp. */
export interface DueVideoFrame {
  frame: number;
  timestamp: number;
}

/**
 * Pre-encoded media on a wall-clock schedule, as a browser's encoder sends
 * it, looping the file: each `due()` gives the audio frames whose time has
 * come, as Opus RTP packets (one SSRC, sequence numbers and timestamps
 * running on across loops), and the video frames whose time has come, as
 * frame indexes with their RTP timestamp (90 kHz) for the caller to
 * packetize, once or once per simulcast layer. `keyframeRequested()` makes
 * the next video frame the file's next keyframe, the way an encoder answers
 * a keyframe request (PLI). The Node peers of both engines send through it
 * (node-peer.ts, mediasoup-node-peer.ts).
 */
export class MediaSchedule {
  readonly audioSsrc = randomBytes(4).readUInt32BE();
  private audioSeq = randomBytes(2).readUInt16BE();
  private readonly audioTs0 = randomBytes(4).readUInt32BE();
  private readonly videoTs0 = randomBytes(4).readUInt32BE();
  private audioIndex = 0;
  private videoIndex = 0;
  private videoFrame = 0;
  private wantKeyframe = false;
  private startedAt = 0;
  private readonly loopMs: number;

  /** `video`: the frames' times and keyframe flags (for simulcast, any one layer: they share them). */
  constructor(
    private readonly audio: EncodedFrame[],
    private readonly video: EncodedFrame[],
  ) {
    const last = (frames: EncodedFrame[]) => (frames.length === 0 ? 0 : frames[frames.length - 1]!.timeMs);
    this.loopMs = Math.max(last(audio), last(video)) + 20;
  }

  private pausedAt: number | null = null;

  /** Time zero is now; after a pause, the media goes on from where it stopped (a pause is a gap in sending, not in the timestamps). */
  start(): void {
    if (this.pausedAt === null) this.startedAt = Date.now();
    else this.startedAt += Date.now() - this.pausedAt;
    this.pausedAt = null;
  }

  pause(): void {
    this.pausedAt ??= Date.now();
  }

  keyframeRequested(): void {
    this.wantKeyframe = true;
  }

  due(): { audio: RtpPacket[]; video: DueVideoFrame[] } {
    const now = Date.now() - this.startedAt;
    const { audio, video } = this;
    const audioOut: RtpPacket[] = [];
    for (;;) {
      const frame = audio[this.audioIndex % audio.length];
      if (!frame) break;
      const at = Math.floor(this.audioIndex / audio.length) * this.loopMs + frame.timeMs;
      if (at > now) break;
      const header = new RtpHeader({ payloadType: OPUS_PAYLOAD_TYPE, sequenceNumber: this.audioSeq, timestamp: (this.audioTs0 + Math.round(at * 48)) >>> 0, ssrc: this.audioSsrc, marker: false });
      this.audioSeq = (this.audioSeq + 1) & 0xffff;
      audioOut.push(new RtpPacket(header, frame.data));
      this.audioIndex += 1;
    }
    const videoOut: DueVideoFrame[] = [];
    for (;;) {
      const slot = video[this.videoIndex % video.length];
      if (!slot) break;
      const at = Math.floor(this.videoIndex / video.length) * this.loopMs + slot.timeMs;
      if (at > now) break;
      if (this.wantKeyframe) {
        // The file's next keyframe stands in for the one an encoder would make now.
        let k = this.videoFrame;
        while (!video[k % video.length]!.keyframe) k += 1;
        this.videoFrame = k;
        this.wantKeyframe = false;
      }
      videoOut.push({ frame: this.videoFrame % video.length, timestamp: (this.videoTs0 + Math.round(at * 90)) >>> 0 });
      this.videoIndex += 1;
      this.videoFrame += 1;
    }
    return { audio: audioOut, video: videoOut };
  }
}
