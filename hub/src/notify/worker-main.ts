import { ConfigError } from '../config.js';
import { createHubLogger } from '../hub-logger.js';
import { onStopSignals } from '@clinic-hub/platform/process';
import { loadNotifyConfig } from './notify-config.js';
import { startNotificationWorker } from './notification-worker.js';
import { startWorkerStatusServer, type WorkerStatusServer } from '@clinic-hub/platform/status-server';

/**
 * The notification worker as its own process (`tsx hub/src/notify/worker-main.ts`):
 * configuration from the environment (docs/notifications.md), /metrics and
 * health on NOTIFY_METRICS_PORT when set, stops cleanly on SIGINT/SIGTERM
 * after the notices in hand (BullMQ's worker.close() waits for them).
 */
async function main(): Promise<void> {
  let config;
  try {
    config = loadNotifyConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(78);
    }
    throw error;
  }
  const logger = createHubLogger(config.logLevel, config.nodeId);
  const running = await startNotificationWorker(config, { logger });
  let status: WorkerStatusServer | null = null;
  if (config.metrics) {
    status = await startWorkerStatusServer({ ...config.metrics, registry: running.metrics.registry, status: running.status });
    logger.info({ port: status.port }, 'notification worker metrics and health on /metrics, /healthz, /readyz');
  }
  // A second signal changes nothing: the jobs in hand are finished either way.
  onStopSignals(
    {
      message: 'stopping notification worker: finishing the jobs in hand',
      // The status server stays up meanwhile: /readyz says 503, /metrics still answers.
      run: () => running.close().then(() => status?.close()),
    },
    { logger },
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`notification worker failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
