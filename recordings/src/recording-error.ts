import { ERROR_CODES, type ErrorCode } from '@clinic-hub/protocol';

/** A recording failure with its protocol code (RECORDING_CORRUPT, RECORDING_NOT_FOUND, …); `detail` never holds patient data. */
export class RecordingError extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly detail?: string,
  ) {
    super(detail ? `${ERROR_CODES[code]} (${detail})` : ERROR_CODES[code]);
    this.name = 'RecordingError';
  }
}
