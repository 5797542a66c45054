/**
 * A participant of a mediasoup media-server without a browser (`npm run
 * bench:sfu`; node-peer.ts is werift's): it speaks the media-server's mediasoup signalling (what the
 * consultation page does with mediasoup-client: transport-create,
 * transport-connect, produce, consume-ready, consumer, consumer-resume;
 * protocol/src/media-signal.ts) with two werift peer connections standing in
 * for mediasoup-client's send and receive transports, the SDP made here from
 * mediasoup's parameters as mediasoup-client makes it.
 *
 * It publishes pre-encoded media in real time: Opus, and its camera as
 * simulcast — one VP8 stream per layer (low to high) on its own SSRC, the
 * layers' frames sent together with the same timestamp, as a browser's
 * encoder sends them, with a sender report per SSRC each second (mediasoup
 * needs them to switch layers). A keyframe request makes every layer jump to
 * the file's next keyframe. It receives every consumer the server gives it
 * and counts packets, losses (gaps in sequence numbers) and the first
 * keyframe.
 *
 * Unlike Chromium it offers no transport-wide congestion control feedback,
 * so the server's bandwidth estimation stays out and every consumer gets the
 * top layer: the SFU's forwarding, not its estimator, is what is measured.
 */
import { randomBytes } from 'node:crypto';
import {
  MediaStreamTrack,
  RTCPeerConnection,
  RtcpSenderInfo,
  RtcpSrPacket,
  RtpHeader,
  Vp8Packetizer,
  useNACK,
  useOPUS,
  usePLI,
  useVP8,
  type RTCDtlsTransport,
  type RTCRtpTransceiver,
} from 'werift';
import WebSocket from 'ws';
import type { ServerSignal } from '@clinic-hub/protocol';
import { releaseStoppedSender } from '@clinic-hub/media-server/engine/werift-workarounds';
import { MediaSchedule, OPUS_PAYLOAD_TYPE } from './media-schedule.js';
import type { EncodedFrame, EncodedMedia } from './recording-media.js';
import { SignalPeer } from './signal-peer.js';

export interface SimulcastMedia {
  /** The camera's layers, lowest first, each with the same frames at the same times (keyframes included). */
  layers: EncodedFrame[][];
  audio: EncodedFrame[];
}

interface Consumer {
  type: 'consumer';
  consumer: string;
  producer: string;
  participant: string;
  source: string;
  kind: 'audio' | 'video';
  rtpParameters: Record<string, unknown>;
}
interface MediaTransportInfo {
  id: string;
  iceParameters: Record<string, unknown>;
  iceCandidates: Record<string, unknown>[];
  dtlsParameters: Record<string, unknown>;
}
type ClientMessage = { type: string } & Record<string, unknown>;
/**
 * An m-section of the receive transport: its consumer's while open; closed
 * when that consumer closed (free for the next of its kind); the first one
 * only ever made inactive.
 */
interface RecvSection {
  mid: string;
  consumer: Consumer;
  state: 'open' | 'inactive' | 'closed';
}
interface IceCandidate {
  foundation: string;
  priority: number;
  address?: string;
  ip?: string;
  protocol: string;
  port: number;
  type: string;
}
interface DtlsParameters {
  fingerprints: { algorithm: string; value: string }[];
}

const OPUS_PT = OPUS_PAYLOAD_TYPE;

/** One camera stream is a single layer; no video: audio only. */
function simulcastOf(media: EncodedMedia | SimulcastMedia | null): SimulcastMedia | null {
  if (!media) return null;
  if ('layers' in media) return media;
  return { layers: media.video.length > 0 ? [media.video] : [], audio: media.audio };
}
const VP8_PT = 96;

/** An m-section of a remote description made from mediasoup's transport parameters. */
function mediaSection(options: {
  kind: 'audio' | 'video';
  mid: string;
  direction: 'sendonly' | 'recvonly' | 'inactive';
  setup: 'actpass' | 'passive';
  transport: MediaTransportInfo;
  payloadType: number;
  ssrc?: { ssrc: number; cname: string; stream: string };
}): string[] {
  const ice = options.transport.iceParameters as { usernameFragment: string; password: string };
  const fingerprint = (options.transport.dtlsParameters as unknown as DtlsParameters).fingerprints.find((f) => f.algorithm === 'sha-256')!;
  const pt = options.payloadType;
  const lines = [
    `m=${options.kind} 7 UDP/TLS/RTP/SAVPF ${pt}`,
    'c=IN IP4 127.0.0.1',
    `a=mid:${options.mid}`,
    `a=${options.direction}`,
    `a=ice-ufrag:${ice.usernameFragment}`,
    `a=ice-pwd:${ice.password}`,
    `a=fingerprint:sha-256 ${fingerprint.value}`,
    `a=setup:${options.setup}`,
    'a=rtcp-mux',
    'a=rtcp-rsize',
    // werift speaks ICE over UDP only; the TCP candidates are for browsers whose UDP is blocked.
    ...(options.transport.iceCandidates as unknown as IceCandidate[])
      .filter((c) => c.protocol === 'udp')
      .map((c) => `a=candidate:${c.foundation} 1 udp ${c.priority} ${c.address ?? c.ip} ${c.port} typ ${c.type}`),
    'a=end-of-candidates',
  ];
  if (options.kind === 'audio') lines.push(`a=rtpmap:${pt} opus/48000/2`, `a=fmtp:${pt} minptime=10;useinbandfec=1`);
  else lines.push(`a=rtpmap:${pt} VP8/90000`, `a=rtcp-fb:${pt} nack`, `a=rtcp-fb:${pt} nack pli`);
  if (options.ssrc) lines.push(`a=ssrc:${options.ssrc.ssrc} cname:${options.ssrc.cname}`, `a=msid:${options.ssrc.stream} ${options.ssrc.stream}-${options.mid}`);
  return lines;
}

/**
 * A closed m-section, as mediasoup-client's RemoteSdp closes one (port 0,
 * inactive, no transport or codec lines, out of the BUNDLE group): the answer
 * stops its transceiver, and the next consumer of its kind takes its place.
 */
function closedMediaSection(kind: 'audio' | 'video', mid: string, payloadType: number): string[] {
  return [`m=${kind} 0 UDP/TLS/RTP/SAVPF ${payloadType}`, 'c=IN IP4 127.0.0.1', `a=mid:${mid}`, 'a=inactive'];
}

function sessionDescription(mids: string[], sections: string[][], version = 1): string {
  return [
    'v=0',
    `o=- ${Date.now()} ${version} IN IP4 127.0.0.1`,
    's=-',
    't=0 0',
    'a=ice-lite',
    `a=group:BUNDLE ${mids.join(' ')}`,
    'a=msid-semantic: WMS *',
    ...sections.flat(),
    '',
  ].join('\r\n');
}

function localFingerprint(sdp: string): string {
  const match = /a=fingerprint:sha-256 (\S+)/.exec(sdp);
  if (!match) throw new Error('werift offered no sha-256 fingerprint');
  return match[1]!;
}

const newPeerConnection = (inboundLossPercent?: number) =>
  new RTCPeerConnection({
    // werift drops a packet when `value / 100 < Math.random()`: a value of 60 drops 40% (werift's own quirk, inverted here).
    ...(inboundLossPercent ? { debug: { inboundPacketLoss: 100 - inboundLossPercent } } : {}),
    codecs: { audio: [useOPUS({ payloadType: OPUS_PT, parameters: 'minptime=10;useinbandfec=1' })], video: [useVP8({ payloadType: VP8_PT, rtcpFeedback: [useNACK(), usePLI()] })] },
    bundlePolicy: 'max-bundle',
    iceServers: [],
    iceUseIpv6: false,
    iceAdditionalHostAddresses: ['127.0.0.1'],
  });

export interface MediasoupPeerOptions {
  /** What to publish: one camera stream (EncodedMedia) or its simulcast layers; none: the peer only receives. */
  media?: EncodedMedia | SimulcastMedia | null;
  /** Drop this share of incoming SRTP packets (a poor downlink). */
  inboundLossPercent?: number;
  /** Ignore this many of the server's keyframe requests first, as if they were lost on the way. */
  ignoreKeyframeRequests?: number;
}

export class MediasoupNodePeer extends SignalPeer {
  /** What went wrong setting up a consumer (a test fails on them; the benchmark reports them). */
  readonly errors: string[] = [];
  private sendPc: RTCPeerConnection | null = null;
  private recvPc: RTCPeerConnection | null = null;
  private recvTransport: MediaTransportInfo | null = null;
  private recvConnected = false;
  /** The receive transport's remote offer, m-section by m-section (see `consume`). */
  private readonly recvSections: RecvSection[] = [];
  private recvOfferVersion = 0;
  private recvQueue: Promise<void> = Promise.resolve();
  private publisher: SimulcastPublisher | null = null;
  private readonly cname = randomBytes(8).toString('hex');

  private constructor(
    ws: WebSocket,
    private readonly options: MediasoupPeerOptions,
  ) {
    super(ws);
  }

  protected override onMessage(message: ServerSignal): void {
    if (message.type === 'consumer-closed') this.onRecvQueue(message.consumer, () => this.closeConsumer(message.consumer));
    if (message.type !== 'consumer') return;
    const consumer = message as unknown as Consumer;
    this.onRecvQueue(consumer.consumer, () => this.consume(consumer));
  }

  /** Changes to the receive transport one at a time, in the order the server sent them. */
  private onRecvQueue(consumer: string, change: () => Promise<void>): void {
    this.recvQueue = this.recvQueue.then(change).catch((error: unknown) => void this.errors.push(`consumer ${consumer}: ${String(error)}`));
  }

  /** Keyframe requests (PLI or FIR) the server sent for this peer's camera. */
  get keyframeRequests(): number {
    return this.publisher?.keyframeRequests ?? 0;
  }

  /** Opens the signalling socket (no join yet). */
  static async connect(mediaUrl: string, options: MediasoupPeerOptions = {}): Promise<MediasoupNodePeer> {
    return new MediasoupNodePeer(await SignalPeer.openSocket(mediaUrl), options);
  }

  /** Joins, publishes (when given media) and starts receiving; resolves once its own media flows to the server (throws on an error answer). */
  static async join(mediaUrl: string, token: string, options: MediasoupPeerOptions = {}): Promise<MediasoupNodePeer> {
    const peer = await MediasoupNodePeer.connect(mediaUrl, options);
    await peer.sendJoin(token);
    try {
      const media = peer.joined?.media;
      if (media?.engine !== 'mediasoup') throw new Error(`the media-server does not run mediasoup (joined.media: ${JSON.stringify(media)})`);
      const capabilities = media.routerRtpCapabilities as { codecs?: { kind: string; mimeType: string }[] };
      const published = simulcastOf(options.media ?? null);
      if (published) await peer.publish(published);
      peer.recvTransport = (await peer.ackResult({ type: 'transport-create', direction: 'recv' })) as MediaTransportInfo;
      peer.recvPc = newPeerConnection(options.inboundLossPercent);
      // Opus and VP8 only, without retransmission streams or congestion-control feedback (see the file's comment).
      const codecs = (capabilities.codecs ?? [])
        .filter((c) => /^(audio\/opus|video\/VP8)$/i.test(c.mimeType))
        .map((c) => ({ ...c, rtcpFeedback: c.kind === 'video' ? [{ type: 'nack', parameter: '' }, { type: 'nack', parameter: 'pli' }] : [] }));
      await peer.ackResult({ type: 'consume-ready', rtpCapabilities: { codecs, headerExtensions: [] } });
      return peer;
    } catch (error) {
      await peer.close();
      throw error;
    }
  }

  /** Its send transport's state, and its receive transport's once that has something to receive (before, it is never connected). */
  get connectionState(): string {
    const states = [this.sendPc, this.recvConnected ? this.recvPc : null].filter((pc) => pc !== null).map((pc) => pc.connectionState);
    if (states.length === 0) return 'new';
    return states.find((state) => state !== 'connected') ?? 'connected';
  }

  /** Stops sending its media (the producers stay); `resumeMedia` sends again from where the schedule is. */
  pauseMedia(): void {
    this.publisher?.stop();
  }

  resumeMedia(): void {
    this.publisher?.play();
  }

  private async publish(media: SimulcastMedia): Promise<void> {
    const transport = (await this.ackResult({ type: 'transport-create', direction: 'send' })) as MediaTransportInfo;
    const pc = newPeerConnection();
    this.sendPc = pc;
    const audio = pc.addTransceiver('audio', { direction: 'sendonly' });
    const video = pc.addTransceiver('video', { direction: 'sendonly' });
    await pc.setLocalDescription(await pc.createOffer());
    const mids = [audio.mid!, video.mid!];
    await this.ackResult({ type: 'transport-connect', transport: transport.id, dtlsParameters: { role: 'client', fingerprints: [{ algorithm: 'sha-256', value: localFingerprint(pc.localDescription!.sdp) }] } });
    await pc.setRemoteDescription({
      type: 'answer',
      sdp: sessionDescription(mids, [
        mediaSection({ kind: 'audio', mid: audio.mid!, direction: 'recvonly', setup: 'passive', transport, payloadType: OPUS_PT }),
        mediaSection({ kind: 'video', mid: video.mid!, direction: 'recvonly', setup: 'passive', transport, payloadType: VP8_PT }),
      ]),
    });
    await waitConnected(pc);
    const publisher = new SimulcastPublisher(media, audio, this.options.ignoreKeyframeRequests ?? 0);
    this.publisher = publisher;
    const rtcp = { cname: this.cname, reducedSize: true };
    await this.ackResult({
      type: 'produce',
      transport: transport.id,
      source: 'mic',
      kind: 'audio',
      rtpParameters: {
        mid: audio.mid,
        codecs: [{ mimeType: 'audio/opus', payloadType: OPUS_PT, clockRate: 48000, channels: 2, parameters: { minptime: 10, useinbandfec: 1 }, rtcpFeedback: [] }],
        headerExtensions: [],
        encodings: [{ ssrc: publisher.audioSsrc }],
        rtcp,
      },
    });
    // No video in the media: audio only (the camera's m-line stays unused).
    if (media.layers.length > 0) await this.ackResult({
      type: 'produce',
      transport: transport.id,
      source: 'camera',
      kind: 'video',
      rtpParameters: {
        mid: video.mid,
        codecs: [{ mimeType: 'video/VP8', payloadType: VP8_PT, clockRate: 90000, parameters: {}, rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }] }],
        headerExtensions: [],
        encodings: publisher.layerSsrcs.map((ssrc) => ({ ssrc })),
        rtcp,
      },
    });
    publisher.play();
  }

  /**
   * A new consumer: its m-section put in the receive transport's remote offer,
   * answered, resumed. As mediasoup-client does, it takes the place of a
   * closed m-section of its kind when there is one, else it is added: the
   * offer, and werift's transceivers behind it, stay as large as the most
   * consumers held at once rather than growing with every consumer ever made.
   */
  private async consume(consumer: Consumer): Promise<void> {
    const pc = this.recvPc!;
    const transport = this.recvTransport!;
    const params = consumer.rtpParameters as { mid?: string; codecs: { payloadType: number }[] };
    const section: RecvSection = { mid: String(params.mid ?? consumer.consumer), consumer, state: 'open' };
    const reusable = this.recvSections.findIndex((s) => s.state === 'closed' && s.consumer.kind === consumer.kind);
    if (reusable >= 0) this.recvSections[reusable] = section;
    else this.recvSections.push(section);
    await this.negotiateRecv();
    if (!this.recvConnected) {
      this.recvConnected = true;
      await this.ackResult({ type: 'transport-connect', transport: transport.id, dtlsParameters: { role: 'client', fingerprints: [{ algorithm: 'sha-256', value: localFingerprint(pc.localDescription!.sdp) }] } });
    }
    const transceiver = pc.getTransceivers().find((t) => t.mid === section.mid);
    if (!transceiver) throw new Error(`no transceiver for mid ${section.mid}`);
    const count = this.countStream({ mid: consumer.consumer, participant: consumer.participant, source: consumer.source, kind: consumer.kind });
    const attach = (track: MediaStreamTrack) => track.onReceiveRtp.subscribe(count);
    // werift makes the track while taking the remote offer: it may be there already, or come later.
    const existing = transceiver.receiver.tracks;
    if (existing.length > 0) existing.forEach(attach);
    else transceiver.onTrack.subscribe(attach);
    await this.ackResult({ type: 'consumer-resume', consumer: consumer.consumer });
  }

  /**
   * A consumer the server closed: its m-section closed and negotiated at once,
   * as mediasoup-client's stopReceiving does. The first m-section is only made
   * inactive, never closed or reused (closing it would take the BUNDLE
   * transport's tag away).
   */
  private async closeConsumer(consumerId: string): Promise<void> {
    const index = this.recvSections.findIndex((s) => s.consumer.consumer === consumerId && s.state === 'open');
    if (index < 0) return;
    this.recvSections[index]!.state = index === 0 ? 'inactive' : 'closed';
    await this.negotiateRecv();
  }

  /** The receive transport's remote offer made afresh from its m-sections, and answered. */
  private async negotiateRecv(): Promise<void> {
    const pc = this.recvPc!;
    const transport = this.recvTransport!;
    const sections = this.recvSections.map(({ mid, consumer, state }) => {
      const params = consumer.rtpParameters as { codecs: { payloadType: number }[]; encodings: { ssrc: number }[]; rtcp?: { cname?: string } };
      const payloadType = params.codecs[0]!.payloadType;
      if (state === 'closed') return closedMediaSection(consumer.kind, mid, payloadType);
      return mediaSection({
        kind: consumer.kind,
        mid,
        direction: state === 'open' ? 'sendonly' : 'inactive',
        setup: 'actpass',
        transport,
        payloadType,
        ssrc: { ssrc: params.encodings[0]!.ssrc, cname: params.rtcp?.cname ?? 'sfu', stream: consumer.participant.replace(/[^A-Za-z0-9]/g, '') || 'stream' },
      });
    });
    const bundled = this.recvSections.filter((s) => s.state !== 'closed').map((s) => s.mid);
    this.recvOfferVersion += 1;
    await pc.setRemoteDescription({ type: 'offer', sdp: sessionDescription(bundled, sections, this.recvOfferVersion) });
    await pc.setLocalDescription(await pc.createAnswer());
    // A closed m-section's transceiver is stopped, and its place taken by the next consumer's; werift would still keep
    // it through the bundled DTLS transport's subscribers (werift-workarounds.ts), so nothing would be freed.
    for (const transceiver of pc.getTransceivers()) if (transceiver.stopped || transceiver.stopping) releaseStoppedSender(transceiver.sender);
  }

  /** m-lines in the receive transport's current remote offer (what the churn test bounds). */
  get recvMediaSections(): number {
    return this.recvSections.length;
  }

  private async ackResult(message: ClientMessage): Promise<unknown> {
    const reply = await this.request(message, 20_000);
    if (reply.type === 'error') throw new Error(`${message.type}: ${reply.code} ${reply.message}`);
    return reply.type === 'ack' ? reply.result : undefined;
  }

  async close(): Promise<void> {
    this.publisher?.stop();
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
    await Promise.all([this.sendPc?.close(), this.recvPc?.close()].map((p) => p?.catch(() => undefined)));
  }
}

async function waitConnected(pc: RTCPeerConnection, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (pc.connectionState !== 'connected') {
    if (pc.connectionState === 'failed' || pc.connectionState === 'closed') throw new Error(`send transport ${pc.connectionState}`);
    if (Date.now() > deadline) throw new Error(`send transport not connected within ${timeoutMs} ms (${pc.connectionState})`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Sends the media on a wall-clock schedule, looping it (media-schedule.ts),
 * straight onto the send transport (werift's own sender knows one SSRC per
 * m-line; simulcast needs one per layer): each due video frame in every
 * layer, with the same timestamp; a sender report per SSRC each second.
 */
class SimulcastPublisher {
  readonly layerSsrcs: number[];
  private readonly packetizers: Vp8Packetizer[];
  private readonly dtls: RTCDtlsTransport;
  private readonly schedule: MediaSchedule;
  private timer: NodeJS.Timeout | null = null;
  private reportTimer: NodeJS.Timeout | null = null;
  private readonly sent = new Map<number, { packets: number; octets: number; lastTs: number; lastAt: number }>();

  /** Keyframe requests that named one of the layers. */
  keyframeRequests = 0;

  /** `transceiver`: any of the send transport's (bundled: they share its DTLS transport). */
  constructor(
    private readonly media: SimulcastMedia,
    transceiver: RTCRtpTransceiver,
    private toIgnore: number,
  ) {
    this.layerSsrcs = media.layers.map(() => randomBytes(4).readUInt32BE());
    this.packetizers = this.layerSsrcs.map((ssrc) => new Vp8Packetizer({ ssrc, payloadType: VP8_PT }));
    this.dtls = transceiver.sender.dtlsTransport;
    // The layers share their frames' times and keyframes: the top one sets the schedule.
    this.schedule = new MediaSchedule(media.audio, media.layers[media.layers.length - 1] ?? []);
    this.dtls.onRtcp.subscribe((packet) => {
      // PLI (payload-specific feedback, FMT 1) or FIR (FMT 4) naming one of the layers.
      const feedback = (packet as { feedback?: { mediaSsrc?: number; fir?: { ssrc: number }[] } }).feedback;
      if (!feedback) return;
      const named = [feedback.mediaSsrc, ...(feedback.fir ?? []).map((f) => f.ssrc)];
      if (!named.some((ssrc) => ssrc !== undefined && this.layerSsrcs.includes(ssrc))) return;
      this.keyframeRequests += 1;
      if (this.toIgnore > 0) this.toIgnore -= 1;
      else this.schedule.keyframeRequested();
    });
  }

  get audioSsrc(): number {
    return this.schedule.audioSsrc;
  }

  play(): void {
    if (this.timer) return;
    this.schedule.start();
    this.timer = setInterval(() => this.tick(), 10);
    this.reportTimer = setInterval(() => void this.report(), 1000);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.reportTimer) clearInterval(this.reportTimer);
    this.timer = null;
    this.reportTimer = null;
    this.schedule.pause();
  }

  private send(ssrc: number, payload: Buffer, header: RtpHeader): void {
    const count = this.sent.get(ssrc) ?? { packets: 0, octets: 0, lastTs: 0, lastAt: 0 };
    count.packets += 1;
    count.octets += payload.length;
    count.lastTs = header.timestamp;
    count.lastAt = Date.now();
    this.sent.set(ssrc, count);
    void this.dtls.sendRtp(payload, header).catch(() => undefined);
  }

  private tick(): void {
    const due = this.schedule.due();
    for (const packet of due.audio) this.send(packet.header.ssrc, packet.payload, packet.header);
    for (const { frame, timestamp } of due.video) {
      for (const [i, layer] of this.media.layers.entries()) {
        for (const packet of this.packetizers[i]!.packetize(layer[frame % layer.length]!.data, timestamp)) this.send(this.layerSsrcs[i]!, packet.payload, packet.header);
      }
    }
  }

  private async report(): Promise<void> {
    const nowMs = Date.now();
    // NTP time: seconds since 1900 in the high 32 bits.
    const ntp = (BigInt(Math.floor(nowMs / 1000) + 2_208_988_800) << 32n) | BigInt(Math.floor(((nowMs % 1000) / 1000) * 2 ** 32));
    const packets = [...this.sent.entries()].map(([ssrc, count]) => {
      const rate = ssrc === this.audioSsrc ? 48 : 90;
      return new RtcpSrPacket({
        ssrc,
        senderInfo: new RtcpSenderInfo({ ntpTimestamp: ntp, rtpTimestamp: (count.lastTs + Math.round((nowMs - count.lastAt) * rate)) >>> 0, packetCount: count.packets, octetCount: count.octets }),
      });
    });
    if (packets.length > 0) await this.dtls.sendRtcp(packets).catch(() => undefined);
  }
}
