/** `@clinic-hub/ai-workers/models`: the models manifest, pulling and listing (no onnxruntime here). */
export { readManifest, isPinned, DEFAULT_MANIFEST, type Manifest, type ManifestModel } from './model-manifest.js';
export { pullModel, listModels, type PullOptions, type PullProgress, type PullResult, type ModelListing, type ModelStatus } from './model-pull.js';
export { openModelFolder, PULL_RECORD_FILE, type PullRecord } from './model-folder.js';
export { AiError } from '../errors.js';
