import { onStopSignals } from '@clinic-hub/platform/process';
import type { Logger } from 'pino';
import { ConfigError, loadMediaConfig, type MediaConfig } from './config.js';
import { createMediaLogger, startMediaServer } from './media-server.js';
import { startAudioTap } from './audio-tap/index.js';
import { loadRecordingConfig, startRecording, type RecordingConfig } from './recording/index.js';

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
  // Stop signals are answered from the first moment: the node's /healthz answers while it is still registering in
  // Redis, and a SIGTERM then (a deploy, a test that stops it at once) used to kill it with the signal's default
  // action. Now it drains once started, as any other time.
  const started = startNode(config, recordingConfig, logger);
  onStopSignals(
    { message: 'draining, then stopping (send the signal again to stop at once)', run: () => started.then((node) => node.release(node.server.drain())) },
    { logger, again: { message: 'stopping now', run: () => started.then((node) => node.release(node.server.close())) } },
  );
  await started;
}

async function startNode(config: MediaConfig, recordingConfig: RecordingConfig, logger: Logger) {
  const node = { redisTarget: config.redis, nodeId: config.nodeId, logger };
  const recording = await startRecording({ ...node, config: recordingConfig, redisAck: config.redisAck });
  const server = await startMediaServer(config, { recorder: recording?.recorder ?? null, logger });
  const audioTap = startAudioTap(node);
  server.events.subscribe(audioTap);
  audioTap.registerMetrics(server.metrics.registry);
  recording?.registerMetrics(server.metrics.registry);
  // Rooms stop their recordings as they close; the files are encrypted before the process ends.
  // The recorder's and the audio tap's closes do not wait for an unreachable Redis (platform/src/redis/close.ts).
  const release = (leave: Promise<void>) => leave.finally(() => Promise.all([recording?.close(), audioTap.close()]));
  return { server, release };
}

main().catch((error: unknown) => {
  process.stderr.write(`media-server failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
