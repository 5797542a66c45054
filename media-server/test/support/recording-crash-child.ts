/**
 * A media-server stand-in that records and then gets killed (SIGKILL) by the
 * recovery test: a loopback call, a recorder, a recording that is never
 * stopped. Prints `recording` once there is something on disk.
 * argv: REDIS_URL DIR KEY_BASE64
 */
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { parseRecordingKey } from '@clinic-hub/recordings';
import { RecordingJobs } from '../../src/recording/recording-jobs.js';
import { WeriftRecorder } from '../../src/recording/room-recorder.js';
import { makeEncodedMedia } from '@clinic-hub/test-kit/recording-media';
import { startLoopbackCall } from './recording-peers.js';

const [redisUrl, dir, keyText] = process.argv.slice(2) as [string, string, string];
const redis = new Redis(redisUrl);
const media = await makeEncodedMedia(dir, { seconds: 6 });
const call = await startLoopbackCall(media, { clinic: 'testclinic', roomId: 'consult-crash-01', participantId: 'patient:testclinic:p-3', part: 'patient' });
call.play();
const recorder = new WeriftRecorder({
  redis,
  config: { dir: join(dir, 'recordings'), key: parseRecordingKey(keyText)!, retentionMs: 86_400_000, segmentMs: 600_000 },
  jobs: new RecordingJobs(redisUrl, pino({ level: 'silent' })),
  nodeId: 'media-crashy',
  logger: pino({ level: 'silent' }),
});
recorder.start({ clinic: 'testclinic', consult: 'consult-crash-01', recordingId: 'rec-crash-0001', tracks: [call.tracks.audio, call.tracks.video!] });
setTimeout(() => process.stdout.write('recording\n'), 3000);
