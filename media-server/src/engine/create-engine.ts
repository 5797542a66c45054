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
      const listenIp = config.host === '::' ? '0.0.0.0' : config.host;
      return MediasoupEngine.create({
        workerBin: config.mediasoupWorker.bin,
        workers: config.workers,
        firstPort: config.udpPortRange[0],
        listenIp,
        announcedAddress: config.announcedIp ?? (listenIp === '0.0.0.0' ? firstExternalIpv4() : null),
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

/** A WebRtcServer listening on every interface must announce one address: the first non-internal IPv4, else loopback. */
function firstExternalIpv4(): string {
  for (const addresses of Object.values(networkInterfaces())) {
    for (const address of addresses ?? []) if (address.family === 'IPv4' && !address.internal) return address.address;
  }
  return '127.0.0.1';
}
