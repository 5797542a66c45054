import { Device, type types as msc } from 'mediasoup-client';
import type { ClientSignal, MediaSource, MediaTransportInfo, ServerSignal } from '@clinic-hub/protocol';

/**
 * The consultation's media on a mediasoup node (media-signal.ts): a send and
 * a receive transport made with mediasoup-client, the microphone, the camera
 * in three simulcast layers and a shared screen at full resolution, and a
 * consumer for every track of the others. When the network drops or changes
 * it restarts ICE on the same transports (the others see nothing); only when
 * the server no longer knows a transport does it give up (`onLost`: the
 * client then joins again). It outlives a dropped signalling socket: after
 * the client resumes its session, `resumed()` catches up on what the dead
 * socket missed.
 */

type Request = ClientSignal extends infer T ? (T extends unknown ? Omit<T, 'id'> : never) : never;

export interface LinkDeps {
  request(message: Request): Promise<unknown>;
  iceServers: RTCIceServer[];
  local: { mic: MediaStreamTrack | null; camera: MediaStreamTrack | null; screen: MediaStreamTrack | null };
  onTrack(participant: string, source: MediaSource, track: MediaStreamTrack): void;
  onTrackEnded(participant: string, source: MediaSource, track: MediaStreamTrack): void;
  /** The receive transport's connection came up (join → first frame is measured from it). */
  onConnected(): void;
  /** The transports cannot be recovered: join again. */
  onLost(reason: string): void;
}

/**
 * Camera layers, lowest first (media-server simulcast-layers.ts): a quarter,
 * half and full resolution. Chromium sends three layers only from 540 lines
 * up and two from 360 (its rule by resolution: it drops the top ones, so a
 * 640×480 camera given three sent 160 and 320 px wide, never its full
 * picture). A smaller camera gets fewer layers, the top one always at full
 * resolution.
 */
function cameraEncodings(track: MediaStreamTrack): RTCRtpEncodingParameters[] {
  const height = track.getSettings().height ?? 720;
  if (height >= 540) {
    return [
      { rid: 'r0', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
      { rid: 'r1', scaleResolutionDownBy: 2, maxBitrate: 450_000 },
      { rid: 'r2', scaleResolutionDownBy: 1, maxBitrate: 1_200_000 },
    ];
  }
  if (height >= 360) {
    return [
      { rid: 'r0', scaleResolutionDownBy: 2, maxBitrate: 250_000 },
      { rid: 'r1', scaleResolutionDownBy: 1, maxBitrate: 800_000 },
    ];
  }
  return [{ maxBitrate: 450_000 }];
}
const SCREEN_ENCODINGS: RTCRtpEncodingParameters[] = [{ maxBitrate: 2_500_000 }];
/** How long ICE may stay disconnected before we restart it ourselves (a brief loss often heals alone). */
const ICE_RESTART_AFTER_MS = 2000;

export class MediasoupLink {
  private device = new Device();
  private send: msc.Transport | null = null;
  private recv: msc.Transport | null = null;
  private readonly producers = new Map<MediaSource, msc.Producer>();
  private readonly consumers = new Map<string, { consumer: msc.Consumer; participant: string; source: MediaSource }>();
  /** Consumer id → the view last sent for it; participant/source → the view the page asked for (also for consumers still to come). */
  private readonly views = new Map<string, string>();
  private readonly wanted = new Map<string, { width: number; height: number }>();
  /** Consumers are set up one at a time, in the order the server sent them. */
  private queue: Promise<void> = Promise.resolve();
  private readonly restartTimers = new Map<msc.Transport, ReturnType<typeof setTimeout>>();
  private closed = false;
  /** ICE restarts done (a test hook reads it). */
  iceRestarts = 0;

  constructor(private readonly deps: LinkDeps) {}

  /** Loads the router's capabilities, makes both transports, produces what there is, asks for consumers. */
  async start(routerRtpCapabilities: Record<string, unknown>): Promise<void> {
    if (!this.device.loaded) await this.device.load({ routerRtpCapabilities: routerRtpCapabilities as unknown as msc.RtpCapabilities });
    this.send = await this.createTransport('send');
    this.recv = await this.createTransport('recv');
    for (const source of ['mic', 'camera', 'screen'] as const) {
      const track = this.deps.local[source];
      if (track) await this.produce(source, track);
    }
    await this.deps.request({ type: 'consume-ready', rtpCapabilities: this.device.rtpCapabilities as unknown as Record<string, unknown> });
  }

  private async createTransport(direction: 'send' | 'recv'): Promise<msc.Transport> {
    const info = (await this.deps.request({ type: 'transport-create', direction })) as MediaTransportInfo;
    const options = {
      id: info.id,
      iceParameters: info.iceParameters as unknown as msc.IceParameters,
      iceCandidates: info.iceCandidates as unknown as msc.IceCandidate[],
      dtlsParameters: info.dtlsParameters as unknown as msc.DtlsParameters,
      iceServers: this.deps.iceServers,
    };
    const transport = direction === 'send' ? this.device.createSendTransport(options) : this.device.createRecvTransport(options);
    transport.on('connect', ({ dtlsParameters }, callback, errback) => {
      this.deps.request({ type: 'transport-connect', transport: transport.id, dtlsParameters: dtlsParameters as unknown as Record<string, unknown> }).then(callback, (error: unknown) => errback(toError(error)));
    });
    if (direction === 'send') {
      transport.on('produce', ({ kind, rtpParameters, appData }, callback, errback) => {
        const source = (appData as { source: MediaSource }).source;
        this.deps
          .request({ type: 'produce', transport: transport.id, source, kind, rtpParameters: rtpParameters as unknown as Record<string, unknown> })
          .then((result) => callback({ id: (result as { producer: string }).producer }), (error: unknown) => errback(toError(error)));
      });
    }
    transport.on('connectionstatechange', (state) => this.connectionState(transport, state));
    return transport;
  }

  private connectionState(transport: msc.Transport, state: RTCPeerConnectionState): void {
    if (this.closed || transport.closed) return;
    if (state === 'connected') {
      clearTimeout(this.restartTimers.get(transport));
      this.restartTimers.delete(transport);
      if (transport === this.recv) this.deps.onConnected();
      return;
    }
    if (state === 'failed') {
      void this.restartIce(transport);
      return;
    }
    if (state === 'disconnected' && !this.restartTimers.has(transport)) {
      this.restartTimers.set(
        transport,
        setTimeout(() => {
          this.restartTimers.delete(transport);
          if (transport.connectionState !== 'connected') void this.restartIce(transport);
        }, ICE_RESTART_AFTER_MS),
      );
    }
  }

  /** New ICE credentials from the server, on the same transport: the room never sees us go. */
  async restartIce(transport?: msc.Transport): Promise<void> {
    const targets = transport ? [transport] : [this.send, this.recv].filter((t): t is msc.Transport => t !== null);
    for (const target of targets) {
      if (this.closed || target.closed) continue;
      try {
        const { iceParameters } = (await this.deps.request({ type: 'ice-restart', transport: target.id })) as { iceParameters: msc.IceParameters };
        await target.restartIce({ iceParameters });
        this.iceRestarts += 1;
      } catch (error) {
        const code = (error as { code?: string }).code;
        // The server no longer knows this transport: only a fresh join helps.
        if (code === 'MEDIA_TRANSPORT_NOT_FOUND' || code === 'MEDIA_NOT_JOINED') this.deps.onLost(`ICE restart refused (${code})`);
        // Otherwise (MEDIA_SIGNAL_DOWN: the socket is down for now) the next state change, or the resume, tries again.
      }
    }
  }

  private async produce(source: MediaSource, track: MediaStreamTrack): Promise<void> {
    const send = this.send;
    if (!send || this.closed) return;
    const producer = await send.produce({
      track,
      appData: { source },
      ...(source === 'camera' ? { encodings: cameraEncodings(track), codecOptions: { videoGoogleStartBitrate: 1000 } } : {}),
      ...(source === 'screen' ? { encodings: SCREEN_ENCODINGS } : {}),
      ...(source === 'mic' ? { codecOptions: { opusFec: true, opusDtx: true } } : {}),
      // The page stops screen tracks itself: a producer should not stop a track the page still shows.
      stopTracks: false,
    });
    this.producers.set(source, producer);
  }

  /** A new device or a shared screen: swapped on its producer in place, produced if new, closed when null. */
  async replaceTrack(source: MediaSource, track: MediaStreamTrack | null): Promise<void> {
    const producer = this.producers.get(source);
    if (producer && !producer.closed) {
      if (track) {
        await producer.replaceTrack({ track });
        return;
      }
      producer.close();
      this.producers.delete(source);
      await this.deps.request({ type: 'publish', source, on: false });
      return;
    }
    if (track) await this.produce(source, track);
  }

  /** A `consumer` from the server: receive it, hand its track to the page, then let the server send. */
  consumer(message: Extract<ServerSignal, { type: 'consumer' }>): void {
    this.queue = this.queue.then(async () => {
      const recv = this.recv;
      if (!recv || this.closed) return;
      // Sent again after a resume: one we have needs only its resume (which the dead socket may have lost).
      if (this.consumers.has(message.consumer)) {
        this.deps.request({ type: 'consumer-resume', consumer: message.consumer }).catch((error: unknown) => console.warn('consumer not resumed', error));
        return;
      }
      const consumer = await recv.consume({
        id: message.consumer,
        producerId: message.producer,
        kind: message.kind,
        rtpParameters: message.rtpParameters as unknown as msc.RtpParameters,
      });
      this.consumers.set(consumer.id, { consumer, participant: message.participant, source: message.source });
      this.deps.onTrack(message.participant, message.source, consumer.track);
      // Not awaited: the next consumer need not wait for this one's round trip.
      this.deps.request({ type: 'consumer-resume', consumer: consumer.id }).catch((error: unknown) => console.warn('consumer not resumed', error));
      const view = this.wanted.get(`${message.participant}/${message.source}`);
      if (view) this.setView(message.participant, message.source, view.width, view.height);
    }).catch((error: unknown) => console.warn('could not receive a track', error));
  }

  consumerClosed(id: string): void {
    const entry = this.consumers.get(id);
    if (!entry) return;
    this.consumers.delete(id);
    this.views.delete(id);
    entry.consumer.close();
    this.deps.onTrackEnded(entry.participant, entry.source, entry.consumer.track);
  }

  /** After a resume: drops the consumers whose participant or source is gone (their consumer-closed went to the dead socket). */
  keepOnly(keep: (participant: string, source: MediaSource) => boolean): void {
    for (const [id, entry] of this.consumers) if (!keep(entry.participant, entry.source)) this.consumerClosed(id);
  }

  /** The session resumed on a new socket: tile sizes sent again, ICE restarted on every transport not connected now. */
  resumed(): void {
    this.views.clear();
    for (const [key, view] of this.wanted) {
      const at = key.lastIndexOf('/');
      this.setView(key.slice(0, at), key.slice(at + 1) as MediaSource, view.width, view.height);
    }
    for (const transport of [this.send, this.recv]) {
      if (transport && !transport.closed && transport.connectionState !== 'connected') void this.restartIce(transport);
    }
  }

  /** How large a participant's camera or screen is shown: the server sends no larger simulcast layer than that. */
  setView(participant: string, source: MediaSource, width: number, height: number): void {
    this.wanted.set(`${participant}/${source}`, { width, height });
    for (const [id, entry] of this.consumers) {
      if (entry.participant !== participant || entry.source !== source || entry.consumer.kind !== 'video') continue;
      const view = `${Math.round(width)}x${Math.round(height)}`;
      if (this.views.get(id) === view) continue;
      this.views.set(id, view);
      this.deps.request({ type: 'consumer-view', consumer: id, width: Math.round(width), height: Math.round(height) }).catch(() => undefined);
    }
  }

  /** The receivers of everything consumed (framesDecoded for the test hook, quality). */
  receivers(): { participant: string; source: MediaSource; receiver: RTCRtpReceiver }[] {
    return [...this.consumers.values()].flatMap((entry) => (entry.consumer.rtpReceiver ? [{ participant: entry.participant, source: entry.source, receiver: entry.consumer.rtpReceiver }] : []));
  }

  async stats(): Promise<RTCStatsReport[]> {
    const reports: RTCStatsReport[] = [];
    for (const transport of [this.send, this.recv]) if (transport && !transport.closed) reports.push(await transport.getStats());
    return reports;
  }

  close(): void {
    this.closed = true;
    for (const timer of this.restartTimers.values()) clearTimeout(timer);
    this.restartTimers.clear();
    for (const { consumer, participant, source } of this.consumers.values()) {
      consumer.close();
      this.deps.onTrackEnded(participant, source, consumer.track);
    }
    this.consumers.clear();
    for (const producer of this.producers.values()) producer.close();
    this.producers.clear();
    this.send?.close();
    this.recv?.close();
    this.send = null;
    this.recv = null;
  }
}

function toError(error: unknown): Error {
  if (error instanceof Error) return error;
  const { code, message } = (error ?? {}) as { code?: string; message?: string };
  return Object.assign(new Error(message ?? String(code ?? error)), { code });
}
