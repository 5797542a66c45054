/**
 * `@clinic-hub/media-server/recordings`: what other services need of
 * recordings — reading the metadata, decrypting files for export, the
 * configuration — without loading the SFU (no werift here).
 */
export { parseRecordingKey, recordingKeyId, encryptFile, decryptFile, verifyFile, DecryptStream, EncryptStream, type RecordingKey, type RecordingFileIdentity } from './recording/recording-cipher.js';
export { loadRecordingConfig, RECORDING_ENVIRONMENT_VARIABLES, type RecordingConfig } from './recording/recording-config.js';
export { RecordingError } from './recording/recording-error.js';
export { findRecordingFile, openRecordingFile, exportRecordingFile, type ExportSource } from './recording/recording-export.js';
export { recordingDir, sealedPath } from './recording/recording-files.js';
export { getRecording, listRecordings, recordingKeys, replaceRecordingTranscript, RECORDING_ID_PATTERN } from './recording/recording-store.js';
