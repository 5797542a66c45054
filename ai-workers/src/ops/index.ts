/** `@clinic-hub/ai-workers/ops`: what `clinic workers` reads (no onnxruntime here). */
export { readWorkers, type AiWorkerInfo } from './worker-registry.js';
export { readQueueDepths, QUEUE_STATES, WATCHED_QUEUES, type QueueDepth, type QueueState } from './queue-depths.js';
