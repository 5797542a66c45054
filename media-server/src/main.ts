import { setTimeout as sleep } from 'node:timers/promises';
import { onStopSignals } from '@clinic-hub/platform/process';
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
  const node = { redisTarget: config.redis, nodeId: config.nodeId, logger };
  const recording = await startRecording({ ...node, config: recordingConfig });
  const server = await startMediaServer(config, { recorder: recording?.recorder ?? null, logger });
  const audioTap = startAudioTap(node);
  server.events.subscribe(audioTap);
  audioTap.registerMetrics(server.metrics.registry);
  recording?.registerMetrics(server.metrics.registry);
  // Rooms stop their recordings as they close; the files are encrypted before the process ends.
  // The recorder's and the audio tap's queues close through Redis: when Redis is gone too (a terminal's
  // Ctrl-C stops `npm start`'s private redis-server with everything else), they get 3 s, not a wait for it.
  const thenRelease = (leave: Promise<void>) => leave.finally(() => Promise.race([Promise.all([recording?.close(), audioTap.close()]), sleep(3000)]));
  onStopSignals(
    { message: 'draining, then stopping (send the signal again to stop at once)', run: () => thenRelease(server.drain()) },
    { logger: server.logger, again: { message: 'stopping now', run: () => thenRelease(server.close()) } },
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`media-server failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
