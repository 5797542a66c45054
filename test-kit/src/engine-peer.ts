import type { MediaEngineName } from '@clinic-hub/protocol';
import { MediasoupNodePeer } from './mediasoup-node-peer.js';
import { NodePeer } from './node-peer.js';
import type { EncodedMedia } from './recording-media.js';

/**
 * A Node participant of either engine, for tests of what the product does
 * whichever engine forwards the media (admission, rooms, consent, recording,
 * the audio tap): `describe.each(MEDIA_TEST_ENGINES)` (media-node.ts) starts
 * a media-server on each engine, and the test joins with `joinPeer(engine…)`.
 * werift's peer answers the server's offers (node-peer.ts); mediasoup's makes
 * its transports, produces and consumes (mediasoup-node-peer.ts). Both count
 * what they receive by participant and kind (signal-peer.ts).
 */
export type TestPeer = NodePeer | MediasoupNodePeer;

export interface TestPeerOptions {
  /** Pre-encoded media to publish (mic and camera); none: the peer only receives. */
  media?: EncodedMedia | null;
  /** Drop this share of incoming SRTP packets (a poor downlink). */
  inboundLossPercent?: number;
  /** Ignore this many of the server's keyframe requests first, as if they were lost on the way. */
  ignoreKeyframeRequests?: number;
}

/** Joins a media-server running `engine`; resolves once joined (and, on mediasoup, publishing); throws with the error's `code` when refused. */
export function joinPeer(engine: MediaEngineName, mediaUrl: string, token: string, options: TestPeerOptions = {}): Promise<TestPeer> {
  return engine === 'mediasoup' ? MediasoupNodePeer.join(mediaUrl, token, options) : NodePeer.join(mediaUrl, token, options);
}

/** Opens a signalling socket to a media-server running `engine`, without joining. */
export function connectPeer(engine: MediaEngineName, mediaUrl: string): Promise<TestPeer> {
  return engine === 'mediasoup' ? MediasoupNodePeer.connect(mediaUrl) : NodePeer.connect(mediaUrl);
}

/**
 * For a test about one engine's own mechanism (werift's REMB or its
 * server-made offers; mediasoup's simulcast layers): on the other engine it
 * says why it does not run there and skips.
 */
export function onlyOnEngine(ctx: { skip: (note?: string) => void }, engine: MediaEngineName, wanted: MediaEngineName, reason: string): void {
  if (engine === wanted) return;
  console.warn(`not run on ${engine}: ${reason}`);
  ctx.skip(`${wanted} only: ${reason}`);
}
