import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { consultKeys, type RecordingMeta, type ServerSignal } from '@clinic-hub/protocol';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { waitFor } from '@clinic-hub/test-kit/wait';
import { createAudioTap, type AudioTap } from '../src/audio-tap/audio-tap.js';
import type { RunningMediaServer } from '../src/media-server.js';
import { parseRecordingKey } from '@clinic-hub/recordings';
import { exportRecordingFile } from '@clinic-hub/recordings';
import { RecordingJobs } from '../src/recording/recording-jobs.js';
import { getRecording, listRecordings } from '@clinic-hub/recordings';
import { WeriftRecorder } from '../src/recording/room-recorder.js';
import { MEDIA_TEST_ENGINES, roomToken, startTestMediaServer } from '@clinic-hub/test-kit/media-node';
import { joinPeer, type TestPeer } from '@clinic-hub/test-kit/engine-peer';
import { makeEncodedMedia, type EncodedMedia } from '@clinic-hub/test-kit/recording-media';

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });
const run = promisify(execFile);

/**
 * The recorder and the audio tap plugged into the real SFU the way main.ts
 * plugs them in (MediaServerOptions.recorder, events.subscribe), on each
 * engine (mediasoup's tracks reach them through its DirectTransport
 * consumers): two Node peers publish VP8 + Opus through signalling, consent,
 * and the doctor asks to record; the room's decisions reach the recorder.
 */
const CLINIC = 'testclinic';
const CONSULT = 'consult-sfu-rec-01';
const DOCTOR = 'doctor:testclinic:d-1';
const PATIENT = 'patient:testclinic:p-1';

const key = parseRecordingKey(randomBytes(32).toString('base64'))!;

describe.each(MEDIA_TEST_ENGINES)('recording through the SFU ($name)', ({ name: engine, env }) => {
  let redisServer: TestRedis;
  let redis: Redis;
  let dir: string;
  let media: EncodedMedia;
  let server: RunningMediaServer;
  let jobs: RecordingJobs;
  let tap: AudioTap;
  let recorder: WeriftRecorder;
  const peers: TestPeer[] = [];

  beforeAll(async () => {
    redisServer = await startTestRedis();
    redis = new Redis(redisServer.url);
    dir = mkdtempSync(join(tmpdir(), 'recording-sfu-'));
    media = await makeEncodedMedia(dir, { seconds: 8 });
    jobs = new RecordingJobs(redisServer.url, pino({ level: 'warn' }));
    recorder = new WeriftRecorder({
      redis,
      config: { dir: join(dir, 'recordings'), key, retentionMs: 86_400_000, segmentMs: 600_000 },
      jobs,
      nodeId: 'media-test',
      logger: pino({ level: process.env.RECORDING_TEST_LOG_LEVEL ?? 'warn' }),
    });
    server = await startTestMediaServer({ env, redisUrl: redisServer.url, recorder });
    tap = createAudioTap(redis, { logger: pino({ level: 'warn' }) });
    server.events.subscribe(tap);
  });

  afterAll(async () => {
    for (const peer of peers) await peer.close().catch(() => undefined);
    await tap?.close();
    await server?.close();
    await recorder?.stopAll();
    await jobs?.close();
    redis?.disconnect();
    await redisServer?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  const recordingState = (peer: TestPeer, state: string, from = 0) =>
    peer.waitFor((m: ServerSignal) => m.type === 'recording' && m.recording.state === state, 15_000, from);

  let meta: RecordingMeta;

  it('records both participants once both consent, and the consents are in the metadata', async () => {
    const doctor = await joinPeer(engine, server.url, roomToken({ sub: DOCTOR, part: 'doctor', consult: CONSULT }), { media });
    peers.push(doctor);
    const patient = await joinPeer(engine, server.url, roomToken({ sub: PATIENT, part: 'patient', consult: CONSULT }), { media });
    peers.push(patient);
    // Both publishing: each receives the other's camera and microphone.
    const receiving = (peer: TestPeer, from: string) => peer.packetsFrom(from, 'audio') > 0 && peer.packetsFrom(from, 'video') > 0;
    await doctor.until(() => receiving(doctor, PATIENT), 20_000, 'the doctor to receive the patient');
    await patient.until(() => receiving(patient, DOCTOR), 20_000, 'the patient to receive the doctor');

    expect((await doctor.request({ type: 'recording', action: 'start' })).type).toBe('ack');
    await recordingState(doctor, 'waiting-consent');
    expect((await listRecordings(redis, CLINIC)).length, 'nothing recorded without every consent').toBe(0);
    expect((await doctor.request({ type: 'consent', granted: true })).type).toBe('ack');
    expect((await patient.request({ type: 'consent', granted: true })).type).toBe('ack');
    await recordingState(doctor, 'recording');
    const started = Date.now();

    await new Promise((resolve) => setTimeout(resolve, 5_000));
    const from = patient.messages.length;
    expect((await patient.request({ type: 'consent', granted: false })).type).toBe('ack');
    await recordingState(patient, 'waiting-consent', from);
    const recordedMs = Date.now() - started;

    meta = await waitFor('the recording to stop', async () => {
      const [latest] = await listRecordings(redis, CLINIC);
      return latest && latest.status !== 'recording' ? latest : false;
    }, 15_000);
    expect(meta.stopReason).toBe('consent-withdrawn');
    expect(meta.participants.map((p) => p.id).sort()).toEqual([DOCTOR, PATIENT]);
    expect(meta.files.map((f) => [f.participant, f.kind, f.codecs.sort().join('+')]).sort()).toEqual([
      [DOCTOR, 'av', 'audio/opus+video/VP8'],
      [PATIENT, 'av', 'audio/opus+video/VP8'],
    ]);
    const consent = meta.consent.map((c) => `${c.type} ${c.fields.participant}`);
    expect(consent).toEqual([`consent-granted ${DOCTOR}`, `consent-granted ${PATIENT}`, `consent-withdrawn ${PATIENT}`]);

    for (const file of meta.files) {
      const out = join(dir, `${file.part}.webm`);
      await exportRecordingFile({ dir: join(dir, 'recordings'), key }, meta, file, out);
      const { stdout } = await run('ffprobe', ['-v', 'error', '-show_entries', 'format=duration:stream=codec_name', '-of', 'json', out]);
      const probe = JSON.parse(stdout) as { streams: { codec_name: string }[]; format: { duration: string } };
      // The segment's own span on the server (from the recorder's start to its stop); the clients see both ends later, by their signalling's delay.
      const segmentMs = file.stoppedAt - file.startedAt;
      console.log(`${engine}, ${file.part}: ${probe.streams.map((s) => s.codec_name).join('+')} ${probe.format.duration} s (segment open ${(segmentMs / 1000).toFixed(2)} s on the server; recording seen by the clients for ${(recordedMs / 1000).toFixed(2)} s)`);
      expect(probe.streams.map((s) => s.codec_name).sort()).toEqual(['opus', 'vp8']);
      expect(Math.abs(Number(probe.format.duration) - segmentMs / 1000)).toBeLessThanOrEqual(1);
    }
    const record = (await redis.xrange(consultKeys(CLINIC, CONSULT).record, '-', '+')).map(([, f]) => f[1]);
    expect(record.filter((t) => t?.startsWith('recording-'))).toEqual(['recording-started', 'recording-stopped']);
    expect((await getRecording(redis, CLINIC, meta.id))?.status).toBe('stopped');
  });

  it('the audio tap follows both microphones from the engine events', async () => {
    const entries = await redis.xrange(consultKeys(CLINIC, CONSULT).audio, '-', '+');
    const speakers = new Set(entries.map(([, f]) => `${f[f.indexOf('p') + 1]}/${f[f.indexOf('r') + 1]}`));
    console.log(`${engine}, audio tap: ${entries.length} entries from ${[...speakers].join(', ')}`);
    expect([...speakers].sort()).toEqual([`${DOCTOR}/doctor`, `${PATIENT}/patient`]);
    await peers[1]!.leave();
    await waitFor('the patient’s end entry', async () => {
      const all = await redis.xrange(consultKeys(CLINIC, CONSULT).audio, '-', '+');
      return all.some(([, f]) => f.includes('end') && f.includes(PATIENT));
    }, 10_000);
  });
});
