/**
 * A load-generator process of `npm run bench:sfu`: lightweight publishers
 * that join over the real signalling, send pre-encoded VP8 + Opus in real
 * time and receive the others' streams, driven by the benchmark over IPC.
 * On a werift node (`SFU_ENGINE=werift`) they are werift peers answering the
 * server's offers (media-server/test/support/node-peer.ts); on a mediasoup
 * node they speak its client-driven signalling and send their camera as
 * three simulcast layers (test-kit/src/mediasoup-node-peer.ts).
 *
 * Parent → worker: { type: 'join', peers: [{ sub, room, token }] } (joined
 * one after another), { type: 'counts' }, { type: 'stop' }.
 * Worker → parent: { type: 'ready' }, { type: 'joined', results }, { type:
 * 'counts', streams }, { type: 'error', message }.
 */
import { readFileSync } from 'node:fs';
import { NodePeer } from '@clinic-hub/test-kit/node-peer';
import { parseIvf, parseOggOpus, type EncodedMedia } from '@clinic-hub/test-kit/recording-media';
import { MediasoupNodePeer, type SimulcastMedia } from '@clinic-hub/test-kit/mediasoup-node-peer';

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
  /** Packets lost on the way to this subscriber (gaps in sequence numbers). */
  lost: number;
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
const engine = process.env.SFU_ENGINE === 'mediasoup' ? 'mediasoup' : 'werift';
const audio = parseOggOpus(readFileSync(process.env.SFU_AUDIO_FILE!));
/** werift: one camera stream; mediasoup: its simulcast layers, lowest first (SFU_VIDEO_FILE is a comma-separated list). */
const videoFiles = process.env.SFU_VIDEO_FILE!.split(',');
const media: EncodedMedia = { video: parseIvf(readFileSync(videoFiles[videoFiles.length - 1]!)), audio: audio.frames, audioChannels: audio.channels };
const simulcast: SimulcastMedia = { layers: videoFiles.map((file) => parseIvf(readFileSync(file))), audio: audio.frames };
const peers: { spec: SfuPeerSpec; peer: NodePeer | MediasoupNodePeer }[] = [];

/** What a peer counted of one stream it received; `firstAt` as ms since the epoch. */
function streamCount(spec: SfuPeerSpec, stream: { participant: string; kind: 'audio' | 'video'; packets: number; lost: number }, firstAt: number | null): SfuStreamCount {
  return { sub: spec.sub, room: spec.room, from: stream.participant, kind: stream.kind, packets: stream.packets, lost: stream.lost, firstAt };
}

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
        const peer = engine === 'mediasoup' ? await MediasoupNodePeer.join(mediaUrl, spec.token, { media: simulcast }) : await NodePeer.join(mediaUrl, spec.token, { media });
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
      answerErrors.push(...(peer instanceof MediasoupNodePeer ? peer.errors : peer.answerErrors));
      for (const stream of peer.received.values()) {
        const firstMs = stream.kind === 'video' ? stream.firstKeyframeMs : stream.firstPacketMs;
        streams.push(streamCount(spec, stream, firstMs === null ? null : peer.startedAt + firstMs));
      }
    }
    send({ type: 'counts', streams, answerErrors });
  } else {
    await Promise.all(peers.map(({ peer }) => peer.leave().catch(() => undefined)));
    process.exit(0);
  }
}

send({ type: 'ready' });
