import { createReadStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { RecordingFile, RecordingMeta } from '@clinic-hub/protocol';
import { DecryptStream, decryptFile, verifyFile, type RecordingKey, type SealedFileFacts } from './recording-cipher.js';
import { RecordingError } from './recording-error.js';
import { checkFileEntry, recordingDir, sealedPath } from './recording-files.js';

/**
 * Decrypting a recording's files for export (the hub's download route, the
 * AI workers' whole-recording transcription, an operator's script). Every
 * path is checked against the metadata first: a file is read only after it
 * has been found in its recording's metadata, and it must still match the
 * checksum recorded there.
 */

/** Picks a participant's file: `kind` (default: camera + microphone, else the screen share) and `segment` (default 0). */
export function findRecordingFile(
  meta: RecordingMeta,
  participant: string,
  choice: { kind?: 'av' | 'screen'; segment?: number } = {},
): RecordingFile {
  const files = meta.files.filter((f) => f.participant === participant);
  if (files.length === 0) throw new RecordingError('RECORDING_NOT_FOUND', 'no file of this participant in this recording');
  const kind = choice.kind ?? (files.some((f) => f.kind === 'av') ? 'av' : 'screen');
  const file = files.find((f) => f.kind === kind && f.segment === (choice.segment ?? 0));
  if (!file) throw new RecordingError('RECORDING_NOT_FOUND', `no ${kind} segment ${choice.segment ?? 0} for this participant`);
  return checkFileEntry(file);
}

export interface ExportSource {
  dir: string;
  key: RecordingKey;
}

function locate(source: ExportSource, meta: RecordingMeta, file: RecordingFile) {
  checkFileEntry(file);
  if (file.keyId !== source.key.id) throw new RecordingError('RECORDING_CORRUPT', `encrypted with another key (key id ${file.keyId}; RECORDING_KEY has ${source.key.id})`);
  return {
    path: sealedPath(recordingDir(source.dir, meta.clinic, meta.id), file.name),
    identity: { clinic: meta.clinic, recording: meta.id, name: file.name },
  };
}

function checkFacts(file: RecordingFile, facts: SealedFileFacts): void {
  if (facts.sha256 !== file.sha256 || facts.plainSha256 !== file.plainSha256) {
    throw new RecordingError('RECORDING_CORRUPT', 'the file does not match the checksum in its metadata');
  }
}

/**
 * Authenticates the whole file (and its checksums) and then opens it as a
 * stream of WebM. Reading twice costs a second pass of AES-GCM (well over
 * 500 MB/s here), and means a download never starts on a file that would
 * fail half-way; chunks stay authenticated as they are streamed.
 */
export async function openRecordingFile(source: ExportSource, meta: RecordingMeta, file: RecordingFile): Promise<{ stream: Readable; bytes: number }> {
  const { path, identity } = locate(source, meta, file);
  await stat(path).catch(() => {
    throw new RecordingError('RECORDING_NOT_FOUND', 'the file is missing from RECORDINGS_DIR');
  });
  checkFacts(file, await verifyFile(path, source.key, identity));
  const decrypt = new DecryptStream(source.key, identity);
  const input = createReadStream(path);
  input.on('error', (error) => decrypt.destroy(error));
  return { stream: input.pipe(decrypt), bytes: file.plainBytes };
}

/** Decrypts one file to `outPath` (removed again if the file fails its check). */
export async function exportRecordingFile(source: ExportSource, meta: RecordingMeta, file: RecordingFile, outPath: string): Promise<SealedFileFacts> {
  const { path, identity } = locate(source, meta, file);
  const facts = await decryptFile(path, outPath, source.key, identity);
  try {
    checkFacts(file, facts);
  } catch (error) {
    await rm(outPath, { force: true });
    throw error;
  }
  return facts;
}
