/**
 * The queue domain's surface for the hub, the other domains, tests and
 * benchmarks. docs/protocol.md ("Queue") describes the events and the resume
 * rule.
 */
import type { RedisClient } from '@clinic-hub/platform/redis';
import type { Namespace } from 'socket.io';
import type { QueueEvent } from '@clinic-hub/protocol';
import type { Logger } from '@clinic-hub/platform/logging';
import type { HubMetrics } from '../metrics.js';
import type { SelfCheckinService } from '../self-checkin/self-checkin-service.js';
import type { NodeGuards } from '../socket/event-guard.js';
import { LocalBroadcast } from '../socket/local-broadcast.js';
import type { PatientCheckinDeps } from './checkin-patient.js';
import { registerQueueHandlers } from './queue-handlers.js';
import { startQueueFanout } from './queue-live.js';

export { QueueService, newTicketId, statsFromDurations } from './queue-service.js';
export { clinicKeys, clinicRoom, LIVE_CHANNEL_KIND } from './queue-keys.js';
export { checkinPatient, patientLink, type PatientCheckin, type PatientCheckinDeps } from './checkin-patient.js';
export { upgradeQueueLayout, QUEUE_LAYOUT, type QueueUpgrade } from './queue-upgrade.js';
export { rebuildQueue, type RebuiltQueue } from './rebuild.js';
export { onLiveQueueEvent, startQueueFanout, subscribeLiveChannels, type QueueFanoutDeps } from './queue-live.js';

export interface QueueOptions extends PatientCheckinDeps {
  /** The queue namespace, with `socketAuth` in front. */
  nsp: Namespace;
  /** Commands. */
  redis: RedisClient;
  /** A connection of its own for the clinics' live channels. */
  subscriber: RedisClient;
  clinicIds: string[];
  /** HUB_FANOUT_COALESCE_MS. */
  coalesceMs: number;
  /** Check-ins by patients themselves (kiosk) and appointment arrivals. */
  selfCheckin?: Pick<SelfCheckinService, 'checkin'>;
  logger: Logger;
  metrics: HubMetrics;
  maxPayloadBytes: number;
  guards: NodeGuards;
  /** Hears every queue event this node emits, once. */
  onEvent?: (clinic: string, event: QueueEvent) => void;
}

export interface RunningQueue {
  /** Emits to this node's queue sockets; on uWebSockets.js give it the server's `publish` once it listens (`useTopics`). */
  broadcast: LocalBroadcast;
}

/** Wires the waiting room into a hub node: socket handlers and the live fan-out to displays. */
export async function startQueue(options: QueueOptions): Promise<RunningQueue> {
  const { nsp, subscriber, clinicIds, coalesceMs, onEvent, ...handlerDeps } = options;
  registerQueueHandlers(nsp, handlerDeps);
  // Queue events go to a clinic's displays encoded once; on uWebSockets.js straight to the room's topic.
  const broadcast = new LocalBroadcast(nsp);
  await startQueueFanout(subscriber, broadcast, {
    queue: options.queue,
    clinicIds,
    coalesceMs,
    metrics: options.metrics,
    logger: options.logger,
    ...(onEvent ? { onEvent } : {}),
  });
  return { broadcast };
}
