/**
 * What a page's WebRTC really does, read from Chromium itself rather than
 * from the page's own code: which resolution it decodes of each remote
 * camera (the simulcast layer it gets), over which protocol and port its ICE
 * connected, and whether it restarted ICE on the same peer connection or made
 * a new one. Works on any page: an init script keeps every RTCPeerConnection
 * the page creates (and every local ICE username fragment it sets) in
 * `window.__peerConnections`.
 */
import type { BrowserContext, Page } from 'playwright-core';

/** Before any page script: every RTCPeerConnection is kept, with the local ICE ufrags it has used. */
const SPY = `(() => {
  if (window.__peerConnections) return;
  const Native = window.RTCPeerConnection;
  const all = [];
  window.__peerConnections = all;
  class Kept extends Native {
    constructor(...args) {
      super(...args);
      this.__ufrags = [];
      all.push(this);
    }
    async setLocalDescription(...args) {
      const result = await super.setLocalDescription(...args);
      for (const match of (this.localDescription?.sdp ?? '').matchAll(/^a=ice-ufrag:(\\S+)/gm)) {
        if (!this.__ufrags.includes(match[1])) this.__ufrags.push(match[1]);
      }
      return result;
    }
  }
  window.RTCPeerConnection = Kept;
})()`;

/** Call on a context before its pages open (or on a page before goto). */
export async function keepPeerConnections(target: BrowserContext | Page): Promise<void> {
  await target.addInitScript(SPY);
}

export interface ReceivedVideo {
  /** The participant whose tile shows this track (`figure[data-participant]` holding a <video> with it), or null. */
  participant: string | null;
  trackIdentifier: string;
  frameWidth: number | null;
  frameHeight: number | null;
  framesDecoded: number;
  bytesReceived: number;
  packetsLost: number;
}

/** Every video the page receives and decodes, with the size of its last decoded frame. */
export async function receivedVideo(page: Page): Promise<ReceivedVideo[]> {
  // A string, not a function: what the test runner compiles a function into need not run in a page.
  return (await page.evaluate(`(async () => {
    const byTrack = new Map();
    for (const figure of document.querySelectorAll('[data-participant]')) {
      for (const video of figure.querySelectorAll('video')) {
        for (const track of video.srcObject?.getVideoTracks?.() ?? []) byTrack.set(track.id, figure.getAttribute('data-participant'));
      }
    }
    const out = [];
    for (const pc of window.__peerConnections ?? []) {
      if (pc.connectionState === 'closed') continue;
      (await pc.getStats()).forEach((s) => {
        if (s.type !== 'inbound-rtp' || s.kind !== 'video') return;
        const track = String(s.trackIdentifier ?? '');
        out.push({
          participant: byTrack.get(track) ?? null,
          trackIdentifier: track,
          frameWidth: typeof s.frameWidth === 'number' ? s.frameWidth : null,
          frameHeight: typeof s.frameHeight === 'number' ? s.frameHeight : null,
          framesDecoded: Number(s.framesDecoded ?? 0),
          bytesReceived: Number(s.bytesReceived ?? 0),
          packetsLost: Number(s.packetsLost ?? 0),
        });
      });
    }
    return out;
  })()`)) as ReceivedVideo[];
}

interface Candidate {
  protocol: string;
  candidateType: string;
  address: string | null;
  port: number | null;
  /** 'active', 'passive' or 'so' for a TCP candidate. */
  tcpType: string | null;
}

export interface IceRoute {
  /** Index of the peer connection in creation order. */
  pc: number;
  /** The peer connection's own state ('connected', 'disconnected', …). */
  connectionState: string;
  local: Candidate | null;
  remote: Candidate | null;
  /** Local ICE username fragments this peer connection has used: more than one means ICE was restarted on it. */
  ufrags: string[];
}

/** For each open peer connection of the page: its selected candidate pair (null before ICE connects) and its ICE restarts. */
export async function iceRoutes(page: Page): Promise<IceRoute[]> {
  return (await page.evaluate(`(async () => {
    const out = [];
    for (const [index, pc] of (window.__peerConnections ?? []).entries()) {
      if (pc.connectionState === 'closed') continue;
      const stats = await pc.getStats();
      const byId = new Map();
      let pairId = null;
      stats.forEach((s) => {
        byId.set(s.id, s);
        if (s.type === 'transport' && typeof s.selectedCandidatePairId === 'string') pairId = s.selectedCandidatePairId;
      });
      const pair = pairId ? byId.get(pairId) : undefined;
      const candidate = (id) => {
        const c = byId.get(id);
        if (!c) return null;
        return {
          protocol: String(c.protocol),
          candidateType: String(c.candidateType),
          address: typeof c.address === 'string' ? c.address : null,
          port: typeof c.port === 'number' ? c.port : null,
          tcpType: typeof c.tcpType === 'string' ? c.tcpType : null,
        };
      };
      out.push({
        pc: index,
        connectionState: pc.connectionState,
        local: pair ? candidate(pair.localCandidateId) : null,
        remote: pair ? candidate(pair.remoteCandidateId) : null,
        ufrags: [...pc.__ufrags],
      });
    }
    return out;
  })()`)) as IceRoute[];
}

export interface SentVideo {
  /** The simulcast layer's rid (null without simulcast). */
  rid: string | null;
  frameWidth: number | null;
  frameHeight: number | null;
  framesEncoded: number;
  /** Why Chromium sends less than asked: 'cpu', 'bandwidth', 'other' or 'none'. */
  qualityLimitationReason: string | null;
  bytesSent: number;
}

/** Every video stream (each simulcast layer) the page sends, as Chromium's encoder reports it. */
export async function sentVideo(page: Page): Promise<SentVideo[]> {
  return (await page.evaluate(`(async () => {
    const out = [];
    for (const pc of window.__peerConnections ?? []) {
      if (pc.connectionState === 'closed') continue;
      (await pc.getStats()).forEach((s) => {
        if (s.type !== 'outbound-rtp' || s.kind !== 'video') return;
        out.push({
          rid: typeof s.rid === 'string' ? s.rid : null,
          frameWidth: typeof s.frameWidth === 'number' ? s.frameWidth : null,
          frameHeight: typeof s.frameHeight === 'number' ? s.frameHeight : null,
          framesEncoded: Number(s.framesEncoded ?? 0),
          qualityLimitationReason: typeof s.qualityLimitationReason === 'string' ? s.qualityLimitationReason : null,
          bytesSent: Number(s.bytesSent ?? 0),
        });
      });
    }
    return out;
  })()`)) as SentVideo[];
}
