import type { Socket } from 'node:dgram';
import { RTCPeerConnection, RtcpRrPacket, RtcpSrPacket, type RTCRtpTransceiver, type RtcpPacket } from 'werift';
import type { MediaSource, MidMap } from '@clinic-hub/protocol';
import type { ParticipantTransport, PublishedTrack, ServerOffers, TransportOffer, TransportOwner, TransportState } from './engine-types.js';
import type { WeriftEngine } from './werift-engine.js';
import { Forward, SubscriberLink } from './werift-forward.js';
import { WeriftPublishedTrack } from './werift-published-track.js';
import { announceCandidates } from './sdp-candidates.js';
import { answerProblem } from './sdp-answer-check.js';
import { onKeyframeRequests, releaseStoppedSender } from './werift-workarounds.js';

interface Subscription {
  track: WeriftPublishedTrack;
  transceiver: RTCRtpTransceiver;
  forward: Forward;
  /** In an offer the client has answered. */
  negotiated: boolean;
  dispose: () => void;
}

/**
 * One participant's peer connection on werift. Its first offer has recvonly
 * slots for the participant's microphone and camera; a screen slot comes and
 * goes with screen sharing; every other participant's track is a sendonly
 * transceiver. Subscriptions that end are stopped (port 0 in the next offer),
 * and werift reuses their m-lines for later ones, so the SDP does not grow as
 * people come and go.
 */
export class WeriftTransport implements ParticipantTransport, ServerOffers {
  readonly offers: ServerOffers = this;
  readonly client = null;
  readonly published = new Map<MediaSource, WeriftPublishedTrack>();
  private readonly pc: RTCPeerConnection;
  private readonly slots = new Map<MediaSource, RTCRtpTransceiver>();
  private readonly subscriptions = new Map<string, Subscription>();
  private readonly link: SubscriberLink;
  private readonly publishListeners = new Set<(track: PublishedTrack) => void>();
  private readonly stateListeners = new Set<(state: TransportState) => void>();
  private offeredSubscriptions: Subscription[] = [];
  /** Subscriptions by the SSRC their sender uses toward this subscriber: where its keyframe requests point. */
  private readonly bySenderSsrc = new Map<number, Subscription>();
  private stopKeyframeRequests: (() => void) | null = null;
  private gathered = false;
  private state: TransportState = 'new';
  private closed = false;

  constructor(
    private readonly engine: WeriftEngine,
    readonly owner: TransportOwner,
  ) {
    this.pc = new RTCPeerConnection(engine.peerConfig());
    this.link = new SubscriberLink(() => this.sendQueueBytes());
    this.addSlot('mic');
    this.addSlot('camera');
    this.pc.connectionStateChange.subscribe((state) => this.setState(state));
  }

  get subscriptionCount(): number {
    let count = 0;
    for (const subscription of this.subscriptions.values()) if (subscription.negotiated) count += 1;
    return count;
  }

  private addSlot(source: MediaSource): void {
    const transceiver = this.pc.addTransceiver(source === 'mic' ? 'audio' : 'video', { direction: 'recvonly' });
    this.slots.set(source, transceiver);
  }

  async createOffer(): Promise<TransportOffer> {
    if (this.closed) throw new Error('transport closed');
    const make = async () => {
      const offer = await this.pc.createOffer();
      await this.pc.setLocalDescription(offer);
      return this.pc.localDescription?.sdp ?? '';
    };
    // Only the first offer gathers candidates (bundle: one transport for the whole session).
    let sdp = this.gathered ? await make() : await this.engine.serialiseGathering(make);
    this.gathered = true;
    if (this.engine.announcedIp) sdp = announceCandidates(sdp, this.engine.announcedIp);
    const publish: MidMap = {};
    for (const [source, transceiver] of this.slots) {
      if (transceiver.mid !== null) publish[transceiver.mid] = { participant: this.owner.participantId, source };
    }
    const subscribe: MidMap = {};
    this.offeredSubscriptions = [];
    for (const subscription of this.subscriptions.values()) {
      const mid = subscription.transceiver.mid;
      if (mid === null) continue;
      subscribe[mid] = { participant: subscription.track.participantId, source: subscription.track.source };
      this.offeredSubscriptions.push(subscription);
    }
    return { sdp, mids: { publish, subscribe } };
  }

  async applyAnswer(sdp: string): Promise<void> {
    if (this.closed) throw new Error('transport closed');
    const problem = answerProblem(this.pc.localDescription?.sdp ?? '', sdp);
    if (problem) throw new Error(problem);
    await this.pc.setRemoteDescription({ type: 'answer', sdp });
    for (const [source, transceiver] of this.slots) {
      const direction = transceiver.currentDirection;
      const sending = direction === 'recvonly' || direction === 'sendrecv';
      const existing = this.published.get(source);
      if (sending && !existing) this.publish(source, transceiver);
      else if (!sending && existing) {
        this.published.delete(source);
        existing.end();
      }
    }
    for (const subscription of this.offeredSubscriptions) {
      if (this.subscriptions.get(subscription.track.id) !== subscription) continue;
      subscription.negotiated = true;
      if (this.state === 'connected') subscription.forward.activate();
    }
    this.offeredSubscriptions = [];
  }

  private publish(source: MediaSource, transceiver: RTCRtpTransceiver): void {
    const track = new WeriftPublishedTrack(this.owner, source, transceiver, this.engine.counterSink, this.engine.logger, this.engine.videoCeiling(source));
    const bound = new Set<object>();
    const bind = (remote: (typeof transceiver.receiver.tracks)[number]) => {
      if (bound.has(remote)) return;
      bound.add(remote);
      const { unSubscribe } = remote.onReceiveRtp.subscribe((packet) => track.deliver(packet));
      track.onEnded(unSubscribe);
    };
    for (const remote of transceiver.receiver.tracks) bind(remote);
    // A new SSRC from the publisher (a renegotiation that changed it) brings a new werift track.
    const { unSubscribe } = transceiver.onTrack.subscribe((remote) => bind(remote));
    track.onEnded(unSubscribe);
    this.published.set(source, track);
    for (const listener of this.publishListeners) listener(track);
  }

  setScreenSlot(on: boolean): void {
    if (this.closed) return;
    const slot = this.slots.get('screen');
    if (on && !slot) this.addSlot('screen');
    if (!on && slot) {
      this.slots.delete('screen');
      const track = this.published.get('screen');
      this.published.delete('screen');
      track?.end();
      slot.stop();
      releaseStoppedSender(slot.sender);
    }
  }

  subscribe(track: PublishedTrack): void {
    if (this.closed || this.subscriptions.has(track.id)) return;
    if (!(track instanceof WeriftPublishedTrack)) throw new Error('the werift engine forwards only its own tracks');
    if (track.isEnded) return;
    const transceiver = this.pc.addTransceiver(track.kind, { direction: 'sendonly' });
    const sender = transceiver.sender;
    const counters = this.engine.counterSink;
    const forward = new Forward(track, sender, this.link, counters, () => this.unsubscribe(track.id));
    // Loss on any of this subscriber's streams tells of its link; audio's is the plainest (no retransmissions hide it).
    const reports = sender.onRtcp.subscribe((packet: RtcpPacket) => {
      if (!(packet instanceof RtcpRrPacket) && !(packet instanceof RtcpSrPacket)) return;
      for (const report of packet.reports) if (report.ssrc === sender.ssrc) forward.reportLoss(report.fractionLost / 256);
    });
    const subscription: Subscription = {
      track,
      transceiver,
      forward,
      negotiated: false,
      dispose: () => {
        reports.unSubscribe();
        this.bySenderSsrc.delete(sender.ssrc);
      },
    };
    this.subscriptions.set(track.id, subscription);
    this.bySenderSsrc.set(sender.ssrc, subscription);
  }

  unsubscribe(trackId: string): void {
    const subscription = this.subscriptions.get(trackId);
    if (!subscription) return;
    this.subscriptions.delete(trackId);
    subscription.forward.close();
    subscription.dispose();
    if (!this.closed) {
      subscription.transceiver.stop();
      releaseStoppedSender(subscription.transceiver.sender);
    }
  }

  onTrackPublished(listener: (track: PublishedTrack) => void): () => void {
    this.publishListeners.add(listener);
    return () => this.publishListeners.delete(listener);
  }

  onStateChange(listener: (state: TransportState) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  private setState(state: TransportState): void {
    if (this.state === state || this.state === 'closed') return;
    this.state = state;
    if (state === 'connected') {
      this.stopKeyframeRequests ??= onKeyframeRequests(this.pc, (ssrc) => {
        const subscription = this.bySenderSsrc.get(ssrc);
        if (!subscription) return;
        this.engine.counterSink.plisReceived += 1;
        subscription.track.requestKeyframe();
      });
      // A PLI for every video stream this subscriber gets, so its first picture comes at once.
      for (const subscription of this.subscriptions.values()) if (subscription.negotiated) subscription.forward.activate();
    }
    for (const listener of this.stateListeners) listener(state);
  }

  /** Bytes waiting in the selected candidate pair's UDP socket (werift internals; 0 when they are not what is expected). */
  private sendQueueBytes(): number {
    try {
      const pair = this.pc.iceTransports[0]?.connection.nominated as { protocol?: { transport?: { socket?: Socket } } } | undefined;
      return pair?.protocol?.transport?.socket?.getSendQueueSize() ?? 0;
    } catch {
      return 0;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const track of this.published.values()) track.end();
    this.published.clear();
    for (const subscription of this.subscriptions.values()) {
      subscription.forward.close();
      subscription.dispose();
    }
    this.subscriptions.clear();
    this.offeredSubscriptions = [];
    this.bySenderSsrc.clear();
    this.stopKeyframeRequests?.();
    this.link.close();
    this.publishListeners.clear();
    await this.pc.close().catch((error: unknown) => this.engine.logger.debug({ err: error, participant: this.owner.participantId }, 'peer connection close failed'));
    this.setState('closed');
    this.stateListeners.clear();
  }
}
