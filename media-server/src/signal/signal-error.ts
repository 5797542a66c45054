import type { ErrorCode } from '@clinic-hub/protocol';

/** A refusal the client is told about as `{type:'error', code}`; the connection and the room go on. */
export class SignalError extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly detail?: string,
  ) {
    super(detail ? `${code}: ${detail}` : code);
  }
}
