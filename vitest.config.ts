import { defineConfig } from 'vitest/config';

/**
 * Test files in which Chromium pages send and decode live video (fake cameras
 * into the media-server and back). Two of them at once on two cores starve
 * each other's encoders: frames stop arriving and tests time out (seen in CI:
 * consult-page's tests at 30 s while another consultation file ran). They run
 * one at a time, after the rest of the suite.
 */
const LIVE_VIDEO_FILES = [
  'media-server/test/consult-network.test.ts',
  'media-server/test/consult-page.test.ts',
  'media-server/test/mediasoup-room.test.ts',
  'media-server/test/publisher-bitrate.test.ts',
  'web/test/consult-ai-e2e.test.ts',
  'web/test/consult-no-dead-ends.test.ts',
];

export default defineConfig({
  test: {
    exclude: ['**/node_modules/**', 'var/**'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two cores: tests that start hub processes and browsers must not starve each other.
    maxWorkers: 2,
    reporters: ['default'],
    projects: [
      {
        extends: true,
        test: {
          name: 'suite',
          include: ['**/*.test.ts'],
          exclude: ['**/node_modules/**', 'var/**', ...LIVE_VIDEO_FILES],
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'live-video',
          include: LIVE_VIDEO_FILES,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
