/** The AI workers' public surface: what the CLI, the benchmark and other services use. */
export { loadAiConfig, AI_ENVIRONMENT_VARIABLES, type AiWorkerConfig } from './config.js';
export { AiError } from './errors.js';
export { startAiWorker, type RunningAiWorker } from './jobs/ai-worker.js';
export { recordingTranscriptKey, transcribeRecording, EncryptedRecordingSource, type RecordingAudioSource, type RecordingTrack } from './jobs/recording-transcription.js';
export { requestAiSessionStop, segmenterOptions } from './session/ai-session.js';
export { parseAudioEntry, type AudioEntry } from './session/audio-entry.js';
export { CtcModel } from './engines/ctc-model.js';
export { AiMetrics } from './metrics.js';
export { readManifest, DEFAULT_MANIFEST, type Manifest, type ManifestModel } from './models/model-manifest.js';
export { pullModel, listModels, type PullProgress, type PullResult, type ModelListing, type ModelStatus } from './models/model-pull.js';
export { loadEngines, type Engines } from './engines/load-engines.js';
export { WorkerHeartbeat } from './ops/worker-registry.js';
