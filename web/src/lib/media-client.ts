import type {
  ClientSignal,
  ConsultRole,
  ErrorCode,
  MEDIA_SIGNAL_PATH,
  MediaSource,
  MidMap,
  ParticipantInfo,
  RecordingStatus,
  ServerSignal,
} from '@clinic-hub/protocol';
import { MediasoupLink } from './mediasoup-link.js';

/**
 * Only types come from the protocol here: its signalling module defines zod
 * schemas, and importing a value from it would bundle zod (400 kB) into the
 * page. The literal types keep these in step with the protocol.
 */
const SIGNAL_PATH: typeof MEDIA_SIGNAL_PATH = '/signal';
const CLINICIAN_ROLES: Record<ConsultRole, boolean> = { doctor: true, nurse: true, patient: false, interpreter: false, family: false };

/** Doctors and nurses start and stop recording (the server checks; this only decides what to show). */
export const isClinician = (role: ConsultRole): boolean => CLINICIAN_ROLES[role];

/**
 * The browser's side of a consultation: the signalling WebSocket to a
 * media-server node, then the media its engine speaks (`joined.media`). On
 * mediasoup (the default) a MediasoupLink drives mediasoup-client's send and
 * receive transports, simulcast camera, and consumers, and restarts ICE
 * when the network drops. On werift one RTCPeerConnection answers the
 * server's offers, putting its microphone, camera and screen on the m-lines
 * the offer names for them (`mids.publish`) and mapping the others
 * (`mids.subscribe`) to the participants whose tracks they carry. When the
 * signalling socket drops it connects again by itself, backing off: on
 * mediasoup it resumes its session (`join.resume`), keeping its transports
 * and the tiles, so the others see nothing; on werift, or when the server no
 * longer has the session, it joins afresh. A socket that stops answering
 * (a ping or request unanswered, and nothing else heard, for 10 s: its
 * network went, and no close would come for minutes), or that has not
 * opened and answered the join within 15 s, counts as dropped, at once: the
 * page does not wait for a close that a dead network never completes.
 */

export type MediaClientState =
  | { kind: 'connecting' }
  | { kind: 'live' }
  | { kind: 'reconnecting'; attempt: number; inMs: number }
  /** Over: left, ended by the clinic, replaced by another tab, or the node is shutting down. */
  | { kind: 'closed'; reason: 'left' | 'ended' | 'replaced' | 'draining' | 'expired' }
  /** The server refused the join (bad or expired token, wrong node, room full): retrying would not help. */
  | { kind: 'rejected'; code: string; message: string };

/** A client message without its id (each member of the union on its own). */
type Request = ClientSignal extends infer T ? (T extends unknown ? Omit<T, 'id'> : never) : never;

export type ConnectionQuality = 'good' | 'fair' | 'poor' | 'unknown';

export interface RemoteParticipant {
  info: ParticipantInfo;
  /** The tracks received from them, by source (a stream per source, for a <video> or <audio>). */
  streams: Partial<Record<MediaSource, MediaStream>>;
}

export interface MediaClientEvents {
  state(state: MediaClientState): void;
  /** Someone came, went, or changed (sources, mute, consent, tracks). */
  participants(participants: ReadonlyMap<string, RemoteParticipant>): void;
  self(info: ParticipantInfo): void;
  recording(status: RecordingStatus): void;
  quality(quality: ConnectionQuality, detail: { rttMs: number | null; lossPercent: number | null }): void;
  /** A request the server refused (not the join). */
  error(error: { code: string; message: string }): void;
  /** Who speaks now (mediasoup's active speaker), or null. */
  speaker(participant: string | null): void;
}

export interface LocalTracks {
  mic: MediaStreamTrack | null;
  camera: MediaStreamTrack | null;
  screen: MediaStreamTrack | null;
}

/** Join errors that a retry cannot fix. */
const FATAL_JOIN_CODES = new Set(['AUTH_REQUIRED', 'AUTH_INVALID', 'AUTH_EXPIRED', 'MEDIA_WRONG_ROOM', 'MEDIA_ROOM_FULL', 'CONSULT_ENDED', 'CONSULT_NOT_PARTICIPANT']);
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 10_000;
const QUALITY_INTERVAL_MS = 2000;
/**
 * A ping this often, so that an idle socket has a request outstanding: half the request timeout, so a socket that
 * dies is noticed within 15 s (the next ping, then its 10 s), well inside the server's wait for a resume (its two
 * missed pings, 10–20 s, then MEDIA_RESUME_GRACE_MS, 15 s).
 */
const PING_INTERVAL_MS = 5000;
/** A request (a ping too) unanswered this long, with nothing else heard on the socket meanwhile: the socket is taken for dead. */
const REQUEST_TIMEOUT_MS = 10_000;
/**
 * A new socket must open and answer the join within this (the server itself gives a join 10 s, MEDIA_JOIN_TIMEOUT_MS):
 * a connection begun just as the network changed may hang for minutes (unanswered SYNs) with nothing to time it out.
 */
const JOIN_TIMEOUT_MS = 15_000;
/** The close code this client sends on a socket it gives up on to resume on a new one (the server then keeps the session). */
const RESUME_CLOSE_CODE = 4000;
/** Rejection of requests the socket could not carry (the page's own; the server never sends it). */
const SIGNAL_DOWN: ErrorCode = 'MEDIA_SIGNAL_DOWN';

export class MediaClient {
  private ws: WebSocket | null = null;
  private pc: RTCPeerConnection | null = null;
  private link: MediasoupLink | null = null;
  private iceServers: RTCIceServer[] = [];
  private readonly remote = new Map<string, RemoteParticipant>();
  /** mid → whose track it carries, for the current peer connection. */
  private subscribeMids: MidMap = {};
  /** source → mid of this client's sending slots, from the last offer. */
  private publishMids = new Map<MediaSource, string>();
  private state: MediaClientState = { kind: 'connecting' };
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private qualityTimer: ReturnType<typeof setInterval> | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private nextId = 1;
  private readonly pending = new Map<string, { resolve: (result: unknown) => void; reject: (error: { code: string; message: string }) => void }>();
  private offers: Promise<void> = Promise.resolve();
  private lastStats: { packetsReceived: number; packetsLost: number } | null = null;
  private selfInfo: ParticipantInfo | null = null;
  /** `joined.session`: what a new socket resumes (mediasoup, while the link is kept). */
  private session: string | null = null;
  /** When the current socket last brought anything (performance.now(); 0: nothing yet): a slow answer on a live socket is not a dead socket. */
  private lastHeardAt = 0;
  /** The socket the last `joined` came on. */
  private joinedOn: WebSocket | null = null;
  private readonly listeners: { [K in keyof MediaClientEvents]: Set<MediaClientEvents[K]> } = {
    state: new Set(),
    participants: new Set(),
    self: new Set(),
    recording: new Set(),
    quality: new Set(),
    error: new Set(),
    speaker: new Set(),
  };
  /** When this attempt's join was sent and its peer connection connected (performance.now()), for join → first frame. */
  joinSentAt = 0;
  connectedAt = 0;

  constructor(
    private readonly mediaUrl: string,
    private readonly token: string,
    private readonly local: LocalTracks,
  ) {}

  on<K extends keyof MediaClientEvents>(event: K, listener: MediaClientEvents[K]): () => void {
    this.listeners[event].add(listener);
    return () => this.listeners[event].delete(listener);
  }

  get participants(): ReadonlyMap<string, RemoteParticipant> {
    return this.remote;
  }

  get peerConnection(): RTCPeerConnection | null {
    return this.pc;
  }

  /** Every receiver of another participant's track, whichever the engine (the page's framesDecoded hook). */
  receivers(): { participant: string; source: MediaSource; receiver: RTCRtpReceiver }[] {
    if (this.link) return this.link.receivers();
    const pc = this.pc;
    if (!pc) return [];
    const out: { participant: string; source: MediaSource; receiver: RTCRtpReceiver }[] = [];
    for (const transceiver of pc.getTransceivers()) {
      const owner = transceiver.mid ? this.subscribeMids[transceiver.mid] : undefined;
      if (owner) out.push({ participant: owner.participant, source: owner.source, receiver: transceiver.receiver });
    }
    return out;
  }

  /** How large a participant's camera or screen is shown (CSS pixels): on mediasoup the server picks the simulcast layer from it. */
  setView(participant: string, source: MediaSource, width: number, height: number): void {
    this.link?.setView(participant, source, width, height);
  }

  /** ICE restarts done on this join (mediasoup), for the test hook. */
  get iceRestarts(): number {
    return this.link?.iceRestarts ?? 0;
  }

  /** Restarts ICE now on the same transports (what a network change does by itself); for tests and a manual "reconnect". */
  restartIce(): Promise<void> {
    return this.link?.restartIce() ?? Promise.resolve();
  }

  get self(): ParticipantInfo | null {
    return this.selfInfo;
  }

  start(): void {
    this.connect();
    this.qualityTimer = setInterval(() => void this.measureQuality(), QUALITY_INTERVAL_MS);
  }

  /** Leaves for good: tells the server, closes everything. */
  async leave(): Promise<void> {
    if (this.state.kind === 'closed') return;
    await this.request({ type: 'leave' }).catch(() => undefined);
    this.finish({ kind: 'closed', reason: 'left' });
  }

  /** Mutes (the track sends silence or black) and tells the others. */
  setMuted(source: 'mic' | 'camera', muted: boolean): Promise<void> {
    const track = this.local[source];
    if (track) track.enabled = !muted;
    return this.request({ type: 'mute', source, muted });
  }

  /** A new device (or a screen) for a source: swapped on the sender in place, no renegotiation unless the slot is new. */
  async replaceTrack(source: MediaSource, track: MediaStreamTrack | null): Promise<void> {
    this.local[source] = track;
    if (this.link) {
      await this.link.replaceTrack(source, track);
      if (track) await this.request({ type: 'publish', source, on: true });
      return;
    }
    const transceiver = this.transceiverFor(source);
    if (transceiver && track && transceiver.currentDirection === 'sendonly') {
      await transceiver.sender.replaceTrack(track);
      return;
    }
    // No slot yet (screen), or one answered inactive: the server offers it again.
    if (track || source === 'screen') await this.request({ type: 'publish', source, on: track !== null });
  }

  setConsent(granted: boolean): Promise<void> {
    return this.request({ type: 'consent', granted });
  }

  recording(action: 'start' | 'stop'): Promise<void> {
    return this.request({ type: 'recording', action });
  }

  // ---- connection ----

  private connect(): void {
    this.setState(this.attempt === 0 ? { kind: 'connecting' } : this.state);
    const url = `${this.mediaUrl.replace(/\/$/, '').replace(/^http/, 'ws')}${SIGNAL_PATH}`;
    const ws = new WebSocket(url);
    this.ws = ws;
    this.lastHeardAt = 0;
    const joinTimer = setTimeout(() => {
      if (this.ws !== ws || this.joinedOn === ws) return;
      console.warn('the signalling socket did not open and answer the join in time; trying a new one');
      this.abandon(ws, RESUME_CLOSE_CODE, 'no join answer; trying again');
    }, JOIN_TIMEOUT_MS);
    ws.onopen = () => {
      this.joinSentAt = performance.now();
      // Resumed only with the transports still here to go on with.
      this.send({ type: 'join', token: this.token, ...(this.link && this.session ? { resume: this.session } : {}) });
    };
    ws.onmessage = (event) => {
      // A socket given up on speaks for nobody (its late 'error' or 'closed' must not touch the one that replaced it).
      if (this.ws !== ws) return;
      this.lastHeardAt = performance.now();
      let message: ServerSignal;
      try {
        message = JSON.parse(String(event.data)) as ServerSignal;
      } catch {
        return;
      }
      this.receive(message);
    };
    ws.onclose = () => {
      clearTimeout(joinTimer);
      if (this.ws !== ws) return;
      this.dropped();
    };
  }

  private receive(message: ServerSignal): void {
    switch (message.type) {
      case 'joined':
        this.attempt = 0;
        this.joinedOn = this.ws;
        this.selfInfo = message.self;
        this.session = message.session;
        this.iceServers = message.iceServers;
        if (message.resumed && this.link) this.resumed(this.link, message.participants);
        else {
          this.remote.clear();
          for (const info of message.participants) this.remote.set(info.id, { info, streams: {} });
          if (message.media.engine === 'mediasoup') this.openLink(message.media.routerRtpCapabilities);
          else this.openPeerConnection(message.iceServers);
        }
        this.setState({ kind: 'live' });
        this.emit('self', message.self);
        this.emit('recording', message.recording);
        this.emitParticipants();
        this.pingTimer ??= setInterval(() => void this.requestResult({ type: 'ping' }).catch(() => undefined), PING_INTERVAL_MS);
        return;
      case 'offer':
        this.offers = this.offers.then(() => this.answer(message)).catch((error: unknown) => {
          console.warn('could not answer the offer', error);
          // A connection that cannot take the offer is rebuilt from a fresh join.
          if (this.ws) this.abandon(this.ws);
        });
        return;
      case 'participant-joined':
      case 'participant-updated': {
        const existing = this.remote.get(message.participant.id);
        if (message.participant.id === this.selfInfo?.id) {
          this.selfInfo = message.participant;
          this.emit('self', message.participant);
          return;
        }
        // A participant who rejoined has new tracks: the old streams go with the old entry.
        this.remote.set(message.participant.id, { info: message.participant, streams: message.type === 'participant-joined' ? {} : existing?.streams ?? {} });
        this.emitParticipants();
        return;
      }
      case 'consumer':
        this.link?.consumer(message);
        return;
      case 'consumer-closed':
        this.link?.consumerClosed(message.consumer);
        return;
      case 'active-speaker':
        this.emit('speaker', message.participant);
        return;
      case 'media-reset':
        // The room moved to another media worker: same room, new transports.
        if (this.link) this.openLink(message.routerRtpCapabilities);
        return;
      case 'participant-left':
        this.remote.delete(message.participant);
        this.emitParticipants();
        return;
      case 'recording':
        this.emit('recording', message.recording);
        return;
      case 'ack':
        this.pending.get(message.id)?.resolve(message.result);
        this.pending.delete(message.id);
        return;
      case 'error':
        if (message.id && this.pending.has(message.id)) {
          this.pending.get(message.id)!.reject({ code: message.code, message: message.message });
          this.pending.delete(message.id);
          return;
        }
        if (this.selfInfo === null && FATAL_JOIN_CODES.has(message.code)) {
          this.finish({ kind: 'rejected', code: message.code, message: message.message });
          return;
        }
        // A join refused for now (MEDIA_NODE_UNAVAILABLE, STORE_UNAVAILABLE…): try again with the reconnect backoff.
        if (this.selfInfo === null && !message.id && this.ws) this.abandon(this.ws);
        this.emit('error', { code: message.code, message: message.message });
        return;
      case 'closed':
        this.finish({ kind: 'closed', reason: message.reason });
        return;
      case 'pong':
        if (message.id) {
          this.pending.get(message.id)?.resolve(undefined);
          this.pending.delete(message.id);
        }
        return;
    }
  }

  private openLink(routerRtpCapabilities: Record<string, unknown>): void {
    this.link?.close();
    const link = new MediasoupLink({
      request: (message) => this.requestResult(message),
      iceServers: this.iceServers,
      local: this.local,
      onTrack: (participant, source, track) => this.attachRemoteTrack(participant, source, track),
      onTrackEnded: (participant, source, track) => {
        const remote = this.remote.get(participant);
        if (!remote?.streams[source]?.getTracks().includes(track)) return;
        delete remote.streams[source];
        this.emitParticipants();
      },
      onConnected: () => {
        if (this.link === link && this.connectedAt < this.joinSentAt) this.connectedAt = performance.now();
      },
      onLost: (reason) => {
        if (this.link !== link) return;
        console.warn('media transports lost; joining again', reason);
        this.rejoinFresh();
      },
    });
    this.link = link;
    link.start(routerRtpCapabilities).catch((error: unknown) => {
      if (this.link !== link) return;
      console.warn('could not set up the media transports', error);
      // A join whose transports cannot be made is rebuilt from a fresh join.
      this.rejoinFresh();
    });
  }

  /** The session resumed on this socket: the others are who the server says; tracks of anyone gone (or a source stopped) meanwhile go; ICE restarts where the network went. */
  private resumed(link: MediasoupLink, participants: ParticipantInfo[]): void {
    const present = new Map(participants.map((info) => [info.id, info]));
    for (const id of [...this.remote.keys()]) if (!present.has(id)) this.remote.delete(id);
    for (const info of participants) this.remote.set(info.id, { info, streams: this.remote.get(info.id)?.streams ?? {} });
    link.keepOnly((participant, source) => present.get(participant)?.sources.includes(source) ?? false);
    link.resumed();
  }

  /** Gives up the transports and the session: closes the socket (on purpose: the server drops the participant now) to join again from scratch. */
  private rejoinFresh(): void {
    this.link?.close();
    this.link = null;
    this.session = null;
    if (this.ws) this.abandon(this.ws);
  }

  /** The socket looks open but does not answer: its network is gone and its close may take minutes. Given up now, to resume on a new one. */
  private signalLost(ws: WebSocket): void {
    if (this.ws !== ws) return;
    console.warn('the signalling socket stopped answering; resuming on a new one');
    this.abandon(ws, RESUME_CLOSE_CODE, 'no answer; resuming');
  }

  /**
   * Gives up a socket now and connects again, without waiting for its close
   * event: over a network that went, the closing handshake never completes
   * (Chromium waits a minute for the server's close frame), and meanwhile a
   * socket left CLOSING would fail every request and ping at once, so nothing
   * would ever notice it. No code: a close on purpose (the server drops the
   * participant now); RESUME_CLOSE_CODE: the server keeps the session.
   */
  private abandon(ws: WebSocket, code?: number, reason?: string): void {
    if (this.ws !== ws) return;
    if (code === undefined) ws.close();
    else ws.close(code, reason);
    this.dropped();
  }

  private openPeerConnection(iceServers: RTCIceServer[]): void {
    this.closePeerConnection();
    const pc = new RTCPeerConnection({ iceServers, bundlePolicy: 'max-bundle' });
    this.pc = pc;
    this.subscribeMids = {};
    this.publishMids.clear();
    pc.ontrack = (event) => {
      const mid = event.transceiver.mid;
      const owner = mid ? this.subscribeMids[mid] : undefined;
      if (!owner) return;
      this.attachRemoteTrack(owner.participant, owner.source, event.track);
    };
    pc.onconnectionstatechange = () => {
      if (pc === this.pc && pc.connectionState === 'connected') this.connectedAt = performance.now();
      // ICE gave up (the network changed under us): start over with a fresh join.
      if (pc === this.pc && pc.connectionState === 'failed') this.ws?.close();
    };
  }

  /** When each participant's camera track arrived on this join (performance.now()), for join → first frame. */
  readonly cameraTrackAt = new Map<string, number>();

  private attachRemoteTrack(participantId: string, source: MediaSource, track: MediaStreamTrack): void {
    const participant = this.remote.get(participantId);
    if (!participant) return;
    if (source === 'camera') this.cameraTrackAt.set(participantId, performance.now());
    participant.streams[source] = new MediaStream([track]);
    this.emitParticipants();
  }

  private async answer(offer: Extract<ServerSignal, { type: 'offer' }>): Promise<void> {
    const pc = this.pc;
    if (!pc) return;
    this.subscribeMids = { ...offer.mids.subscribe };
    this.publishMids = new Map(Object.entries(offer.mids.publish).map(([mid, slot]) => [slot.source, mid]));
    await pc.setRemoteDescription({ type: 'offer', sdp: offer.sdp });
    for (const transceiver of pc.getTransceivers()) {
      const mid = transceiver.mid;
      if (mid === null || transceiver.currentDirection === 'stopped') continue;
      const slot = offer.mids.publish[mid];
      if (slot) {
        const track = this.local[slot.source];
        transceiver.direction = track ? 'sendonly' : 'inactive';
        if (transceiver.sender.track !== track) await transceiver.sender.replaceTrack(track);
        continue;
      }
      const owner = offer.mids.subscribe[mid];
      if (owner) {
        transceiver.direction = 'recvonly';
        // On a renegotiation ontrack does not fire again for an m-line already receiving.
        const participant = this.remote.get(owner.participant);
        if (participant && !participant.streams[owner.source]?.getTracks().includes(transceiver.receiver.track)) {
          this.attachRemoteTrack(owner.participant, owner.source, transceiver.receiver.track);
        }
      }
    }
    await pc.setLocalDescription(await pc.createAnswer());
    await gatheringComplete(pc);
    this.send({ type: 'answer', rev: offer.rev, sdp: pc.localDescription!.sdp });
  }

  private transceiverFor(source: MediaSource): RTCRtpTransceiver | null {
    const pc = this.pc;
    if (!pc) return null;
    const mid = this.publishMids.get(source);
    return pc.getTransceivers().find((t) => mid !== undefined && t.mid === mid && t.currentDirection !== 'stopped') ?? null;
  }

  /**
   * The socket closed without a goodbye: connect again, waiting longer each
   * time. mediasoup's transports (and so the tiles) are kept for a resume:
   * often only the socket went, and the media still flows.
   */
  private dropped(): void {
    if (this.state.kind === 'closed' || this.state.kind === 'rejected') return;
    this.ws = null;
    if (!this.link) {
      this.closePeerConnection();
      this.remote.clear();
      this.emitParticipants();
    }
    this.selfInfo = null;
    for (const { reject } of this.pending.values()) reject({ code: SIGNAL_DOWN, message: 'The connection dropped.' });
    this.pending.clear();
    this.attempt += 1;
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** (this.attempt - 1));
    const inMs = Math.round(base / 2 + Math.random() * (base / 2));
    this.setState({ kind: 'reconnecting', attempt: this.attempt, inMs });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.connect();
    }, inMs);
  }

  private finish(state: Extract<MediaClientState, { kind: 'closed' | 'rejected' }>): void {
    this.setState(state);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.qualityTimer) clearInterval(this.qualityTimer);
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.retryTimer = null;
    this.qualityTimer = null;
    this.pingTimer = null;
    const ws = this.ws;
    this.ws = null;
    ws?.close();
    this.closePeerConnection();
    this.remote.clear();
    this.emitParticipants();
  }

  private closePeerConnection(): void {
    this.link?.close();
    this.link = null;
    this.pc?.close();
    this.pc = null;
    this.offers = Promise.resolve();
    this.lastStats = null;
  }

  // ---- quality ----

  /**
   * From getStats: the round-trip time of the selected candidate pair and the
   * share of packets lost over the last interval on everything received.
   */
  private async measureQuality(): Promise<void> {
    const pc = this.pc;
    const link = this.link;
    if ((!pc && !link) || this.state.kind !== 'live') {
      this.emit('quality', 'unknown', { rttMs: null, lossPercent: null });
      return;
    }
    const reports = link ? await link.stats() : [await pc!.getStats()];
    let rttMs: number | null = null;
    let packetsReceived = 0;
    let packetsLost = 0;
    for (const report of reports) report.forEach((entry: Record<string, unknown>) => {
      if (entry.type === 'candidate-pair' && entry.nominated && typeof entry.currentRoundTripTime === 'number') rttMs = entry.currentRoundTripTime * 1000;
      if (entry.type === 'inbound-rtp') {
        packetsReceived += Number(entry.packetsReceived ?? 0);
        packetsLost += Number(entry.packetsLost ?? 0);
      }
    });
    let lossPercent: number | null = null;
    if (this.lastStats) {
      const received = packetsReceived - this.lastStats.packetsReceived;
      const lost = packetsLost - this.lastStats.packetsLost;
      if (received + lost > 0) lossPercent = (100 * Math.max(0, lost)) / (received + Math.max(0, lost));
    }
    this.lastStats = { packetsReceived, packetsLost };
    const quality: ConnectionQuality =
      rttMs === null && lossPercent === null
        ? 'unknown'
        : (lossPercent ?? 0) > 8 || (rttMs ?? 0) > 400
          ? 'poor'
          : (lossPercent ?? 0) > 2 || (rttMs ?? 0) > 150
            ? 'fair'
            : 'good';
    this.emit('quality', quality, { rttMs, lossPercent });
  }

  // ---- plumbing ----

  private send(message: ClientSignal): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  private async request(message: Request): Promise<void> {
    await this.requestResult(message);
  }

  /**
   * Sends a request and resolves with its ack's `result` (mediasoup's
   * transport parameters, producer id…), or its pong. Unanswered within
   * REQUEST_TIMEOUT_MS, the socket is taken for dead (signalLost).
   */
  private requestResult(message: Request): Promise<unknown> {
    const id = `c${this.nextId++}`;
    const ws = this.ws;
    return new Promise((resolve, reject) => {
      if (!ws || ws.readyState !== WebSocket.OPEN) {
        reject({ code: SIGNAL_DOWN, message: 'Not connected.' });
        return;
      }
      let timer: ReturnType<typeof setTimeout>;
      const check = () => {
        if (!this.pending.has(id)) return;
        // Something came meanwhile: the socket lives and the server is only slow (a busy machine). Wait on, until
        // REQUEST_TIMEOUT_MS after the last thing heard (not a whole new period: a socket that died just after a
        // message would otherwise take twice as long to notice).
        const quietFor = performance.now() - this.lastHeardAt;
        if (this.ws === ws && quietFor < REQUEST_TIMEOUT_MS) {
          timer = setTimeout(check, REQUEST_TIMEOUT_MS - quietFor + 50);
          return;
        }
        this.pending.delete(id);
        reject({ code: SIGNAL_DOWN, message: 'No answer from the media-server.' });
        this.signalLost(ws);
      };
      timer = setTimeout(check, REQUEST_TIMEOUT_MS);
      const settled = () => clearTimeout(timer);
      this.pending.set(id, {
        resolve: (result) => (settled(), resolve(result)),
        reject: (error) => (settled(), reject(error)),
      });
      this.send({ ...message, id } as ClientSignal);
    });
  }

  private setState(state: MediaClientState): void {
    this.state = state;
    this.emit('state', state);
  }

  private emitParticipants(): void {
    this.emit('participants', this.remote);
  }

  private emit<K extends keyof MediaClientEvents>(event: K, ...args: Parameters<MediaClientEvents[K]>): void {
    for (const listener of this.listeners[event]) (listener as (...a: Parameters<MediaClientEvents[K]>) => void)(...args);
  }
}

/** Offers and answers carry their candidates (no trickle): wait until they are all in the description. */
function gatheringComplete(pc: RTCPeerConnection): Promise<void> {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const check = () => {
      if (pc.iceGatheringState !== 'complete') return;
      pc.removeEventListener('icegatheringstatechange', check);
      resolve();
    };
    pc.addEventListener('icegatheringstatechange', check);
    // Some networks never finish gathering (an unreachable TURN server): go with what there is.
    setTimeout(() => {
      pc.removeEventListener('icegatheringstatechange', check);
      resolve();
    }, 3000);
  });
}

/** What the page's address gives: `#media=<media-server URL>&token=<room token>`. */
export function roomPassFromFragment(): { mediaUrl: string; token: string } | null {
  const params = new URLSearchParams(location.hash.slice(1));
  const mediaUrl = params.get('media');
  const token = params.get('token');
  if (!mediaUrl || !token || !/^(https?|wss?):\/\/[^\s]+$/.test(mediaUrl)) return null;
  return { mediaUrl, token };
}
