/**
 * A load-generator process of `npm run bench:sfu`: lightweight publishers —
 * werift peers (media-server/test/support/node-peer.ts) that join over the
 * real signalling, send pre-encoded VP8 + Opus in real time and receive the
 * others' streams — driven by the benchmark over IPC.
 *
 * Parent → worker: { type: 'join', peers: [{ sub, room, token }] } (joined
 * one after another), { type: 'counts' }, { type: 'stop' }.
 * Worker → parent: { type: 'ready' }, { type: 'joined', results }, { type:
 * 'counts', streams }, { type: 'error', message }.
 */
import { readFileSync } from 'node:fs';
import { NodePeer } from '../../media-server/test/support/node-peer.js';
import { parseIvf, parseOggOpus, type EncodedMedia } from '../../media-server/test/support/recording-media.js';

export interface SfuPeerSpec {
  sub: string;
  room: string;
  token: string;
}

export interface SfuJoinResult {
  sub: string;
  room: string;
  /** When this publisher started joining (ms since the epoch). */
  startedAt: number;
  /** ms from opening the socket to `joined`. */
  joinedMs: number | null;
  error: string | null;
}

export interface SfuStreamCount {
  sub: string;
  room: string;
  from: string;
  kind: 'audio' | 'video';
  packets: number;
  /** When the first keyframe (video) or packet (audio) of this stream arrived (ms since the epoch). */
  firstAt: number | null;
}

export type ParentMessage = { type: 'join'; peers: SfuPeerSpec[] } | { type: 'counts' } | { type: 'stop' };
export type WorkerMessage =
  | { type: 'ready' }
  | { type: 'joined'; results: SfuJoinResult[] }
  | { type: 'counts'; streams: SfuStreamCount[]; answerErrors: string[] }
  | { type: 'error'; message: string };

const mediaUrl = process.env.SFU_MEDIA_URL!;
const media: EncodedMedia = (() => {
  const audio = parseOggOpus(readFileSync(process.env.SFU_AUDIO_FILE!));
  return { video: parseIvf(readFileSync(process.env.SFU_VIDEO_FILE!)), audio: audio.frames, audioChannels: audio.channels };
})();
const peers: { spec: SfuPeerSpec; peer: NodePeer }[] = [];

const send = (message: WorkerMessage) => process.send?.(message);

process.on('message', (message: ParentMessage) => {
  void handle(message).catch((error: unknown) => send({ type: 'error', message: error instanceof Error ? error.message : String(error) }));
});

async function handle(message: ParentMessage): Promise<void> {
  if (message.type === 'join') {
    const results: SfuJoinResult[] = [];
    for (const spec of message.peers) {
      const started = Date.now();
      try {
        const peer = await NodePeer.join(mediaUrl, spec.token, { media });
        peers.push({ spec, peer });
        results.push({ sub: spec.sub, room: spec.room, startedAt: started, joinedMs: Date.now() - started, error: null });
      } catch (error) {
        results.push({ sub: spec.sub, room: spec.room, startedAt: started, joinedMs: null, error: error instanceof Error ? error.message : String(error) });
      }
    }
    send({ type: 'joined', results });
  } else if (message.type === 'counts') {
    const streams: SfuStreamCount[] = [];
    const answerErrors: string[] = [];
    for (const { spec, peer } of peers) {
      answerErrors.push(...peer.answerErrors);
      for (const stream of peer.received.values()) {
        streams.push({
          sub: spec.sub,
          room: spec.room,
          from: stream.participant,
          kind: stream.kind,
          packets: stream.packets,
          firstAt: (stream.kind === 'video' ? stream.firstKeyframeMs : stream.firstPacketMs) === null ? null : peer.startedAt + (stream.kind === 'video' ? stream.firstKeyframeMs! : stream.firstPacketMs!),
        });
      }
    }
    send({ type: 'counts', streams, answerErrors });
  } else {
    await Promise.all(peers.map(({ peer }) => peer.leave().catch(() => undefined)));
    process.exit(0);
  }
}

send({ type: 'ready' });
