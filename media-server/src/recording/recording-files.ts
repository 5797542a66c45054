import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { RecordingError } from './recording-error.js';
import { CLINIC_ID_PATTERN, RECORDING_ID_PATTERN } from './recording-store.js';

/**
 * Where a recording's files live: `RECORDINGS_DIR/<clinic>/<recording>/`,
 * each `<participant>-<kind>-<segment>.webm.enc` (`.webm` while the segment
 * is open, before it is encrypted). The participant part is the id made safe
 * for a file name plus 8 hex digits of its hash, so two ids never share a name.
 */

export function recordingDir(root: string, clinic: string, recording: string): string {
  if (!CLINIC_ID_PATTERN.test(clinic) || !RECORDING_ID_PATTERN.test(recording)) {
    throw new RecordingError('RECORDING_NOT_FOUND', 'clinic and recording ids are 1–64 letters, digits, _ or -');
  }
  return join(root, clinic, recording);
}

export function segmentName(participant: string, kind: 'av' | 'screen', segment: number): string {
  const safe = participant.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 48);
  const hash = createHash('sha256').update(participant).digest('hex').slice(0, 8);
  return `${safe}-${hash}-${kind}-${String(segment).padStart(3, '0')}.webm`;
}

/** A file's logical name (`….webm`) is what its encryption is bound to; on disk it carries `.enc`. */
export const sealedPath = (dir: string, name: string) => join(dir, `${name}.enc`);
export const plainPath = (dir: string, name: string) => join(dir, name);

/** Names as stored in metadata: nothing that could leave the recording's folder. */
export const FILE_NAME_PATTERN = /^[A-Za-z0-9_-]{1,80}\.webm$/;
