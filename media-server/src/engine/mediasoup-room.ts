import type { types as ms } from 'mediasoup';
import type { Logger } from 'pino';
import type { ClientMediaSignal, TransportOwner } from './engine-types.js';
import type { RtpTap } from './mediasoup-published-track.js';
import type { MediasoupTransport } from './mediasoup-transport.js';

/** What a room needs from the worker it lives on. */
export interface WorkerSlot {
  readonly index: number;
  readonly worker: ms.Worker;
  readonly webRtcServer: ms.WebRtcServer;
}

export interface RoomMediaSettings {
  /** The most a publisher may send in all (camera layers + screen + mic), bits per second. */
  maxIncomingBitrate: number;
  /** Where the subscriber's bandwidth estimate starts, bits per second. */
  initialOutgoingBitrate: number;
}

/**
 * One consultation's media on one worker: its router, the
 * ActiveSpeakerObserver over everyone's microphone, the DirectTransport
 * recording and the audio tap read RTP from, and the participants'
 * transports (which the room tells of a new speaker).
 */
export class MediasoupRoomMedia implements RtpTap {
  readonly transports = new Set<MediasoupTransport>();
  private direct: Promise<ms.DirectTransport> | null = null;
  private speaker: string | null = null;
  closed = false;

  private constructor(
    readonly key: string,
    readonly slot: WorkerSlot,
    readonly router: ms.Router,
    private readonly speakers: ms.ActiveSpeakerObserver,
    private readonly settings: RoomMediaSettings,
    private readonly logger: Logger,
  ) {
    speakers.on('dominantspeaker', ({ producer }) => {
      const participant = (producer.appData as { participant?: string }).participant ?? null;
      if (participant === this.speaker) return;
      this.speaker = participant;
      this.broadcast({ type: 'active-speaker', participant });
    });
  }

  static async create(key: string, slot: WorkerSlot, mediaCodecs: ms.RouterRtpCodecCapability[], settings: RoomMediaSettings, logger: Logger): Promise<MediasoupRoomMedia> {
    const router = await slot.worker.createRouter({ mediaCodecs });
    try {
      const speakers = await router.createActiveSpeakerObserver({ interval: 300 });
      return new MediasoupRoomMedia(key, slot, router, speakers, settings, logger);
    } catch (error) {
      router.close();
      throw error;
    }
  }

  get activeSpeaker(): string | null {
    return this.speaker;
  }

  rtpCapabilities(): ms.RtpCapabilities {
    return this.router.rtpCapabilities;
  }

  canConsume(producerId: string, rtpCapabilities: ms.RtpCapabilities): boolean {
    return this.router.canConsume({ producerId, rtpCapabilities });
  }

  async createWebRtcTransport(direction: 'send' | 'recv', owner: TransportOwner): Promise<ms.WebRtcTransport> {
    if (this.closed) throw new Error('the room has closed');
    const transport = await this.router.createWebRtcTransport({
      webRtcServer: this.slot.webRtcServer,
      enableUdp: true,
      enableTcp: true,
      preferUdp: true,
      initialAvailableOutgoingBitrate: this.settings.initialOutgoingBitrate,
      appData: { participant: owner.participantId, direction },
    });
    if (direction === 'send') await transport.setMaxIncomingBitrate(this.settings.maxIncomingBitrate).catch(() => undefined);
    return transport;
  }

  /** A microphone joins the active-speaker race. */
  observeSpeaker(producer: ms.Producer): void {
    this.speakers.addProducer({ producerId: producer.id }).catch((error: unknown) => {
      if (!producer.closed) this.logger.debug({ err: error, producer: producer.id }, 'microphone not observed for the active speaker');
    });
  }

  transport(): Promise<ms.DirectTransport> {
    this.direct ??= this.router.createDirectTransport();
    return this.direct;
  }

  transportClosed(transport: MediasoupTransport): void {
    this.transports.delete(transport);
  }

  broadcast(message: ClientMediaSignal): void {
    for (const transport of this.transports) transport.signal(message);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (!this.router.closed) this.router.close();
  }
}
