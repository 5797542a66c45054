import { collectDefaultMetrics, type Registry } from 'prom-client';

/**
 * prom-client's event-loop delay histogram wakes the loop this often; its
 * default (10 ms: a hundred wake-ups a second) cost an idle media-server about
 * half a percent of a core, more than a room's own work on mediasoup.
 */
const EVENT_LOOP_MONITORING_PRECISION_MS = 100;

/** process_* and nodejs_* (CPU, memory, event-loop delay, GC) into `registry`: every service alike. */
export function collectProcessMetrics(registry: Registry, prefix = ''): void {
  collectDefaultMetrics({ register: registry, prefix, eventLoopMonitoringPrecision: EVENT_LOOP_MONITORING_PRECISION_MS });
}
