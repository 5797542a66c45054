import { resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError, describeEnvIssues, secretFileVariable, withSecretFiles } from '@clinic-hub/platform/config';
import { parseRecordingKey, type RecordingKey } from './recording-cipher.js';

/**
 * Recording and its retention, from environment variables (read by the
 * media-server, which records, and by the hub, which exports):
 *
 * - RECORDINGS_DIR: where encrypted files live; storage every media-server
 *   node and the hub share (default var/recordings).
 * - RECORDING_KEY (or RECORDING_KEY_FILE): AES-256-GCM key, 32 bytes in
 *   base64 (`openssl rand -base64 32`). Unset: nothing is recorded and
 *   exports answer RECORDING_KEY_MISSING.
 * - RECORDING_RETENTION_DAYS: days after a recording stops before its files
 *   and metadata are purged, for a recording whose consultation names no
 *   retention (a room joined without a hub admission; decimals allowed;
 *   default 30). Consultations admitted by a hub carry their clinic's
 *   `retention.recordingDays` in their meta hash, which wins.
 * - RECORDING_SEGMENT_SECONDS: longest segment (default 600); a segment is
 *   encrypted as it is written, so none is ever on disk in the clear.
 */
const Env = z.object({
  RECORDINGS_DIR: z.string().min(1).default('var/recordings'),
  RECORDING_KEY: z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined || value.trim() === '') return null;
      const key = parseRecordingKey(value);
      if (!key) {
        ctx.addIssue({ code: 'custom', message: 'must be 32 bytes in base64 (44 characters; make one with `openssl rand -base64 32`)' });
        return z.NEVER;
      }
      return key;
    }),
  RECORDING_RETENTION_DAYS: z.coerce.number().positive('must be a positive number of days').max(36_500).default(30),
  RECORDING_SEGMENT_SECONDS: z.coerce.number().int().min(10).max(4 * 3600).default(600),
});

export interface RecordingConfig {
  dir: string;
  /** null: recording is off (RECORDING_KEY unset). */
  key: RecordingKey | null;
  /** For recordings whose consultation names no retention (its meta hash's retainRecordingMs wins). */
  retentionMs: number;
  segmentMs: number;
}

const SECRET_VARIABLES = ['RECORDING_KEY'] as const;

export const RECORDING_ENVIRONMENT_VARIABLES: readonly string[] = [...Object.keys(Env.shape), ...SECRET_VARIABLES.map(secretFileVariable)];

export function loadRecordingConfig(processEnv: NodeJS.ProcessEnv = process.env): RecordingConfig {
  const env = withSecretFiles(processEnv, SECRET_VARIABLES, 'recording configuration');
  const parsed = Env.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(`Invalid recording configuration:\n${describeEnvIssues(parsed.error.issues, env, SECRET_VARIABLES).join('\n')}`);
  }
  const e = parsed.data;
  return {
    dir: resolve(e.RECORDINGS_DIR),
    key: e.RECORDING_KEY,
    retentionMs: Math.round(e.RECORDING_RETENTION_DAYS * 86_400_000),
    segmentMs: e.RECORDING_SEGMENT_SECONDS * 1000,
  };
}
