import { ERROR_CODES, isErrorCode, type ErrorCode } from '@clinic-hub/protocol';

/**
 * Exit codes of `clinic`. Scripts branch on these, so they only ever grow.
 * 64–78 follow sysexits(3) where one fits.
 */
export const EXIT = {
  OK: 0,
  FAILURE: 1,
  USAGE: 2,
  AUTH: 3,
  NOT_FOUND: 4,
  CONFLICT: 5,
  UNAVAILABLE: 69,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** Codes the CLI adds to the hub's own (protocol/src/errors.ts): things only a client can see. */
export const CLI_ERROR_CODES = {
  NOT_CONFIGURED: 'No hub to talk to: no --url/--token, no CLINIC_URL/CLINIC_TOKEN, no saved profile and no local stack.',
  PROFILE_NOT_FOUND: 'No saved profile with this name.',
  CLINIC_REQUIRED: 'This token acts for every clinic ("*"); say which one.',
  HUB_UNREACHABLE: 'Cannot reach the hub.',
  HUB_NO_ANSWER: 'The hub did not answer in time, even after a retry.',
  TICKET_AMBIGUOUS: 'More than one active ticket has this number.',
  NOT_A_TERMINAL: 'This view needs an interactive terminal.',
  USAGE: 'Invalid command line.',
  BENCH_NOT_FOUND: 'The benchmark harness is not beside this CLI.',
  BENCH_FAILED: 'The benchmark ran, but deliveries or connections failed.',
  BENCH_ERROR: 'The benchmark could not run.',
} as const;
export type CliErrorCode = keyof typeof CLI_ERROR_CODES;

const EXIT_BY_CODE: Partial<Record<ErrorCode | CliErrorCode, ExitCode>> = {
  AUTH_REQUIRED: EXIT.AUTH,
  AUTH_INVALID: EXIT.AUTH,
  AUTH_EXPIRED: EXIT.AUTH,
  AUTH_FORBIDDEN: EXIT.AUTH,
  AUTH_WRONG_CLINIC: EXIT.AUTH,
  AUTH_REVOKED: EXIT.AUTH,
  AUTH_SESSION_EXPIRED: EXIT.AUTH,
  NOT_CONFIGURED: EXIT.AUTH,
  CLINIC_NOT_FOUND: EXIT.NOT_FOUND,
  QUEUE_DEPT_NOT_FOUND: EXIT.NOT_FOUND,
  QUEUE_ROOM_NOT_FOUND: EXIT.NOT_FOUND,
  QUEUE_TICKET_NOT_FOUND: EXIT.NOT_FOUND,
  NOT_FOUND: EXIT.NOT_FOUND,
  PROFILE_NOT_FOUND: EXIT.NOT_FOUND,
  NOTIFY_DEAD_LETTER_NOT_FOUND: EXIT.NOT_FOUND,
  RECORDING_NOT_FOUND: EXIT.NOT_FOUND,
  RECORDING_KEY_MISSING: EXIT.UNAVAILABLE,
  QUEUE_ROOM_BUSY: EXIT.CONFLICT,
  SETTINGS_VERSION_CONFLICT: EXIT.CONFLICT,
  SETTINGS_DEPT_HAS_TICKETS: EXIT.CONFLICT,
  SETTINGS_ROOM_HAS_TICKETS: EXIT.CONFLICT,
  QUEUE_EMPTY: EXIT.CONFLICT,
  QUEUE_DEPT_ONLINE: EXIT.CONFLICT,
  QUEUE_INVALID_TRANSITION: EXIT.CONFLICT,
  TICKET_AMBIGUOUS: EXIT.CONFLICT,
  STORE_UNAVAILABLE: EXIT.UNAVAILABLE,
  HUB_DRAINING: EXIT.UNAVAILABLE,
  RATE_LIMITED: EXIT.UNAVAILABLE,
  HUB_UNREACHABLE: EXIT.UNAVAILABLE,
  HUB_NO_ANSWER: EXIT.UNAVAILABLE,
  INVALID_PAYLOAD: EXIT.USAGE,
  PAYLOAD_TOO_LARGE: EXIT.USAGE,
  PAYLOAD_TOO_DEEP: EXIT.USAGE,
  CLINIC_REQUIRED: EXIT.USAGE,
  NOT_A_TERMINAL: EXIT.USAGE,
  USAGE: EXIT.USAGE,
  AI_MODEL_UNKNOWN: EXIT.NOT_FOUND,
  AI_MODEL_UNPINNED: EXIT.CONFLICT,
  AI_MODEL_DOWNLOAD_FAILED: EXIT.UNAVAILABLE,
  BENCH_NOT_FOUND: EXIT.NOT_FOUND,
};

/** What to do next, for the codes where the CLI can say more than the hub's message. */
const NEXT_STEP: Partial<Record<ErrorCode | CliErrorCode, string>> = {
  NOT_CONFIGURED: 'run `clinic login --url URL --token TOKEN`, or start the stack on this machine with `npm start`',
  AUTH_REQUIRED: 'run `clinic login --url URL --token TOKEN`',
  AUTH_INVALID: 'get a new token from an admin (`clinic token issue`) and run `clinic login --url URL --token TOKEN`',
  AUTH_EXPIRED: 'get a new token and run `clinic login` again (on the stack machine: restart `npm start`)',
  AUTH_FORBIDDEN: 'use a token with a role that may do this (admin or staff; doctors may call, recall, start, skip, finish and cancel)',
  AUTH_WRONG_CLINIC: "use the clinic's own token, or an admin token with --clinic",
  AUTH_REVOKED: 'an admin revoked this token (`clinic token revocations` shows why): ask for a new one and run `clinic login` again',
  AUTH_SESSION_EXPIRED: 'the session reached its maximum age: get a new token and run `clinic login` again',
  CLINIC_REQUIRED: 'pass --clinic ID, set CLINIC_ID, or save one with `clinic login --clinic ID`',
  CLINIC_NOT_FOUND: 'check the id: `clinic status` lists the clinics this token can see',
  QUEUE_DEPT_NOT_FOUND: '`clinic queue` lists the departments',
  QUEUE_ROOM_NOT_FOUND: "`clinic queue --dept D` lists the department's rooms",
  QUEUE_TICKET_NOT_FOUND: '`clinic queue` lists the active tickets; finished, cancelled and no-show tickets are gone',
  QUEUE_ROOM_BUSY: 'start, skip, recall or finish the patient called to that room first, or call to another room',
  QUEUE_INVALID_TRANSITION: 'check the ticket’s status with `clinic queue`',
  QUEUE_DEPT_ONLINE: 'an online department’s patients are admitted to video: `clinic call-next --dept DEPT --room ROOM` does it, and so does the staff console',
  SETTINGS_VERSION_CONFLICT: 'someone saved the settings meanwhile: run the command again (it reads the current version), or `clinic settings diff FILE` first',
  SETTINGS_DEPT_HAS_TICKETS: 'finish, cancel or mark no-show the tickets named (`clinic queue --dept DEPT`), then save again',
  SETTINGS_ROOM_HAS_TICKETS: 'finish or skip the tickets named (`clinic queue`), or close the room instead (`clinic settings set departments.DEPT.rooms.ROOM.open false`), then save again',
  PROFILE_NOT_FOUND: '`clinic profiles` lists the saved profiles',
  NOTIFY_DEAD_LETTER_NOT_FOUND: '`clinic notify` lists the dead letters; one already retried, or older than NOTIFY_DEAD_LETTER_DAYS, is gone',
  STORE_UNAVAILABLE: 'the hub cannot reach Redis; it reconnects by itself — retry in a moment, and check `clinic status`',
  RATE_LIMITED: 'wait a moment and retry',
  HUB_DRAINING: 'that hub node is shutting down; run the command again (it reaches another node)',
  HUB_NO_ANSWER: 'the action may or may not have been applied: check with `clinic queue` before retrying',
  TICKET_AMBIGUOUS: 'use the ticket id shown by `clinic queue --json`',
  RECORDING_NOT_FOUND: '`clinic recordings` lists the recordings kept; `clinic recordings show ID` lists a recording’s participants and files',
  RECORDING_KEY_MISSING: 'set RECORDING_KEY (the media-server’s key) and RECORDINGS_DIR on the hub',
  RECORDING_CORRUPT: 'the file failed its integrity check: nothing was written; tell an admin (the hub logged it)',
  RECORDING_METADATA_INVALID: 'the recording’s metadata in Redis was altered: nothing was read or written; tell an admin (the hub logged it)',
  NOT_A_TERMINAL: 'run it in a terminal, or use --json for scripts',
  AI_MODEL_UNKNOWN: '`clinic models list` shows the models of the manifest',
  AI_MODEL_UNPINNED: 'pin it in the manifest first: docs/ai-workers.md, "Pinning a model"',
  AI_MODEL_CHECKSUM_MISMATCH: 'the hub served other bytes than the manifest pins: check the revision in the manifest and your hub mirror; nothing was installed',
  AI_MODEL_DOWNLOAD_FAILED: 'check AI_MODELS_HUB_URL (or --hub-url), the network, and HF_TOKEN for gated repositories, then pull again',
  BENCH_NOT_FOUND: 'run `clinic bench` from a clone of the Clinic Hub repository (`npx clinic bench` in it), where load-tests/harness/ is',
  BENCH_FAILED: 'read "errors" in the report; rerun with fewer clients (`-- --clients N`) to see whether it is load or a fault',
  BENCH_ERROR: 'the output above says why; `clinic bench SCENARIO -- --help` lists its options',
};

/** An error with a code, as the hub reports them: printed as code, message and what to do next. */
export class CliError extends Error {
  readonly code: ErrorCode | CliErrorCode;
  readonly detail: string | undefined;
  readonly hint: string | undefined;
  readonly exitCode: ExitCode;

  constructor(code: ErrorCode | CliErrorCode, options: { message?: string; detail?: string; hint?: string } = {}) {
    const known = isErrorCode(code) ? ERROR_CODES[code] : CLI_ERROR_CODES[code as CliErrorCode];
    super(options.message ?? known ?? code);
    this.code = code;
    this.detail = options.detail;
    this.hint = options.hint ?? NEXT_STEP[code];
    this.exitCode = EXIT_BY_CODE[code] ?? EXIT.FAILURE;
  }

  toJSON(): { code: string; message: string; detail?: string; hint?: string } {
    return {
      code: this.code,
      message: this.message,
      ...(this.detail === undefined ? {} : { detail: this.detail }),
      ...(this.hint === undefined ? {} : { hint: this.hint }),
    };
  }
}

/** An error object from the hub (ack or HTTP body) as a CliError; unknown codes keep their text. */
export function hubError(error: { code?: unknown; message?: unknown; detail?: unknown }): CliError {
  const code = isErrorCode(error.code) ? error.code : 'INTERNAL';
  return new CliError(code, {
    ...(typeof error.message === 'string' ? { message: error.message } : {}),
    ...(typeof error.detail === 'string' ? { detail: error.detail } : {}),
  });
}

export const EXIT_CODES_HELP = `Exit codes:
  0   ok
  1   failure (unexpected error)
  2   usage: bad arguments or options, or a payload the hub refused
  3   auth: not logged in, bad, expired or forbidden token, wrong clinic
  4   not found: clinic, department, room, ticket, profile or dead letter
  5   conflict: QUEUE_EMPTY, QUEUE_ROOM_BUSY, QUEUE_INVALID_TRANSITION, QUEUE_DEPT_ONLINE
  69  unavailable: hub unreachable or not answering, Redis down (STORE_UNAVAILABLE)`;
