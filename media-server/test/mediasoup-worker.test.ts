import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import * as mediasoup from 'mediasoup';
import type { types as ms } from 'mediasoup';
import { RTCPeerConnection } from 'werift';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builtWorkerBin } from './support/mediasoup-worker.js';

/**
 * The mediasoup-worker this project builds (media-server/worker-build), in
 * use: a router, a WebRtcServer on one UDP and one TCP port, transports on
 * it, and a real WebRTC peer (werift) through ICE, DTLS and SCTP — the DTLS
 * handshake is what crashes a worker built without our BIO-callback patch on
 * Debian's kernel-TLS OpenSSL.
 */

const mediaCodecs: ms.RouterRtpCodecCapability[] = [
  { kind: 'audio', mimeType: 'audio/opus', clockRate: 48000, channels: 2 },
  { kind: 'video', mimeType: 'video/VP8', clockRate: 90000 },
];

/** A port number free for both UDP and TCP on 127.0.0.1 right now. */
async function freeUdpAndTcpPort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt += 1) {
    const udp = createSocket('udp4');
    const port = await new Promise<number>((resolve) => udp.bind(0, '127.0.0.1', () => resolve(udp.address().port)));
    const tcp = createServer();
    const free = await new Promise<boolean>((resolve) => {
      tcp.once('error', () => resolve(false));
      tcp.listen(port, '127.0.0.1', () => resolve(true));
    });
    udp.close();
    if (free) {
      await new Promise((resolve) => tcp.close(resolve));
      return port;
    }
  }
  throw new Error('no port free for both UDP and TCP on 127.0.0.1');
}

let worker: ms.Worker;
beforeAll(async () => {
  worker = await mediasoup.createWorker({ workerBin: builtWorkerBin(), logLevel: 'warn' });
});
afterAll(() => worker?.close());

describe('mediasoup-worker built by this project', () => {
  it('runs a router, a WebRtcServer on one UDP and one TCP port, and WebRTC transports on it', async () => {
    const port = await freeUdpAndTcpPort();
    const server = await worker.createWebRtcServer({
      listenInfos: [
        { protocol: 'udp', ip: '127.0.0.1', port },
        { protocol: 'tcp', ip: '127.0.0.1', port },
      ],
    });
    const router = await worker.createRouter({ mediaCodecs });
    expect(router.rtpCapabilities.codecs?.map((codec) => codec.mimeType)).toEqual(expect.arrayContaining(['audio/opus', 'video/VP8']));

    const transports = await Promise.all(
      [1, 2, 3].map(() => router.createWebRtcTransport({ webRtcServer: server, enableUdp: true, enableTcp: true, enableSctp: true })),
    );
    for (const transport of transports) {
      const candidates = transport.iceCandidates.map((candidate) => `${candidate.protocol} ${candidate.address}:${candidate.port}`);
      expect(candidates.sort()).toEqual([`tcp 127.0.0.1:${port}`, `udp 127.0.0.1:${port}`]);
      expect(transport.dtlsParameters.fingerprints.some((fingerprint) => fingerprint.algorithm === 'sha-256')).toBe(true);
    }
    const dump = await server.dump();
    expect(dump.udpSockets).toEqual([{ ip: '127.0.0.1', port }]);
    expect(dump.tcpServers).toEqual([{ ip: '127.0.0.1', port }]);
    expect(dump.webRtcTransportIds.sort()).toEqual(transports.map((transport) => transport.id).sort());

    // SRTP parameters go through our libsrtp adapter when a PlainTransport is connected with them.
    const plain = await router.createPlainTransport({ listenInfo: { protocol: 'udp', ip: '127.0.0.1' }, rtcpMux: true, enableSrtp: true, srtpCryptoSuite: 'AEAD_AES_256_GCM' });
    await plain.connect({ ip: '127.0.0.1', port: 9, srtpParameters: { cryptoSuite: 'AEAD_AES_256_GCM', keyBase64: Buffer.alloc(44, 7).toString('base64') } });
    expect(plain.srtpParameters?.cryptoSuite).toBe('AEAD_AES_256_GCM');

    router.close();
    server.close();
    expect(worker.died).toBe(false);
  });

  it('completes ICE, DTLS and SCTP with a WebRTC peer through the WebRtcServer port', { timeout: 30_000 }, async () => {
    const port = await freeUdpAndTcpPort();
    const server = await worker.createWebRtcServer({ listenInfos: [{ protocol: 'udp', ip: '127.0.0.1', port }] });
    const router = await worker.createRouter({ mediaCodecs });
    const transport = await router.createWebRtcTransport({ webRtcServer: server, enableUdp: true, enableSctp: true });
    const peer = new RTCPeerConnection({ iceServers: [], iceUseIpv6: false, iceAdditionalHostAddresses: ['127.0.0.1'] });
    try {
      peer.createDataChannel('smoke');
      await peer.setLocalDescription(await peer.createOffer());
      const offer = peer.localDescription!.sdp;
      const fingerprint = /a=fingerprint:sha-256 (\S+)/.exec(offer)?.[1];
      const mid = /a=mid:(\S+)/.exec(offer)?.[1];
      expect(fingerprint).toBeDefined();

      const dtlsConnected = new Promise<void>((resolve, reject) => {
        transport.on('dtlsstatechange', (state) => {
          if (state === 'connected') resolve();
          if (state === 'failed' || state === 'closed') reject(new Error(`DTLS ${state}`));
        });
      });
      const sctpConnected = new Promise<void>((resolve) => transport.on('sctpstatechange', (state) => state === 'connected' && resolve()));
      // The peer offered actpass and is answered passive: it is the DTLS client, the worker the server.
      await transport.connect({ dtlsParameters: { role: 'client', fingerprints: [{ algorithm: 'sha-256', value: fingerprint! }] } });

      const { usernameFragment, password } = transport.iceParameters;
      const serverFingerprint = transport.dtlsParameters.fingerprints.find((item) => item.algorithm === 'sha-256')!.value;
      const answer = [
        'v=0',
        'o=- 1 1 IN IP4 127.0.0.1',
        's=-',
        't=0 0',
        `a=group:BUNDLE ${mid}`,
        'a=ice-lite',
        `m=application ${port} UDP/DTLS/SCTP webrtc-datachannel`,
        'c=IN IP4 127.0.0.1',
        `a=mid:${mid}`,
        `a=ice-ufrag:${usernameFragment}`,
        `a=ice-pwd:${password}`,
        `a=fingerprint:sha-256 ${serverFingerprint}`,
        'a=setup:passive',
        `a=sctp-port:${transport.sctpParameters!.port}`,
        'a=max-message-size:262144',
        ...transport.iceCandidates.map((c) => `a=candidate:${c.foundation} 1 ${c.protocol} ${c.priority} ${c.address} ${c.port} typ ${c.type}`),
        'a=end-of-candidates',
        '',
      ].join('\r\n');
      await peer.setRemoteDescription({ type: 'answer', sdp: answer });

      await dtlsConnected;
      await sctpConnected;
      expect(transport.iceState).toMatch(/connected|completed/);
      expect(transport.iceSelectedTuple).toMatchObject({ localAddress: '127.0.0.1', localPort: port, protocol: 'udp' });
      expect(worker.died).toBe(false);
      // The worker still answers after the handshake.
      expect((await worker.getResourceUsage()).ru_maxrss).toBeGreaterThan(0);
    } finally {
      await peer.close();
      router.close();
      server.close();
    }
  });
});
