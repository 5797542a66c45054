import { createLogger as createServiceLogger, type Logger } from '@clinic-hub/platform/logging';

export type { Logger };

/**
 * Structured logs with the worker, job, consultation, participant and
 * utterance ids. Never transcript text, labels of a person or names: the
 * results go to Redis, not to the log.
 */
export function createLogger(level: string, workerId: string): Logger {
  return createServiceLogger(level, workerId, { base: { service: 'ai-worker' }, redact: ['text', '*.text', 'name', '*.name', 'token', '*.token'] });
}
