/**
 * Imports that still break the floors while issue #15 moves them: each line
 * `file specifier`. It only shrinks (scripts/floors.test.ts fails on a line
 * that no longer breaks anything); nothing new may be added.
 */
export const KNOWN_BREACHES: readonly string[] = [
  'ai-workers/src/jobs/recording-transcription.ts @clinic-hub/media-server/recordings',
  'ai-workers/src/main.ts @clinic-hub/media-server/recordings',
  'ai-workers/test/recording-job.test.ts ../../media-server/src/recording/recording-store.js',
  'ai-workers/test/recording-job.test.ts ../../media-server/src/recording/recording-files.js',
  'cli/test/recordings.test.ts ../../hub/test/support/recording-fixture.js',
  'hub/src/config.ts @clinic-hub/media-server/recordings',
  'hub/src/recordings/recording-routes.ts @clinic-hub/media-server/recordings',
  'hub/test/support/recording-fixture.ts ../../../media-server/src/recording/recording-store.js',
  'load-tests/harness/sfu-peer-worker.ts ../../media-server/test/support/node-peer.js',
  'load-tests/harness/sfu-peer-worker.ts ../../media-server/test/support/recording-media.js',
];
