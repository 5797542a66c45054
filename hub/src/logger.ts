import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Structured logs. Never pass patient data (names, phone numbers, notes) to a
 * logger: log ticket ids and numbers instead.
 */
export function createLogger(level: string, nodeId: string): Logger {
  return pino({ level, base: { node: nodeId }, redact: { paths: ['*.patient', '*.token', 'patient', 'token'], remove: true } });
}
