/** The AI workers' public surface: what the CLI, the benchmark and other services use. */
export { loadAiConfig, AI_ENVIRONMENT_VARIABLES, type AiWorkerConfig } from './config.js';
export { AiError } from './errors.js';
export { startAiWorker, type RunningAiWorker } from './jobs/ai-worker.js';
export { recordingTranscriptKey, transcribeRecording, EncryptedRecordingSource, type RecordingAudioSource, type RecordingTrack } from './jobs/recording-transcription.js';
export { requestAiSessionStop } from './session/ai-session.js';
export { readManifest, DEFAULT_MANIFEST, type Manifest, type ManifestModel } from './models/model-manifest.js';
export { pullModel, listModels, type PullProgress, type PullResult, type ModelListing, type ModelStatus } from './models/model-pull.js';
