import { pino, type Logger } from 'pino';
import { currentTrace, traceLogFields } from '../tracing/trace-context.js';

export type { Logger };

export interface LoggerOptions {
  /** Fields on every line besides `node` (e.g. `service`). */
  base?: Record<string, string>;
  /** Paths removed from every line: what this service must never log (patient data, tokens, names, transcript text). */
  redact: readonly string[];
}

/**
 * Structured logs, one way for every service. Never pass patient data
 * (names, phone numbers, notes, transcript text) to a logger: log ids
 * instead; `redact` is the net under that rule, not the rule. A line written
 * while a client action, an HTTP request or a job is handled carries its
 * `trace_id` and `span_id` (tracing/trace-context.ts).
 */
export function createLogger(level: string, nodeId: string, options: LoggerOptions): Logger {
  return pino({
    level,
    base: { ...options.base, node: nodeId },
    redact: { paths: [...options.redact], remove: true },
    mixin: () => traceLogFields(currentTrace()),
  });
}
