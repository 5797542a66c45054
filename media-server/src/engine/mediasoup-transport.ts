import type { types as ms } from 'mediasoup';
import type { Logger } from 'pino';
import type { MediaSource, MediaTransportInfo } from '@clinic-hub/protocol';
import { SignalError } from '../signal/signal-error.js';
import type {
  ClientDrivenMedia,
  EngineCounters,
  ClientMediaRequest,
  ClientMediaSignal,
  ParticipantTransport,
  PublishedTrack,
  TransportOwner,
  TransportState,
} from './engine-types.js';
import { MediasoupPublishedTrack } from './mediasoup-published-track.js';
import type { MediasoupRoomMedia } from './mediasoup-room.js';
import { preferredSpatialLayer, tilePriority } from './simulcast-layers.js';

const SOURCE_KIND: Record<MediaSource, 'audio' | 'video'> = { mic: 'audio', camera: 'video', screen: 'video' };

interface Subscription {
  track: MediasoupPublishedTrack;
  consumer: ms.Consumer | null;
  /** A consume under way (consumers are made one at a time per track). */
  making: Promise<void> | null;
}

/**
 * One participant's media on mediasoup: a send and a receive WebRTC
 * transport on the room's router (both on its worker's WebRtcServer: one UDP
 * and one TCP port for everyone), the producers of their microphone, camera
 * (simulcast) and screen, and a consumer for each track of the others. The
 * client drives it (media-signal.ts); the room only says what to subscribe to.
 */
export class MediasoupTransport implements ParticipantTransport, ClientDrivenMedia {
  readonly offers = null;
  readonly client: ClientDrivenMedia = this;
  readonly published = new Map<MediaSource, MediasoupPublishedTrack>();
  private send: ms.WebRtcTransport | null = null;
  private recv: ms.WebRtcTransport | null = null;
  private rtpCapabilities: ms.RtpCapabilities | null = null;
  private readonly subscriptions = new Map<string, Subscription>();
  private readonly consumersById = new Map<string, Subscription>();
  private readonly trackListeners = new Set<(track: PublishedTrack) => void>();
  private readonly stateListeners = new Set<(state: TransportState) => void>();
  private readonly signalListeners = new Set<(message: ClientMediaSignal) => void>();
  private state: TransportState = 'new';
  private readonly logger: Logger;
  /** The room's media, once it is there (a join can come while the room's router is being made again). */
  private room: MediasoupRoomMedia | null = null;
  private readonly roomReady: Promise<MediasoupRoomMedia>;
  closed = false;

  constructor(
    readonly owner: TransportOwner,
    room: Promise<MediasoupRoomMedia>,
    logger: Logger,
    /** Where the last counts of objects about to close go (the engine keeps them). */
    private readonly finalCounts: (samples: Promise<CounterSample[]>) => void,
  ) {
    this.logger = logger.child({ participant: owner.participantId });
    this.roomReady = room.then((media) => {
      if (!this.closed && !this.room) this.attach(media);
      return this.room ?? media;
    });
    this.roomReady.catch((error: unknown) => this.logger.error({ err: error }, 'no room media for this participant'));
  }

  private attach(media: MediasoupRoomMedia): void {
    this.room = media;
    media.transports.add(this);
  }

  private async media(): Promise<MediasoupRoomMedia> {
    try {
      return this.room ?? (await this.roomReady);
    } catch {
      throw new SignalError('MEDIA_NODE_UNAVAILABLE', 'the room has no media worker now; join again in a moment');
    }
  }

  get subscriptionCount(): number {
    let count = 0;
    for (const subscription of this.subscriptions.values()) if (subscription.consumer && !subscription.consumer.paused) count += 1;
    return count;
  }

  // ---- what the client asks ----

  async handle(request: ClientMediaRequest): Promise<unknown> {
    if (this.closed) throw new SignalError('MEDIA_NOT_JOINED');
    await this.media();
    switch (request.type) {
      case 'transport-create':
        return this.createTransport(request.direction);
      case 'transport-connect': {
        const transport = this.transport(request.transport);
        await this.guard(() => transport.connect({ dtlsParameters: request.dtlsParameters as unknown as ms.DtlsParameters }));
        return undefined;
      }
      case 'ice-restart': {
        const transport = this.transport(request.transport);
        const iceParameters = await transport.restartIce();
        this.logger.info({ transport: transport.id }, 'ICE restarted');
        return { iceParameters };
      }
      case 'produce':
        return this.produce(request.transport, request.source, request.kind, request.rtpParameters as unknown as ms.RtpParameters);
      case 'consume-ready':
        if (!this.recv) throw new SignalError('MEDIA_TRANSPORT_NOT_FOUND', 'create the receive transport first');
        this.rtpCapabilities = request.rtpCapabilities as unknown as ms.RtpCapabilities;
        for (const subscription of this.subscriptions.values()) this.consume(subscription);
        return undefined;
      case 'consumer-resume': {
        const subscription = this.consumersById.get(request.consumer);
        if (!subscription?.consumer) throw new SignalError('MEDIA_TRANSPORT_NOT_FOUND', `consumer ${request.consumer}`);
        await subscription.consumer.resume();
        if (subscription.consumer.kind === 'video') await subscription.consumer.requestKeyFrame().catch(() => undefined);
        return undefined;
      }
      case 'consumer-view': {
        const subscription = this.consumersById.get(request.consumer);
        const consumer = subscription?.consumer;
        if (!consumer) throw new SignalError('MEDIA_TRANSPORT_NOT_FOUND', `consumer ${request.consumer}`);
        if (consumer.kind !== 'video' || consumer.type !== 'simulcast') return undefined;
        // The producer's encodings count the layers: a simulcast consumer has one encoding (scalabilityMode `L3T3`).
        const layers = subscription.track.producer.rtpParameters.encodings?.length ?? 1;
        await consumer.setPreferredLayers({ spatialLayer: preferredSpatialLayer(request.width, request.height, layers) });
        await consumer.setPriority(tilePriority(request.width, request.height));
        return undefined;
      }
    }
  }

  private async createTransport(direction: 'send' | 'recv'): Promise<MediaTransportInfo> {
    const existing = direction === 'send' ? this.send : this.recv;
    // A client that lost its transport's state (a reload of its own code) asks again: it gets a fresh one.
    if (existing && !existing.closed) {
      this.finalCounts(transportSample(existing));
      existing.close();
    }
    const room = await this.media();
    const transport = await this.guard(() => room.createWebRtcTransport(direction, this.owner));
    if (this.closed) {
      transport.close();
      throw new SignalError('MEDIA_NOT_JOINED');
    }
    if (direction === 'send') this.send = transport;
    else this.recv = transport;
    transport.on('dtlsstatechange', (dtlsState) => {
      if (dtlsState === 'connected') this.setState('connected');
      if (dtlsState === 'failed') this.setState('failed');
    });
    transport.on('icestatechange', (iceState) => {
      this.logger.debug({ transport: transport.id, direction, iceState }, 'ICE state');
      // ICE disconnected is not a leave: the client restarts ICE on the same transport.
      if (iceState === 'disconnected' && this.state === 'connected') this.setState('disconnected');
      if ((iceState === 'connected' || iceState === 'completed') && this.state === 'disconnected') this.setState('connected');
    });
    if (this.state === 'new') this.setState('connecting');
    return {
      id: transport.id,
      direction,
      iceParameters: transport.iceParameters as unknown as Record<string, unknown>,
      iceCandidates: transport.iceCandidates as unknown as Record<string, unknown>[],
      dtlsParameters: transport.dtlsParameters as unknown as Record<string, unknown>,
    };
  }

  private transport(id: string): ms.WebRtcTransport {
    if (this.send?.id === id && !this.send.closed) return this.send;
    if (this.recv?.id === id && !this.recv.closed) return this.recv;
    throw new SignalError('MEDIA_TRANSPORT_NOT_FOUND', `transport ${id}`);
  }

  private async produce(transportId: string, source: MediaSource, kind: 'audio' | 'video', rtpParameters: ms.RtpParameters): Promise<{ producer: string }> {
    const transport = this.transport(transportId);
    if (transport !== this.send) throw new SignalError('INVALID_PAYLOAD', 'produce on the send transport');
    if (SOURCE_KIND[source] !== kind) throw new SignalError('INVALID_PAYLOAD', `${source} is ${SOURCE_KIND[source]}, not ${kind}`);
    // Cameras send up to three simulcast layers; a shared screen one, at full resolution.
    if (source !== 'camera' && (rtpParameters.encodings?.length ?? 1) > 1) throw new SignalError('INVALID_PAYLOAD', `${source} is sent as one encoding`);
    if ((rtpParameters.encodings?.length ?? 1) > 3) throw new SignalError('INVALID_PAYLOAD', 'at most three simulcast layers');
    const producer = await this.guard(() => transport.produce({ kind, rtpParameters, appData: { participant: this.owner.participantId, source } }));
    if (this.closed) {
      producer.close();
      throw new SignalError('MEDIA_NOT_JOINED');
    }
    const replaced = this.published.get(source);
    if (replaced) {
      this.readBeforeClosing([replaced], [], false);
      replaced.producer.close();
    }
    this.endTrack(source);
    const room = await this.media();
    const track = new MediasoupPublishedTrack(producer, this.owner, source, room, this.logger);
    this.published.set(source, track);
    producer.on('transportclose', () => this.endTrack(source, track));
    if (source === 'mic') room.observeSpeaker(producer);
    this.logger.debug({ source, producer: producer.id, layers: rtpParameters.encodings?.length ?? 1 }, 'producing');
    for (const listener of this.trackListeners) listener(track);
    return { producer: producer.id };
  }

  stopSource(source: MediaSource): void {
    const track = this.published.get(source);
    if (!track) return;
    this.readBeforeClosing([track], [], false);
    track.producer.close();
    this.endTrack(source, track);
  }

  private endTrack(source: MediaSource, only?: MediasoupPublishedTrack): void {
    const track = this.published.get(source);
    if (!track || (only && track !== only)) return;
    this.published.delete(source);
    track.end();
  }

  // ---- what the room says ----

  subscribe(track: PublishedTrack): void {
    if (this.closed || !(track instanceof MediasoupPublishedTrack) || this.subscriptions.has(track.id)) return;
    const subscription: Subscription = { track, consumer: null, making: null };
    this.subscriptions.set(track.id, subscription);
    this.consume(subscription);
  }

  unsubscribe(trackId: string): void {
    const subscription = this.subscriptions.get(trackId);
    if (!subscription) return;
    this.subscriptions.delete(trackId);
    const consumer = subscription.consumer;
    if (consumer) {
      this.readBeforeClosing([], [consumer], false);
      this.consumersById.delete(consumer.id);
      consumer.close();
      this.signal({ type: 'consumer-closed', consumer: consumer.id });
    }
  }

  private consume(subscription: Subscription): void {
    const recv = this.recv;
    const capabilities = this.rtpCapabilities;
    if (!recv || recv.closed || !capabilities || subscription.consumer || subscription.making || subscription.track.ended) return;
    const { track } = subscription;
    if (!this.room?.canConsume(track.producer.id, capabilities)) {
      this.logger.warn({ track: track.id }, 'this client cannot receive that codec');
      return;
    }
    subscription.making = (async () => {
      try {
        const consumer = await recv.consume({ producerId: track.producer.id, rtpCapabilities: capabilities, paused: true, appData: { participant: track.participantId, source: track.source } });
        if (this.subscriptions.get(track.id) !== subscription || this.closed) {
          consumer.close();
          return;
        }
        subscription.consumer = consumer;
        this.consumersById.set(consumer.id, subscription);
        const gone = () => {
          if (subscription.consumer !== consumer) return;
          subscription.consumer = null;
          this.consumersById.delete(consumer.id);
          this.subscriptions.delete(track.id);
          this.signal({ type: 'consumer-closed', consumer: consumer.id });
        };
        consumer.on('producerclose', gone);
        consumer.on('transportclose', () => {
          subscription.consumer = null;
          this.consumersById.delete(consumer.id);
        });
        this.signalConsumer(subscription);
      } catch (error) {
        if (!this.closed && !track.ended) this.logger.warn({ err: error, track: track.id }, 'consumer not created');
      } finally {
        subscription.making = null;
      }
    })();
  }

  private signalConsumer({ track, consumer }: Subscription): void {
    if (!consumer) return;
    this.signal({
      type: 'consumer',
      consumer: consumer.id,
      producer: track.producer.id,
      participant: track.participantId,
      source: track.source,
      kind: consumer.kind,
      rtpParameters: consumer.rtpParameters as unknown as Record<string, unknown>,
    });
  }

  resync(): void {
    for (const subscription of this.subscriptions.values()) this.signalConsumer(subscription);
  }

  // ---- the room's media moved (worker died) ----

  /** The old worker's objects are gone: every track of ours ended, consumers too; the client makes its transports again. */
  reset(room: MediasoupRoomMedia): void {
    if (this.closed) return;
    this.room?.transportClosed(this);
    this.attach(room);
    for (const source of [...this.published.keys()]) this.endTrack(source);
    for (const subscription of this.subscriptions.values()) {
      if (subscription.consumer) this.consumersById.delete(subscription.consumer.id);
      subscription.consumer = null;
    }
    this.send = null;
    this.recv = null;
    this.rtpCapabilities = null;
    this.setState('connecting');
    this.signal({ type: 'media-reset', routerRtpCapabilities: room.rtpCapabilities() as unknown as Record<string, unknown> });
  }

  // ---- introspection (the debug endpoint, tests) ----

  async describe(): Promise<MediaTransportDebug> {
    const tuple = (transport: ms.WebRtcTransport | null) =>
      transport && !transport.closed && transport.iceSelectedTuple
        ? { protocol: transport.iceSelectedTuple.protocol, local: `${transport.iceSelectedTuple.localAddress ?? transport.iceSelectedTuple.localIp}:${transport.iceSelectedTuple.localPort}` }
        : null;
    return {
      participant: this.owner.participantId,
      state: this.state,
      send: this.send && !this.send.closed ? { id: this.send.id, iceState: this.send.iceState, dtlsState: this.send.dtlsState, selected: tuple(this.send) } : null,
      recv: this.recv && !this.recv.closed ? { id: this.recv.id, iceState: this.recv.iceState, dtlsState: this.recv.dtlsState, selected: tuple(this.recv) } : null,
      producers: [...this.published.values()].map((track) => ({ id: track.id, source: track.source, layers: track.producer.rtpParameters.encodings?.length ?? 1, score: track.producer.score })),
      consumers: [...this.subscriptions.values()]
        .filter((subscription) => subscription.consumer !== null)
        .map((subscription) => {
          const consumer = subscription.consumer!;
          return {
            id: consumer.id,
            participant: subscription.track.participantId,
            source: subscription.track.source,
            kind: consumer.kind,
            type: consumer.type,
            paused: consumer.paused,
            producerPaused: consumer.producerPaused,
            currentLayers: consumer.currentLayers ?? null,
            preferredLayers: consumer.preferredLayers ?? null,
            priority: consumer.priority,
          };
        }),
    };
  }

  /**
   * What this participant's media counted so far, by id (the engine's
   * counters add them up): bytes of each transport (and the worker's own
   * bitrates); packets received and keyframe requests (PLI, FIR) sent to the
   * publisher, per producer (all its simulcast layers); packets sent and
   * keyframe requests received from the subscriber, per consumer. Every
   * request is written to the worker before this returns, so objects closed
   * right after are still read (the worker answers in order).
   */
  counterSamples(): Promise<CounterSample[]> {
    const reads: Promise<CounterSample[]>[] = [];
    for (const transport of [this.send, this.recv]) if (transport && !transport.closed) reads.push(transportSample(transport));
    for (const { producer } of this.published.values()) if (!producer.closed) reads.push(producerSample(producer));
    for (const { consumer } of this.subscriptions.values()) if (consumer && !consumer.closed) reads.push(consumerSample(consumer));
    return Promise.all(reads).then((samples) => samples.flat());
  }

  /** This participant's consumers of `producers` (another participant's tracks about to close), stopped, then read (lastSample). */
  consumerSamplesOf(producers: Set<string>): Promise<CounterSample[]>[] {
    const reads: Promise<CounterSample[]>[] = [];
    for (const { track, consumer } of this.subscriptions.values()) if (consumer && !consumer.closed && producers.has(track.producer.id)) reads.push(lastSample(consumer));
    return reads;
  }

  /**
   * Counts are read when asked (a scrape), not on a timer: what is about to
   * close (this participant's transports, producers and consumers, and the
   * others' consumers of its producers) is read first, so that nothing it
   * counted since the last read is lost.
   */
  private readBeforeClosing(producers: MediasoupPublishedTrack[], ownConsumers: ms.Consumer[], everything: boolean): void {
    const reads: Promise<CounterSample[]>[] = [];
    if (everything) {
      for (const { consumer } of this.subscriptions.values()) if (consumer && !consumer.closed) stopSending(consumer);
      reads.push(this.counterSamples());
    } else {
      for (const { producer } of producers) if (!producer.closed) reads.push(producerSample(producer));
      for (const consumer of ownConsumers) if (!consumer.closed) reads.push(lastSample(consumer));
    }
    const ids = new Set(producers.map((track) => track.producer.id));
    if (ids.size > 0) for (const other of this.room?.transports ?? []) if (other !== this) reads.push(...other.consumerSamplesOf(ids));
    if (reads.length > 0) this.finalCounts(Promise.all(reads).then((samples) => samples.flat()));
  }

  // ---- plumbing ----

  onTrackPublished(listener: (track: PublishedTrack) => void): () => void {
    this.trackListeners.add(listener);
    return () => this.trackListeners.delete(listener);
  }

  onStateChange(listener: (state: TransportState) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  onSignal(listener: (message: ClientMediaSignal) => void): () => void {
    this.signalListeners.add(listener);
    return () => this.signalListeners.delete(listener);
  }

  signal(message: ClientMediaSignal): void {
    if (this.closed) return;
    for (const listener of this.signalListeners) listener(message);
  }

  private setState(state: TransportState): void {
    if (this.state === state || this.state === 'closed') return;
    this.state = state;
    for (const listener of [...this.stateListeners]) listener(state);
  }

  /** mediasoup refuses bad parameters by throwing (TypeError, UnsupportedError…): the client gets MEDIA_PARAMETERS_INVALID with its words. */
  private async guard<T>(task: () => Promise<T>): Promise<T> {
    try {
      return await task();
    } catch (error) {
      if (error instanceof SignalError) throw error;
      throw new SignalError('MEDIA_PARAMETERS_INVALID', error instanceof Error ? error.message.slice(0, 200) : undefined);
    }
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.readBeforeClosing([...this.published.values()], [], true);
    this.closed = true;
    for (const source of [...this.published.keys()]) {
      this.published.get(source)?.producer.close();
      this.endTrack(source);
    }
    this.send?.close();
    this.recv?.close();
    this.subscriptions.clear();
    this.consumersById.clear();
    this.setState('closed');
    this.room?.transportClosed(this);
    this.stateListeners.clear();
    this.signalListeners.clear();
    return Promise.resolve();
  }
}

export interface MediaTransportDebug {
  participant: string;
  state: TransportState;
  send: { id: string; iceState: string; dtlsState: string; selected: { protocol: string; local: string } | null } | null;
  recv: { id: string; iceState: string; dtlsState: string; selected: { protocol: string; local: string } | null } | null;
  producers: { id: string; source: MediaSource; layers: number; score: unknown }[];
  consumers: {
    id: string;
    participant: string;
    source: MediaSource;
    kind: string;
    type: string;
    paused: boolean;
    producerPaused: boolean;
    currentLayers: unknown;
    preferredLayers: unknown;
    priority: number;
  }[];
}

/** What one transport, producer or consumer counted, by its id. */
export interface CounterSample {
  id: string;
  counts: Partial<EngineCounters>;
  /** A transport's: the worker's own RTP bitrates (RTP over 2.5 s, retransmissions over 1 s), bits per second. */
  bitrate?: { in: number; out: number };
}

// Each of these writes its request to the worker when called (before its first await).

async function transportSample(transport: ms.WebRtcTransport): Promise<CounterSample[]> {
  try {
    return (await transport.getStats()).map((stats) => ({
      id: transport.id,
      counts: { bytesIn: stats.rtpBytesReceived + stats.rtxBytesReceived, bytesOut: stats.rtpBytesSent + stats.rtxBytesSent },
      bitrate: { in: stats.rtpRecvBitrate + stats.rtxRecvBitrate, out: stats.rtpSendBitrate + stats.rtxSendBitrate },
    }));
  } catch {
    return [];
  }
}

async function producerSample(producer: ms.Producer): Promise<CounterSample[]> {
  try {
    const counts = { packetsIn: 0, plisSent: 0 };
    for (const stream of await producer.getStats()) {
      counts.packetsIn += stream.packetCount;
      counts.plisSent += stream.pliCount + stream.firCount;
    }
    return [{ id: producer.id, counts }];
  } catch {
    return [];
  }
}

/**
 * A consumer about to close is paused first: the worker answers requests in
 * order but forwards packets between them, so a packet sent after the read
 * and before the close would reach the subscriber uncounted. Paused, it sends
 * nothing more, and the read is its last count. The requests are written
 * before this returns (mediasoup writes to its channel at once).
 */
function lastSample(consumer: ms.Consumer): Promise<CounterSample[]> {
  stopSending(consumer);
  return consumerSample(consumer);
}

function stopSending(consumer: ms.Consumer): void {
  consumer.pause().catch(() => undefined);
}

async function consumerSample(consumer: ms.Consumer): Promise<CounterSample[]> {
  try {
    // The consumer's own stream; its producer's comes along and is counted there.
    return (await consumer.getStats()).flatMap((stream) => (stream.type === 'outbound-rtp' ? [{ id: consumer.id, counts: { packetsOut: stream.packetCount, plisReceived: stream.pliCount + stream.firCount } }] : []));
  } catch {
    return [];
  }
}
