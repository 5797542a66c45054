import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { RecordingFile } from '@clinic-hub/protocol';
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

/** Names as stored in metadata: nothing that could leave the recording's folder. */
export const FILE_NAME_PATTERN = /^[A-Za-z0-9_-]{1,80}\.webm$/;

/**
 * A file's logical name (`….webm`) is what its encryption is bound to; on
 * disk it carries `.enc`. Names come from metadata in Redis, which is not
 * trusted to be what a media-server wrote: one that could leave the
 * recording's folder is RECORDING_METADATA_INVALID, never a path.
 */
export function sealedPath(dir: string, name: string): string {
  if (!FILE_NAME_PATTERN.test(name)) throw new RecordingError('RECORDING_METADATA_INVALID', 'a file name that is not <letters, digits, _ or ->.webm');
  return join(dir, `${name}.enc`);
}

export const plainPath = (dir: string, name: string) => join(dir, name);

const HEX_64 = /^[0-9a-f]{64}$/;
const HEX_16 = /^[0-9a-f]{16}$/;

/**
 * Checks a file entry read from Redis before any of it becomes a path or an
 * HTTP header (the export's file name, size and checksum headers):
 * RECORDING_METADATA_INVALID unless it has the form the recorder writes.
 */
export function checkFileEntry(file: RecordingFile): RecordingFile {
  const sizes = [file.bytes, file.plainBytes].every((n) => Number.isSafeInteger(n) && n >= 0);
  if (typeof file.name !== 'string' || !FILE_NAME_PATTERN.test(file.name)) {
    throw new RecordingError('RECORDING_METADATA_INVALID', 'a file name that is not <letters, digits, _ or ->.webm');
  }
  if (!HEX_64.test(String(file.sha256)) || !HEX_64.test(String(file.plainSha256)) || !HEX_16.test(String(file.keyId)) || !sizes) {
    throw new RecordingError('RECORDING_METADATA_INVALID', `file ${file.name}: checksums, key id or sizes of the wrong form`);
  }
  return file;
}
