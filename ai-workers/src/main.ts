import { loadRecordingConfig } from '@clinic-hub/recordings';
import { connectRedisClient } from '@clinic-hub/platform/redis';
import { onStopSignals } from '@clinic-hub/platform/process';
import { ConfigError, loadAiConfig } from './config.js';
import { loadEngines } from './engines/load-engines.js';
import { AiError } from './errors.js';
import { startAiWorker } from './jobs/ai-worker.js';
import { EncryptedRecordingSource } from './jobs/recording-transcription.js';
import { createLogger } from './logger.js';
import { startStatusServer } from './ops/status-server.js';

/**
 * The AI worker process (`npm run ai:worker`): configuration from the
 * environment (docs/ai-workers.md), models from AI_MODELS_DIR only, /metrics
 * and health on AI_METRICS_PORT. SIGTERM or SIGINT: finish the audio chunk in
 * hand, save each session's position, hand the sessions back to the queue,
 * exit 0. A second signal exits at once.
 */
async function main(): Promise<void> {
  let config;
  let recording;
  try {
    config = loadAiConfig();
    recording = loadRecordingConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(78);
    }
    throw error;
  }
  const logger = createLogger(config.logLevel, config.workerId);
  let engines;
  try {
    engines = await loadEngines(config);
  } catch (error) {
    if (error instanceof AiError) {
      process.stderr.write(`AI worker cannot start: ${error.message}\n`);
      process.exit(78);
    }
    throw error;
  }
  let recordings;
  if (recording.key) recordings = new EncryptedRecordingSource(connectRedisClient(config.redis, `ai-recordings:${config.workerId}`), { dir: recording.dir, key: recording.key });
  else logger.warn('RECORDING_KEY is not set: this worker takes no ai-recordings jobs (whole-recording transcription)');
  const worker = await startAiWorker(config, { logger, engines, recordings });
  const status = config.metrics ? await startStatusServer({ ...config.metrics, registry: worker.metrics.registry, status: worker.status }) : null;
  if (status) logger.info({ port: status.port }, 'AI worker metrics and health on /metrics, /healthz, /readyz');
  onStopSignals(
    {
      message: 'stopping: finishing the chunk in hand and saving each session',
      run: () =>
        worker
          .close()
          .then(() => engines.close())
          .then(() => status?.close())
          .catch((error: unknown) => {
            logger.error({ err: String(error) }, 'stopping failed');
            throw error;
          }),
    },
    { logger, again: 'exit' },
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`AI worker failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
