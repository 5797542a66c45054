export { WeriftRecorder, type WeriftRecorderDeps } from './room-recorder.js';
export { RecordingJobs, startRecordingWorker, type RecordingWorker, type RecordingWorkerOptions } from './recording-jobs.js';
export { loadRecordingConfig, RECORDING_ENVIRONMENT_VARIABLES, type RecordingConfig } from '@clinic-hub/recordings';
export { RecordingError } from '@clinic-hub/recordings';
export { startRecording, type RecordingServices } from './start-recording.js';
