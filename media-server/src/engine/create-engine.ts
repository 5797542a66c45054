import { networkInterfaces } from 'node:os';
import type { Logger } from 'pino';
import type { MediaConfig } from '../config.js';
import type { MediaEngine } from './engine-types.js';
import { MediasoupEngine } from './mediasoup-engine.js';
import { WeriftEngine } from './werift-engine.js';

/**
 * The engine MEDIA_ENGINE names. mediasoup needs its worker binary: where
 * none has been built (config.mediasoupWorker says why and what to run) the
 * node starts on werift, saying so loudly, rather than not at all.
 */
export async function createMediaEngine(config: MediaConfig, logger: Logger): Promise<MediaEngine> {
  if (config.engine === 'mediasoup') {
    if (config.mediasoupWorker.ok) {
      const host = config.host === '::' ? '0.0.0.0' : config.host;
      const announcedAddress = config.announcedIp ?? (host === '0.0.0.0' ? firstExternalIpv4() : null);
      const listenIp = mediaListenIp(host, announcedAddress, localIpv4Addresses());
      if (listenIp !== host) logger.info({ host, listenIp }, 'media listens on the announced address, one of this machine\'s own');
      return MediasoupEngine.create({
        workerBin: config.mediasoupWorker.bin,
        workers: config.workers,
        firstPort: config.udpPortRange[0],
        listenIp,
        announcedAddress,
        videoMaxBitrate: config.videoMaxBitrate,
        logger,
      });
    }
    logger.error({ code: config.mediasoupWorker.code }, `mediasoup engine unavailable, falling back to werift: ${config.mediasoupWorker.message}`);
  }
  return WeriftEngine.create({
    udpPortRange: config.udpPortRange,
    extraHostAddresses: config.iceExtraHosts,
    announcedIp: config.announcedIp,
    videoMaxBitrate: config.videoMaxBitrate,
    logger,
  });
}

/**
 * Where the WebRtcServer listens. A UDP socket on 0.0.0.0 answers from the
 * source address the kernel picks for the route back to the browser, and on a
 * machine with several addresses that need not be the one the browser sent
 * to: ICE drops such answers (a STUN response must come from where its request
 * went), so UDP never connects and ICE settles on TCP, whose answers always
 * come from the connected address. Seen when a browser's address moved to a
 * network this machine reaches from another of its addresses
 * (consult-network.test.ts, the flap). Browsers only ever send to the
 * announced address, so when that is one of this machine's own, media listens
 * on it alone; one that is not (NAT, a container's published ports) keeps the
 * wildcard.
 */
export function mediaListenIp(host: string, announced: string | null, localAddresses: readonly string[]): string {
  if (host !== '0.0.0.0' || announced === null) return host;
  return localAddresses.includes(announced) ? announced : host;
}

function localIpv4Addresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((addresses) => (addresses ?? []).filter((a) => a.family === 'IPv4').map((a) => a.address));
}

/** A WebRtcServer listening on every interface must announce one address: the first non-internal IPv4, else loopback. */
function firstExternalIpv4(): string {
  for (const addresses of Object.values(networkInterfaces())) {
    for (const address of addresses ?? []) if (address.family === 'IPv4' && !address.internal) return address.address;
  }
  return '127.0.0.1';
}
