import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Structured logs with the worker, job, consultation, participant and
 * utterance ids. Never transcript text, labels of a person or names: the
 * results go to Redis, not to the log.
 */
export function createLogger(level: string, workerId: string): Logger {
  return pino({ level, base: { service: 'ai-worker', node: workerId }, redact: { paths: ['text', '*.text', 'name', '*.name', 'token', '*.token'], remove: true } });
}
