import { ERROR_CODES, type ErrorCode } from '@clinic-hub/protocol';

/**
 * An error of the AI workers with its protocol code (AI_* in
 * protocol/src/errors.ts). `detail` says which file, entry or variable; it
 * never holds transcript text or a name.
 */
export class AiError extends Error {
  override readonly name = 'AiError';
  constructor(
    readonly code: ErrorCode,
    readonly detail?: string,
    options?: { cause?: unknown },
  ) {
    super(detail ? `${code}: ${ERROR_CODES[code]} (${detail})` : `${code}: ${ERROR_CODES[code]}`, options);
  }
}

/** The code of any error: an AiError's own, else INTERNAL. */
export const errorCode = (error: unknown): ErrorCode => (error instanceof AiError ? error.code : 'INTERNAL');
