import { randomBytes } from 'node:crypto';
import {
  MediaStreamTrack,
  RTCPeerConnection,
  RTCRtpCodecParameters,
  RtpHeader,
  RtpPacket,
  type RTCRtpReceiver,
} from 'werift';
import { Vp8Packetizer } from 'werift/nonstandard';
import type { ConsultRole, MediaEngineName, MediaSource } from '@clinic-hub/protocol';
import { MEDIA_TEST_ENGINES, roomToken, startTestMediaServer } from '@clinic-hub/test-kit/media-node';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { MediasoupNodePeer } from '@clinic-hub/test-kit/mediasoup-node-peer';
import type { EncodedFrame, EncodedMedia } from '@clinic-hub/test-kit/recording-media';
import type { PublishedTrack, RtpPacketLike } from '../../src/engine/engine-types.js';
import type { MediasoupPublishedTrack } from '../../src/engine/mediasoup-published-track.js';
import type { RunningMediaServer } from '../../src/media-server.js';

/**
 * Published tracks with real RTP for recording and audio-tap tests, from
 * either engine (`callSource`): on werift, a loopback pair of peer
 * connections (below); on mediasoup, a Node peer publishing into a real
 * mediasoup media-server, whose tracks (MediasoupPublishedTrack: RTP taken
 * out of the worker through a DirectTransport consumer) are what the
 * recorder and the tap are given — the product's own path.
 */
export interface CallSource {
  start(media: EncodedMedia, who: { clinic: string; roomId: string; participantId: string; part: ConsultRole }): Promise<LoopbackCall>;
  close(): Promise<void>;
}

export function callSource(engine: MediaEngineName): CallSource {
  return engine === 'werift' ? { start: startLoopbackCall, close: async () => undefined } : mediasoupCallSource();
}

/**
 * One mediasoup media-server (started at the first call) for all the calls
 * of a test file, on a Redis of its own: what it writes (the rooms' session
 * records) stays out of the Redis the test reads.
 */
function mediasoupCallSource(): CallSource {
  let redis: TestRedis | null = null;
  let server: Promise<RunningMediaServer> | null = null;
  const published = new Map<string, PublishedTrack>();
  const keyOf = (t: { clinic: string; roomId: string; participantId: string; source: string }) => `${t.clinic}/${t.roomId}/${t.participantId}/${t.source}`;
  const running = () =>
    (server ??= (async () => {
      redis = await startTestRedis();
      const started = await startTestMediaServer({ redisUrl: redis.url, nodeId: 'media-calls', env: MEDIA_TEST_ENGINES.find((e) => e.name === 'mediasoup')!.env });
      started.events.subscribe({ trackPublished: (track) => void published.set(keyOf(track), track) });
      return started;
    })());
  return {
    async start(media, who) {
      const { url } = await running();
      const peer = await MediasoupNodePeer.join(url, roomToken({ clinic: who.clinic, consult: who.roomId, sub: who.participantId, part: who.part }), { media });
      // Nothing is sent before play(), as with the loopback pair.
      peer.pauseMedia();
      const trackOf = async (source: MediaSource): Promise<TestPublishedTrack> => {
        const key = keyOf({ ...who, source });
        await peer.until(() => published.has(key), 10_000, `the ${source} published`);
        return published.get(key) as MediasoupPublishedTrack;
      };
      const tracks = { audio: await trackOf('mic'), video: media.video.length > 0 ? await trackOf('camera') : null };
      return {
        tracks,
        play: () => peer.resumeMedia(),
        pause: () => peer.pauseMedia(),
        pliCount: () => peer.keyframeRequests,
        async close() {
          tracks.audio.end();
          tracks.video?.end();
          await peer.leave();
        },
      };
    },
    async close() {
      await (await server)?.close();
      await redis?.cleanup();
    },
  };
}

/**
 * A publisher and a receiving peer connection, both werift, on loopback:
 * the publisher sends pre-encoded VP8 + Opus in real time; the receiving
 * side's tracks are wrapped as PublishedTrack, the way an SFU sees them. So
 * recording and audio-tap tests run real RTP through real peer connections
 * without depending on the SFU's own code.
 */

const VP8 = () =>
  new RTCRtpCodecParameters({
    mimeType: 'video/VP8',
    clockRate: 90_000,
    rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }],
  });
const OPUS = () => new RTCRtpCodecParameters({ mimeType: 'audio/opus', clockRate: 48_000, channels: 2 });

const peerConfig = () => ({
  codecs: { video: [VP8()], audio: [OPUS()] },
  // No transport-wide congestion control (DESIGN.md): no header extensions at all.
  headerExtensions: { video: [], audio: [] },
  bundlePolicy: 'max-bundle' as const,
  iceServers: [],
  iceUseIpv6: false,
  iceAdditionalHostAddresses: ['127.0.0.1'],
});

export interface LoopbackCall {
  /** The receiving side's tracks as PublishedTrack, once both have arrived. */
  tracks: { audio: TestPublishedTrack; video: TestPublishedTrack | null };
  /** Starts sending the encoded media in real time (from its beginning). */
  play(): void;
  /** Stops sending; the tracks stay open. */
  pause(): void;
  /** Picture-loss requests the publisher received. */
  pliCount(): number;
  /** Ends the tracks (their onEnded listeners run) and closes both connections. */
  close(): Promise<void>;
}

export interface TestPublishedTrack extends PublishedTrack {
  end(): void;
}

export async function startLoopbackCall(
  media: EncodedMedia,
  who: { clinic: string; roomId: string; participantId: string; part: ConsultRole },
): Promise<LoopbackCall> {
  const publisher = new RTCPeerConnection(peerConfig());
  const receiver = new RTCPeerConnection(peerConfig());

  const audioOut = new MediaStreamTrack({ kind: 'audio' });
  const videoOut = media.video.length > 0 ? new MediaStreamTrack({ kind: 'video' }) : null;
  publisher.addTransceiver(audioOut, { direction: 'sendonly' });
  const videoTransceiver = videoOut ? publisher.addTransceiver(videoOut, { direction: 'sendonly' }) : null;
  let plis = 0;
  videoTransceiver?.sender.onPictureLossIndication.subscribe(() => {
    plis++;
  });

  const arrived = new Map<string, { track: MediaStreamTrack; receiver: RTCRtpReceiver }>();
  const expected = videoOut ? 2 : 1;
  const allArrived = new Promise<void>((resolve) => {
    receiver.onTrack.subscribe((track) => {
      const transceiver = receiver.getTransceivers().find((t) => t.receiver.tracks.includes(track));
      if (!transceiver) return;
      arrived.set(track.kind, { track, receiver: transceiver.receiver });
      if (arrived.size === expected) resolve();
    });
  });

  await publisher.setLocalDescription(await publisher.createOffer());
  await gathered(publisher);
  await receiver.setRemoteDescription(publisher.localDescription!);
  await receiver.setLocalDescription(await receiver.createAnswer());
  await gathered(receiver);
  await publisher.setRemoteDescription(receiver.localDescription!);
  await connected(publisher);
  await connected(receiver);

  const sender = startSender(media, audioOut, videoOut);
  // The remote tracks appear with the first RTP packet of each.
  sender.play();
  await withTimeout(allArrived, 10_000, 'the receiving side to get both tracks');
  sender.pause();

  const wrap = (kind: 'audio' | 'video', source: MediaSource): TestPublishedTrack => {
    const { track, receiver: rtpReceiver } = arrived.get(kind)!;
    const codec = track.codec!;
    const rtpListeners = new Set<(packet: RtpPacketLike) => void>();
    const endListeners = new Set<() => void>();
    let ended = false;
    track.onReceiveRtp.subscribe((packet) => {
      for (const listener of rtpListeners) listener(packet);
    });
    return {
      id: `${who.participantId}:${source}`,
      clinic: who.clinic,
      roomId: who.roomId,
      participantId: who.participantId,
      part: who.part,
      kind,
      source,
      codec: { mimeType: codec.mimeType, clockRate: codec.clockRate, channels: codec.channels, payloadType: codec.payloadType },
      onRtp(listener) {
        rtpListeners.add(listener);
        return () => rtpListeners.delete(listener);
      },
      requestKeyframe() {
        if (track.ssrc !== undefined) void rtpReceiver.sendRtcpPLI(track.ssrc);
      },
      onEnded(listener) {
        endListeners.add(listener);
        return () => endListeners.delete(listener);
      },
      end() {
        if (ended) return;
        ended = true;
        rtpListeners.clear();
        for (const listener of endListeners) listener();
      },
    };
  };
  const tracks = { audio: wrap('audio', 'mic'), video: videoOut ? wrap('video', 'camera') : null };

  return {
    tracks,
    play: () => sender.play(),
    pause: () => sender.pause(),
    pliCount: () => plis,
    async close() {
      sender.pause();
      tracks.audio.end();
      tracks.video?.end();
      await Promise.all([publisher.close(), receiver.close()]);
    },
  };
}

/** Sends the frames on a wall-clock schedule, the way a browser's encoder would. */
function startSender(media: EncodedMedia, audioOut: MediaStreamTrack, videoOut: MediaStreamTrack | null) {
  const audioSsrc = randomBytes(4).readUInt32BE();
  const videoSsrc = randomBytes(4).readUInt32BE();
  const vp8 = new Vp8Packetizer({ ssrc: videoSsrc, payloadType: 96 });
  let audioSeq = randomBytes(2).readUInt16BE();
  const audioTs0 = randomBytes(4).readUInt32BE();
  const videoTs0 = randomBytes(4).readUInt32BE();
  let timer: NodeJS.Timeout | null = null;
  let audioIndex = 0;
  let videoIndex = 0;
  let startedAt = 0;
  let offsetMs = 0;
  const loopMs = Math.max(lastTime(media.audio), lastTime(media.video)) + 20;

  const sendAudio = (frame: EncodedFrame, mediaMs: number) => {
    const header = new RtpHeader({
      payloadType: 111,
      sequenceNumber: audioSeq,
      timestamp: (audioTs0 + Math.round(mediaMs * 48)) >>> 0,
      ssrc: audioSsrc,
      marker: false,
    });
    audioSeq = (audioSeq + 1) & 0xffff;
    audioOut.writeRtp(new RtpPacket(header, frame.data));
  };
  const sendVideo = (frame: EncodedFrame, mediaMs: number) => {
    for (const packet of vp8.packetize(frame.data, (videoTs0 + Math.round(mediaMs * 90)) >>> 0)) videoOut!.writeRtp(packet);
  };

  const tick = () => {
    // Media time counts playing time only: a pause is a gap in sending, not in the timestamps.
    const now = Date.now() - startedAt + offsetMs;
    while (audioIndex < Number.MAX_SAFE_INTEGER) {
      const frame = media.audio[audioIndex % media.audio.length]!;
      const at = Math.floor(audioIndex / media.audio.length) * loopMs + frame.timeMs;
      if (at > now) break;
      sendAudio(frame, at);
      audioIndex++;
    }
    while (videoOut && media.video.length > 0) {
      const frame = media.video[videoIndex % media.video.length]!;
      const at = Math.floor(videoIndex / media.video.length) * loopMs + frame.timeMs;
      if (at > now) break;
      sendVideo(frame, at);
      videoIndex++;
    }
  };

  return {
    play() {
      if (timer) return;
      startedAt = Date.now();
      timer = setInterval(tick, 5);
      tick();
    },
    pause() {
      if (!timer) return;
      clearInterval(timer);
      timer = null;
      offsetMs += Date.now() - startedAt;
    },
  };
}

const lastTime = (frames: EncodedFrame[]) => (frames.length === 0 ? 0 : frames[frames.length - 1]!.timeMs);

async function gathered(pc: RTCPeerConnection): Promise<void> {
  if (pc.iceGatheringState === 'complete') return;
  await withTimeout(
    new Promise<void>((resolve) => {
      pc.iceGatheringStateChange.subscribe((state) => {
        if (state === 'complete') resolve();
      });
    }),
    10_000,
    'ICE gathering',
  );
}

async function connected(pc: RTCPeerConnection): Promise<void> {
  if (pc.connectionState === 'connected') return;
  await withTimeout(
    new Promise<void>((resolve) => {
      pc.connectionStateChange.subscribe((state) => {
        if (state === 'connected') resolve();
      });
    }),
    10_000,
    'the peer connection to connect',
  );
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms))),
  ]);
}
