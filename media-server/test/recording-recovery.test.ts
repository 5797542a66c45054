import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { JOB_QUEUE_PREFIX, JOB_QUEUES, consultKeys } from '@clinic-hub/protocol';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { parseRecordingKey, verifyFile } from '@clinic-hub/recordings';
import { exportRecordingFile } from '@clinic-hub/recordings';
import { recordingDir } from '@clinic-hub/recordings';
import { RecordingJobs } from '../src/recording/recording-jobs.js';
import { getRecording, openOnNode } from '@clinic-hub/recordings';
import { WeriftRecorder } from '../src/recording/room-recorder.js';

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });
const run = promisify(execFile);

/**
 * A node killed while recording leaves an unfinished encrypted segment on
 * disk (its head still the provisional one, its last chunk never written),
 * and no plaintext. When it starts again, recovery seals what the file holds
 * into a complete file, marks the recording stopped (`interrupted`) and
 * queues its finalise job.
 */
const KEY_TEXT = randomBytes(32).toString('base64');
const key = parseRecordingKey(KEY_TEXT)!;

let redisServer: TestRedis;
let redis: Redis;
let dir: string;

beforeAll(async () => {
  redisServer = await startTestRedis();
  redis = new Redis(redisServer.url);
  dir = mkdtempSync(join(tmpdir(), 'recording-recovery-'));
});

afterAll(async () => {
  redis?.disconnect();
  await redisServer?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

describe('recording recovery', () => {
  it('seals again what a killed node left, with nothing in the clear, and finalises it as interrupted', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', resolve(import.meta.dirname, 'support/recording-crash-child.ts'), redisServer.url, dir, KEY_TEXT], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    await new Promise<void>((resolvePromise, reject) => {
      const timer = setTimeout(() => reject(new Error(`the recording child did not start: ${output}`)), 40_000);
      child.stdout.on('data', (c: Buffer) => {
        if (c.toString().includes('recording')) {
          clearTimeout(timer);
          resolvePromise();
        }
      });
      child.once('exit', (code) => reject(new Error(`the recording child exited (${code}): ${output}`)));
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));

    const folder = recordingDir(join(dir, 'recordings'), 'testclinic', 'rec-crash-0001');
    const left = readdirSync(folder);
    expect(left.filter((n) => !n.endsWith('.enc')), 'plaintext left by the crash').toEqual([]);
    expect(left.filter((n) => n.endsWith('.webm.enc'))).toHaveLength(1);
    const unfinished = readFileSync(join(folder, left[0]!));
    expect(unfinished.includes(Buffer.from([0x1a, 0x45, 0xdf, 0xa3])), 'WebM magic on disk').toBe(false);
    const identity = { clinic: 'testclinic', recording: 'rec-crash-0001', name: left[0]!.slice(0, -'.enc'.length) };
    await expect(verifyFile(join(folder, left[0]!), key, identity)).rejects.toMatchObject({ code: 'RECORDING_CORRUPT', detail: expect.stringMatching(/never closed/) });
    expect(await openOnNode(redis, 'media-crashy')).toEqual([{ clinic: 'testclinic', recording: 'rec-crash-0001' }]);

    const jobs = new RecordingJobs(redisServer.url, pino({ level: 'silent' }));
    const recorder = new WeriftRecorder({
      redis,
      config: { dir: join(dir, 'recordings'), key, retentionMs: 86_400_000, segmentMs: 600_000 },
      jobs,
      nodeId: 'media-crashy',
      logger: pino({ level: 'silent' }),
    });
    expect(await recorder.recoverInterrupted()).toBe(1);
    await jobs.close();

    expect(readdirSync(folder)).toEqual(left);
    expect(await openOnNode(redis, 'media-crashy')).toEqual([]);
    const meta = (await getRecording(redis, 'testclinic', 'rec-crash-0001'))!;
    expect(meta).toMatchObject({ status: 'stopped', stopReason: 'interrupted' });
    expect(meta.files).toHaveLength(1);
    const out = join(dir, 'recovered.webm');
    await exportRecordingFile({ dir: join(dir, 'recordings'), key }, meta, meta.files[0]!, out);
    const { stdout } = await run('ffprobe', ['-v', 'error', '-show_entries', 'format=duration:stream=codec_name', '-of', 'json', out]);
    const probe = JSON.parse(stdout) as { streams: { codec_name: string }[]; format: { duration: string } };
    console.log(`recovered after SIGKILL: ${probe.streams.map((s) => s.codec_name).join('+')}, ${probe.format.duration} s`);
    expect(probe.streams.map((s) => s.codec_name).sort()).toEqual(['opus', 'vp8']);
    expect(Number(probe.format.duration)).toBeGreaterThan(1.5);

    const record = (await redis.xrange(consultKeys('testclinic', 'consult-crash-01').record, '-', '+')).map(([, f]) => `${f[1]}:${f[f.indexOf('reason') + 1] ?? ''}`);
    expect(record).toContain('recording-stopped:interrupted');
    const queue = new Queue(JOB_QUEUES.recordings, { connection: { url: redisServer.url }, prefix: JOB_QUEUE_PREFIX });
    expect((await queue.getJobs(['waiting'])).map((j) => j.id)).toEqual(['finalise.testclinic.rec-crash-0001']);
    await queue.close();
  });
});
