import type { Namespace } from 'socket.io';
import type { Redis } from 'ioredis';
import type { QueueEvent } from '@clinic-hub/protocol';
import type { Logger } from '../logger.js';
import type { HubMetrics } from '../metrics.js';
import { clinicRoom } from './queue-handlers.js';
import { LIVE_CHANNEL_PATTERN, clinicOfLiveChannel } from './queue-service.js';

/**
 * Every node subscribes to the clinics' live channels, which the queue
 * scripts publish to in commit order, and emits each event to its own
 * sockets only (`local`): one delivery per socket, whichever node made the
 * change. A socket that misses one fills the gap with `queue:sync`.
 */
export async function startQueueFanout(subscriber: Redis, nsp: Namespace, metrics: HubMetrics, logger: Logger): Promise<void> {
  subscriber.on('pmessage', (_pattern: string, channel: string, message: string) => {
    const clinic = clinicOfLiveChannel(channel);
    if (!clinic) return;
    let event: QueueEvent;
    try {
      event = JSON.parse(message) as QueueEvent;
    } catch {
      logger.warn({ channel }, 'unparseable queue event on live channel');
      return;
    }
    nsp.local.to(clinicRoom(clinic)).emit('queue:event', event);
    metrics.eventFannedOut(event.type, event.at);
  });
  await subscriber.psubscribe(LIVE_CHANNEL_PATTERN);
}
