import { ConfigError, loadMediaConfig } from './config.js';
import { createMediaLogger, startMediaServer } from './media-server.js';
import { startAudioTap } from './audio-tap/index.js';
import { loadRecordingConfig, startRecording } from './recording/index.js';

/** One media-server node: configuration from the environment; SIGTERM drains, a second signal stops at once. */
async function main(): Promise<void> {
  let config;
  let recordingConfig;
  try {
    config = loadMediaConfig();
    recordingConfig = loadRecordingConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(78);
    }
    throw error;
  }
  const logger = createMediaLogger(config.logLevel, config.nodeId);
  const node = { redisUrl: config.redisUrl, nodeId: config.nodeId, logger };
  const recording = await startRecording({ ...node, config: recordingConfig });
  const server = await startMediaServer(config, { recorder: recording?.recorder ?? null, logger });
  const audioTap = startAudioTap(node);
  server.events.subscribe(audioTap);
  audioTap.registerMetrics(server.metrics.registry);
  recording?.registerMetrics(server.metrics.registry);
  let stopping = false;
  const stop = (signal: string) => {
    // Rooms stop their recordings as they close; the files are encrypted before the process ends.
    const leave = (stopping ? server.close() : server.drain()).finally(() => Promise.all([recording?.close(), audioTap.close()]));
    server.logger.info({ signal }, stopping ? 'stopping now' : 'draining, then stopping (send the signal again to stop at once)');
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
  process.stderr.write(`media-server failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
