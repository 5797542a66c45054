import { fileURLToPath } from 'node:url';

/** `@clinic-hub/platform/process`: how every service process stops, and how the processes a test or benchmark starts stop with it; its process metrics. */
export { onStopSignals, type StopStep, type StopSignalOptions } from './stop-signals.js';
export { collectProcessMetrics } from './process-metrics.js';

/** For `node --import <this>` in every process a test or a benchmark starts (parent-watchdog.ts says why). */
export const PARENT_WATCHDOG = fileURLToPath(new URL('./parent-watchdog.ts', import.meta.url));
