export { startMediaServer, createMediaLogger, type RunningMediaServer, type MediaServerOptions } from './media-server.js';
export { loadMediaConfig, ConfigError, MEDIA_ENVIRONMENT_VARIABLES, type MediaConfig } from './config.js';
export { MediaEvents } from './media-events.js';
export type * from './engine/engine-types.js';
export { startRecording, loadRecordingConfig, WeriftRecorder, type RecordingServices } from './recording/index.js';
export { createAudioTap, startAudioTap, type AudioTap } from './audio-tap/index.js';
