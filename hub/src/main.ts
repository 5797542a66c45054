import { ConfigError, loadConfig } from './config.js';
import { startHub } from './hub.js';
import { onStopSignals } from '@clinic-hub/platform/process';

/** One hub node: configuration from the environment, stops cleanly on SIGINT/SIGTERM. */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(78);
    }
    throw error;
  }
  const hub = await startHub(config);
  // The first signal drains (clients move to other nodes, acks in flight are sent); a second one stops at once.
  onStopSignals(
    { message: 'draining, then stopping (send the signal again to stop at once)', run: () => hub.drain() },
    { logger: hub.logger, again: { message: 'stopping now', run: () => hub.close() } },
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`hub failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
