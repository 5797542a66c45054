/**
 * `@clinic-hub/recordings`: consultation recordings at rest — their metadata
 * in Redis, the cipher (a key per file, AES-256-GCM), the configuration, the
 * files on disk and their export. The media-server writes them, the hub
 * exports them, the AI workers transcribe them; none of that loads the SFU.
 */
export * from './recording-cipher.js';
export * from './recording-config.js';
export * from './recording-error.js';
export * from './recording-export.js';
export * from './recording-files.js';
export * from './recording-store.js';
