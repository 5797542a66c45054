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
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    hub.logger.info({ signal }, 'stopping');
    hub.close().then(
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
