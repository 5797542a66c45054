import { ConfigError, loadConfig } from './config.js';
import { startHub } from './hub.js';

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
  let stopping = false;
  // The first signal drains (clients move to other nodes, acks in flight are sent); a second one stops at once.
  const stop = (signal: string) => {
    const leave = stopping ? hub.close() : hub.drain();
    hub.logger.info({ signal }, stopping ? 'stopping now' : 'draining, then stopping (send the signal again to stop at once)');
    stopping = true;
    leave.then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((error: unknown) => {
  process.stderr.write(`hub failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
