import { pino, type Logger } from 'pino';
import { currentTrace, traceLogFields } from './tracing/trace-context.js';

export type { Logger };

/**
 * Structured logs. Never pass patient data (names, phone numbers, notes) to a
 * logger: log ticket ids and numbers instead. A line written while a client
 * action, an HTTP request or a job is handled carries its `trace_id` and
 * `span_id` (tracing/trace-context.ts).
 */
export function createLogger(level: string, nodeId: string): Logger {
  return pino({
    level,
    base: { node: nodeId },
    redact: { paths: ['*.patient', '*.token', 'patient', 'token'], remove: true },
    mixin: () => traceLogFields(currentTrace()),
  });
}
