import { createLogger, type Logger } from '@clinic-hub/platform/logging';

/** The hub's and the notification worker's logs: never a patient's details, never a token. */
export function createHubLogger(level: string, nodeId: string): Logger {
  return createLogger(level, nodeId, { redact: ['*.patient', '*.token', 'patient', 'token'] });
}
