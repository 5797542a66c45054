import { RTCDtlsTransport, useNACK, useOPUS, usePLI, useREMB, useSdesMid, useVP8, type RTCCertificate, type RTCPeerConnectionConfig } from 'werift';
import type { MediaSource } from '@clinic-hub/protocol';
import type { Logger } from 'pino';
import type { EngineCounters, MediaEngine, ParticipantTransport, RoomMediaInfo, TransportOwner } from './engine-types.js';
import { WeriftTransport } from './werift-transport.js';

export interface WeriftEngineOptions {
  /** UDP ports for ICE; with max-bundle each participant uses one per host address. */
  udpPortRange: [number, number];
  /** Host addresses werift skips by default but should gather on (127.0.0.1 for a browser on this machine). */
  extraHostAddresses: string[];
  /** The public address behind NAT: every host candidate is also offered with it. */
  announcedIp: string | null;
  /** The most a publisher's camera and screen are asked to send (bits per second, by REMB; engine/video-bitrate.ts). */
  videoMaxBitrate: { camera: number; screen: number };
  logger: Logger;
}

/**
 * The SFU on werift (pure TypeScript WebRTC). Its settings differ from
 * werift's defaults where DESIGN.md's measurements say they must:
 * max-bundle (the default leaks a UDP socket per closed connection), no ICE
 * servers (the default is a public STUN server), no IPv6, a fixed UDP port
 * range, no transport-wide congestion control (Chrome's bandwidth estimate
 * collapses with werift's feedback; publishers get REMBs from us instead), and one DTLS certificate made at
 * start-up (everything runs on the main thread; making one per connection
 * would stall every call in progress).
 */
export class WeriftEngine implements MediaEngine {
  readonly name = 'werift' as const;
  private readonly transports = new Set<WeriftTransport>();
  private readonly totals: EngineCounters = {
    bytesIn: 0,
    bytesOut: 0,
    packetsIn: 0,
    packetsOut: 0,
    plisSent: 0,
    plisReceived: 0,
    rembsSent: 0,
    videoPacketsHeldBack: 0,
  };
  /**
   * Candidate gathering picks a free port by binding and releasing probe
   * sockets, then binds the real one: two gatherings at once can pick the same
   * port and the loser's socket errors with nobody listening. One at a time.
   */
  private gathering: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly options: WeriftEngineOptions,
    private readonly certificate: RTCCertificate,
  ) {}

  static async create(options: WeriftEngineOptions): Promise<WeriftEngine> {
    const certificate = await RTCDtlsTransport.SetupCertificate();
    return new WeriftEngine(options, certificate);
  }

  peerConfig(): RTCPeerConnectionConfig {
    return {
      codecs: {
        audio: [useOPUS({ parameters: 'minptime=10;useinbandfec=1' })],
        // goog-remb: Chrome takes the publisher's bitrate from our REMBs (engine/video-bitrate.ts).
        video: [useVP8({ rtcpFeedback: [useNACK(), usePLI(), useREMB()] })],
      },
      headerExtensions: { audio: [useSdesMid()], video: [useSdesMid()] },
      bundlePolicy: 'max-bundle',
      iceServers: [],
      iceUseIpv4: true,
      iceUseIpv6: false,
      icePortRange: this.options.udpPortRange,
      iceAdditionalHostAddresses: this.options.extraHostAddresses,
      certificates: [this.certificate],
    };
  }

  /** Runs `task` after every gathering started before it (see `gathering`). */
  serialiseGathering<T>(task: () => Promise<T>): Promise<T> {
    const run = this.gathering.then(task, task);
    this.gathering = run.catch(() => undefined);
    return run;
  }

  get announcedIp(): string | null {
    return this.options.announcedIp;
  }

  get logger(): Logger {
    return this.options.logger;
  }

  /** The most a published video track of this source is asked to send, in bits per second. */
  videoCeiling(source: MediaSource): number {
    return source === 'screen' ? this.options.videoMaxBitrate.screen : this.options.videoMaxBitrate.camera;
  }

  get counterSink(): EngineCounters {
    return this.totals;
  }

  openRoom(): Promise<RoomMediaInfo> {
    return Promise.resolve({ engine: 'werift' });
  }

  /** Each participant's peer connection closes with them: a room has nothing of its own. */
  closeRoom(): void {}

  /** werift runs in this process: a room's media cannot be lost without the process. */
  onRoomReset(): () => void {
    return () => undefined;
  }

  createTransport(owner: TransportOwner): ParticipantTransport {
    const transport = new WeriftTransport(this, owner);
    this.transports.add(transport);
    transport.onStateChange((state) => {
      if (state === 'closed') this.transports.delete(transport);
    });
    return transport;
  }

  forwardedStreams(): number {
    let count = 0;
    for (const transport of this.transports) count += transport.subscriptionCount;
    return count;
  }

  counters(): EngineCounters {
    return { ...this.totals };
  }

  /** Counted here, as packets pass: nothing to read. */
  refreshCounters(): Promise<void> {
    return Promise.resolve();
  }

  currentBitrate(): null {
    return null;
  }

  async close(): Promise<void> {
    await Promise.all([...this.transports].map((transport) => transport.close()));
  }
}
