import { PublishedTrackBase } from './published-track-base.js';
import type { types as ms } from 'mediasoup';
import { RtpPacket } from 'werift';
import type { MediaSource } from '@clinic-hub/protocol';
import type { Logger } from 'pino';
import type { PublishedTrack, RtpPacketLike, TrackCodec, TransportOwner } from './engine-types.js';

/** Where a track's RTP is taken out of the worker for recording and the audio tap: the room's DirectTransport. */
export interface RtpTap {
  transport(): Promise<ms.DirectTransport>;
  rtpCapabilities(): ms.RtpCapabilities;
}

/**
 * A producer, as recording and the audio tap see it. Its RTP reaches Node
 * only while someone listens: the first `onRtp` makes one consumer on the
 * room's DirectTransport (the highest simulcast layer, as mediasoup's
 * SimulcastConsumer rewrites it into one continuous stream), the last
 * unsubscribe closes it.
 */
export class MediasoupPublishedTrack extends PublishedTrackBase implements PublishedTrack {
  readonly id: string;
  readonly kind: 'audio' | 'video';
  readonly codec: TrackCodec;
  private readonly rtpListeners = new Set<(packet: RtpPacketLike) => void>();
  private tapConsumer: Promise<ms.Consumer | null> | null = null;

  constructor(
    readonly producer: ms.Producer,
    owner: TransportOwner,
    source: MediaSource,
    private readonly tap: RtpTap,
    private readonly logger: Logger,
  ) {
    super(owner, source);
    this.id = producer.id;
    this.kind = producer.kind;
    this.codec = consumedCodec(producer, tap.rtpCapabilities());
  }

  onRtp(listener: (packet: RtpPacketLike) => void): () => void {
    if (this.ended) return () => undefined;
    this.rtpListeners.add(listener);
    this.tapConsumer ??= this.openTap();
    return () => {
      this.rtpListeners.delete(listener);
      if (this.rtpListeners.size === 0) this.closeTap();
    };
  }

  requestKeyframe(): void {
    if (this.kind !== 'video' || this.ended) return;
    void this.tapConsumer?.then((consumer) => consumer?.requestKeyFrame()).catch(() => undefined);
  }

  /** The producer closed (its participant left, stopped the source, or the worker died). */
  end(): void {
    if (!this.trackEnd.end()) return;
    this.closeTap();
    this.rtpListeners.clear();
    this.trackEnd.notify((error) => this.logger.error({ err: error, track: this.id }, 'an ended listener failed'));
  }

  private async openTap(): Promise<ms.Consumer | null> {
    try {
      const transport = await this.tap.transport();
      if (this.ended) return null;
      const consumer = await transport.consume({ producerId: this.producer.id, rtpCapabilities: this.tap.rtpCapabilities() });
      if (this.ended || this.rtpListeners.size === 0) {
        consumer.close();
        return null;
      }
      consumer.on('rtp', (buffer) => {
        let packet: RtpPacket;
        try {
          packet = RtpPacket.deSerialize(buffer);
        } catch {
          return;
        }
        for (const listener of this.rtpListeners) listener(packet);
      });
      if (this.kind === 'video') await consumer.requestKeyFrame().catch(() => undefined);
      return consumer;
    } catch (error) {
      if (!this.ended) this.logger.warn({ err: error, track: this.id }, 'could not take a track out of the worker (recording or audio tap gets nothing from it)');
      return null;
    }
  }

  private closeTap(): void {
    const tap = this.tapConsumer;
    this.tapConsumer = null;
    void tap?.then((consumer) => consumer?.close()).catch(() => undefined);
  }
}

/** The codec a consumer of this producer receives: the producer's, with the router's payload type (what the RTP carries). */
function consumedCodec(producer: ms.Producer, routerCapabilities: ms.RtpCapabilities): TrackCodec {
  const produced = producer.rtpParameters.codecs[0];
  if (!produced) throw new Error(`producer ${producer.id} has no codec`);
  const mimeType = produced.mimeType;
  const routerCodec = routerCapabilities.codecs?.find((codec) => codec.mimeType.toLowerCase() === mimeType.toLowerCase());
  return {
    mimeType,
    clockRate: produced.clockRate,
    ...(produced.channels === undefined ? {} : { channels: produced.channels }),
    payloadType: routerCodec?.preferredPayloadType ?? produced.payloadType,
  };
}
