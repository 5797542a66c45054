import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { JOB_QUEUE_PREFIX, JOB_QUEUES, consultKeys, type AiRecordingJob, type RecordingMeta } from '@clinic-hub/protocol';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { waitFor } from '@clinic-hub/test-kit/wait';
import { parseRecordingKey } from '@clinic-hub/recordings';
import { exportRecordingFile, findRecordingFile } from '@clinic-hub/recordings';
import { recordingDir, sealedPath } from '@clinic-hub/recordings';
import { RecordingJobs, startRecordingWorker, type RecordingWorker } from '../src/recording/recording-jobs.js';
import { getRecording } from '@clinic-hub/recordings';
import { WeriftRecorder } from '../src/recording/room-recorder.js';
import { makeEncodedMedia, type EncodedMedia } from '@clinic-hub/test-kit/recording-media';
import { MEDIA_TEST_ENGINES } from '@clinic-hub/test-kit/media-node';
import { callSource, type CallSource, type LoopbackCall } from './support/recording-peers.js';

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });
const run = promisify(execFile);

/**
 * Recording end to end with real parts, on each engine: a Node publisher
 * sends VP8 + Opus (made by ffmpeg) — on mediasoup into a real media-server,
 * whose DirectTransport consumers carry the tracks the recorder records; on
 * werift to a werift receiver whose tracks it records. Files are encrypted
 * on disk, metadata in a private Redis, the finalise and purge jobs run on
 * BullMQ, ffprobe reads what comes out.
 */
const CLINIC = 'testclinic';
const CONSULT = 'consult-rec-0001';
const RETENTION_MS = 10_000;

const key = parseRecordingKey(randomBytes(32).toString('base64'))!;
const logger = pino({ level: 'warn' });

describe.each(MEDIA_TEST_ENGINES)('recording ($name)', ({ name: engine }) => {
  let redisServer: TestRedis;
  let redis: Redis;
  let dir: string;
  let media: EncodedMedia;
  let calls: CallSource;
  let call: LoopbackCall;
  let jobs: RecordingJobs;
  let recorder: WeriftRecorder;
  let worker: RecordingWorker | null = null;

  async function ffprobe(path: string) {
    const { stdout } = await run('ffprobe', ['-v', 'error', '-show_entries', 'format=duration:stream=codec_type,codec_name,width,height', '-of', 'json', path]);
    return JSON.parse(stdout) as { streams: { codec_type: string; codec_name: string; width?: number; height?: number }[]; format: { duration: string } };
  }

  /**
   * What a look at the recordings directory finds in the clear: files that are
   * not `.enc`, and any file holding WebM's magic, its codec ids, or a run of
   * the VP8 or Opus frames being recorded (known plaintext).
   */
  function plaintextOnDisk(): string[] {
    const root = join(dir, 'recordings');
    if (!existsSync(root)) return [];
    const needles: [string, Buffer][] = [
      ['EBML magic', Buffer.from([0x1a, 0x45, 0xdf, 0xa3])],
      ['V_VP8', Buffer.from('V_VP8')],
      ['A_OPUS', Buffer.from('A_OPUS')],
      ['OpusHead', Buffer.from('OpusHead')],
      ...media.video.slice(0, 40).filter((f) => f.data.length >= 64).map((f, i): [string, Buffer] => [`video frame ${i}`, f.data.subarray(16, 48)]),
      ...media.audio.slice(0, 200).filter((f) => f.data.length >= 40).map((f, i): [string, Buffer] => [`audio frame ${i}`, f.data.subarray(8, 32)]),
    ];
    const found: string[] = [];
    for (const entry of readdirSync(root, { recursive: true, withFileTypes: true })) {
      if (!entry.isFile()) continue;
      const path = join(entry.parentPath, entry.name);
      if (!entry.name.endsWith('.enc')) found.push(`${entry.name}: not an encrypted file`);
      let bytes: Buffer;
      try {
        bytes = readFileSync(path);
      } catch {
        continue;
      }
      for (const [what, needle] of needles) if (bytes.includes(needle)) found.push(`${entry.name}: ${what}`);
    }
    return found;
  }

  async function recordFor(recordingId: string, ms: number, tracks: ('audio' | 'video')[]): Promise<{ meta: RecordingMeta; stopMs: number; looks: number; plaintext: string[] }> {
    const published = tracks.map((kind) => (kind === 'audio' ? call.tracks.audio : call.tracks.video!));
    const recording = recorder.start({ clinic: CLINIC, consult: CONSULT, recordingId, tracks: published });
    // The directory is looked at all through the recording and its closing.
    let looks = 0;
    const plaintext = new Set<string>();
    const scanner = setInterval(() => {
      looks++;
      for (const finding of plaintextOnDisk()) plaintext.add(finding);
    }, 150);
    await new Promise((resolve) => setTimeout(resolve, ms));
    const stopping = Date.now();
    await recording.stop('requested');
    const stopMs = Date.now() - stopping;
    clearInterval(scanner);
    for (const finding of plaintextOnDisk()) plaintext.add(finding);
    return { meta: (await getRecording(redis, CLINIC, recordingId))!, stopMs, looks, plaintext: [...plaintext] };
  }

  beforeAll(async () => {
    redisServer = await startTestRedis();
    redis = new Redis(redisServer.url);
    dir = mkdtempSync(join(tmpdir(), 'recording-flow-'));
    media = await makeEncodedMedia(dir, { seconds: 12 });
    calls = callSource(engine);
    call = await calls.start(media, { clinic: CLINIC, roomId: CONSULT, participantId: 'patient:testclinic:p-1', part: 'patient' });
    call.play();
    jobs = new RecordingJobs(redisServer.url, logger);
    recorder = new WeriftRecorder({
      redis,
      config: { dir: join(dir, 'recordings'), key, retentionMs: RETENTION_MS, segmentMs: 600_000 },
      jobs,
      nodeId: 'media-test',
      logger,
    });
    // The room writes consent into the session record before it starts a recording.
    await redis.hset(consultKeys(CLINIC, CONSULT).meta, 'language', 'en');
    await redis.xadd(consultKeys(CLINIC, CONSULT).record, '*', 'type', 'consent-granted', 'at', String(Date.now()), 'participant', 'patient:testclinic:p-1');
    await redis.xadd(consultKeys(CLINIC, CONSULT).record, '*', 'type', 'consent-granted', 'at', String(Date.now()), 'participant', 'doctor:testclinic:d-1');
  });

  afterAll(async () => {
    await call?.close();
    await calls?.close();
    await worker?.close();
    await jobs?.close();
    redis?.disconnect();
    await redisServer?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  let meta: RecordingMeta;

  it('records ~10 s of VP8 + Opus into one encrypted file with metadata and checksums in Redis', async () => {
    const plisBefore = call.pliCount();
    const result = await recordFor('rec-main-0001', 10_000, ['audio', 'video']);
    meta = result.meta;
    console.log(`recording stop (close, seal the head, read back and check, metadata): ${result.stopMs} ms`);
    console.log(`recordings directory looked at ${result.looks} times while recording: ${result.plaintext.length} plaintext findings`);
    expect(result.looks).toBeGreaterThan(30);
    expect(result.plaintext, 'plaintext on disk during the recording').toEqual([]);
    expect(call.pliCount(), 'a keyframe is asked for when recording starts').toBeGreaterThan(plisBefore);
    expect(meta).toMatchObject({
      id: 'rec-main-0001',
      clinic: CLINIC,
      consult: CONSULT,
      status: 'stopped',
      node: 'media-test',
      stopReason: 'requested',
      participants: [{ id: 'patient:testclinic:p-1', part: 'patient' }],
    });
    expect(meta.stoppedAt! - meta.startedAt).toBeGreaterThanOrEqual(10_000);
    expect(meta.purgeAt).toBe(meta.stoppedAt! + RETENTION_MS);
    expect(meta.consent.map((c) => [c.type, c.fields.participant])).toEqual([
      ['consent-granted', 'patient:testclinic:p-1'],
      ['consent-granted', 'doctor:testclinic:d-1'],
    ]);
    expect(meta.files).toHaveLength(1);
    const [file] = meta.files;
    expect(file).toMatchObject({ participant: 'patient:testclinic:p-1', part: 'patient', kind: 'av', segment: 0, keyId: key.id });
    expect(file!.codecs.sort()).toEqual(['audio/opus', 'video/VP8']);
    expect(file!.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(file!.plainSha256).toMatch(/^[0-9a-f]{64}$/);
    console.log(`encrypted file: ${file!.bytes} bytes (WebM ${file!.plainBytes})`);

    const folder = recordingDir(join(dir, 'recordings'), CLINIC, meta.id);
    expect(readdirSync(folder), 'only the encrypted file is left on disk').toEqual([`${file!.name}.enc`]);
    const records = await redis.xrange(consultKeys(CLINIC, CONSULT).record, '-', '+');
    const types = records.map(([, fields]) => fields[1]);
    expect(types).toEqual(['consent-granted', 'consent-granted', 'recording-started', 'recording-stopped']);
  });

  it('the stored file is not readable without the key; a wrong key gives RECORDING_CORRUPT', async () => {
    const stored = sealedPath(recordingDir(join(dir, 'recordings'), CLINIC, meta.id), meta.files[0]!.name);
    await expect(ffprobe(stored)).rejects.toThrow();
    const wrongKey = parseRecordingKey(randomBytes(32).toString('base64'))!;
    await expect(
      exportRecordingFile({ dir: join(dir, 'recordings'), key: wrongKey }, meta, { ...meta.files[0]!, keyId: wrongKey.id }, join(dir, 'wrong.webm')),
    ).rejects.toMatchObject({ code: 'RECORDING_CORRUPT' });
    expect(existsSync(join(dir, 'wrong.webm'))).toBe(false);
  });

  it('decrypted, ffprobe reads VP8 and Opus of the recorded duration (±1 s)', async () => {
    const out = join(dir, 'export.webm');
    const file = findRecordingFile(meta, 'patient:testclinic:p-1');
    const facts = await exportRecordingFile({ dir: join(dir, 'recordings'), key }, meta, file, out);
    expect(facts.plainSha256).toBe(file.plainSha256);
    const probe = await ffprobe(out);
    const recordedSeconds = (meta.stoppedAt! - meta.startedAt) / 1000;
    console.log(`ffprobe: ${probe.streams.map((s) => `${s.codec_type}=${s.codec_name}${s.width ? ` ${s.width}x${s.height}` : ''}`).join(', ')}; duration ${probe.format.duration} s for ${recordedSeconds.toFixed(2)} s recorded`);
    expect(probe.streams.map((s) => s.codec_name).sort()).toEqual(['opus', 'vp8']);
    // The picture size comes from the first keyframe, not werift's 640x360 default.
    expect(probe.streams.find((s) => s.codec_type === 'video')).toMatchObject({ width: 320, height: 240 });
    expect(Math.abs(Number(probe.format.duration) - recordedSeconds)).toBeLessThanOrEqual(1);
  });

  it('a short audio-only recording, then damaged on disk (the finalise job below marks it corrupt)', async () => {
    const { meta: damaged } = await recordFor('rec-damaged-0002', 2_000, ['audio']);
    expect(damaged.files).toHaveLength(1);
    const path = sealedPath(recordingDir(join(dir, 'recordings'), CLINIC, damaged.id), damaged.files[0]!.name);
    const bytes = readFileSync(path);
    bytes[bytes.length - 1]! ^= 0xff;
    writeFileSync(path, bytes);
  });

  it('the finalise job verifies checksums, marks it final, notes it in the record and queues the AI job; the purge deletes it after the retention period', async () => {
    worker = startRecordingWorker({ redisTarget: redisServer.url, dir: join(dir, 'recordings'), key, logger: pino({ level: 'silent' }) });
    const final = await waitFor('the recording to be final', async () => {
      const current = await getRecording(redis, CLINIC, meta.id);
      return current?.status === 'final' ? current : false;
    }, 15_000);
    expect(final.finalisedAt).toBeGreaterThanOrEqual(meta.stoppedAt!);
    const damaged = await waitFor('the damaged recording to be marked corrupt', async () => {
      const current = await getRecording(redis, CLINIC, 'rec-damaged-0002');
      return current?.status === 'corrupt' ? current : false;
    }, 15_000);
    expect(damaged.finalisedAt).toBeNull();

    const aiQueue = new Queue<AiRecordingJob>(JOB_QUEUES.aiRecordings, { connection: { url: redisServer.url }, prefix: JOB_QUEUE_PREFIX });
    const aiJobs = await aiQueue.getJobs(['waiting', 'delayed', 'active', 'completed']);
    await aiQueue.close();
    // Stopped by nothing traced (a direct stop), the recording's jobs carry the trace its stop started.
    expect(aiJobs.map((j) => j.data)).toEqual([{ clinic: CLINIC, consult: CONSULT, recording: meta.id, language: 'en', traceparent: expect.stringMatching(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/) }]);

    const types = async () => (await redis.xrange(consultKeys(CLINIC, CONSULT).record, '-', '+')).map(([, f]) => `${f[1]}:${f[f.indexOf('recording') + 1]}`);
    expect(await types()).toContain(`recording-finalised:${meta.id}`);
    expect(await types()).not.toContain('recording-finalised:rec-damaged-0002');

    const folder = recordingDir(join(dir, 'recordings'), CLINIC, meta.id);
    expect(existsSync(folder)).toBe(true);
    const purgedAfter = Date.now();
    await waitFor('the retention purge', async () => (await getRecording(redis, CLINIC, meta.id)) === null, RETENTION_MS + 15_000);
    console.log(`purged ${Date.now() - meta.stoppedAt!} ms after stop (retention ${RETENTION_MS} ms); waited ${Date.now() - purgedAfter} ms`);
    expect(Date.now()).toBeGreaterThanOrEqual(meta.stoppedAt! + RETENTION_MS);
    expect(existsSync(folder)).toBe(false);
    expect(await redis.zrange(`ch:{${CLINIC}}:recordings`, 0, -1)).not.toContain(meta.id);
    expect(await types()).toContain(`recording-purged:${meta.id}`);
  });
});
