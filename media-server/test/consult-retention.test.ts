/**
 * Everything a consultation leaves behind goes when its clinic's retention
 * says, with real parts: a hub process (admission, end), a media-server with
 * its recorder, audio tap and recordings worker (on each engine), an AI worker process (real
 * Silero VAD, the suite's fixture CTC and emotion models), and two
 * participants speaking (espeak-ng) into the room while it is recorded.
 *
 * The clinic keeps consultation data and recordings ~60 s and live audio
 * 30 s. While the consultation runs, its audio, AI results and session
 * record are there; when it ends, the audio goes as soon as the AI session
 * has read it all, and the rest carries its expiry; once the recording is
 * purged, a SCAN of Redis finds no key naming the consultation or the
 * recording (job records included), and nothing is left on disk.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { consultKeys, type ServerSignal } from '@clinic-hub/protocol';
import { connectConsult, consultRequest, type ConsultSocket } from '@clinic-hub/test-kit/consult-client';
import { startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { connectQueue, expectOk, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { waitFor } from '@clinic-hub/test-kit/wait';
import { fixtureWorkerEnv, startAiWorkerProcess, writeFixtureModels, type AiWorkerProcess } from '@clinic-hub/test-kit/worker-fixtures';
import { createAudioTap, type AudioTap } from '../src/audio-tap/index.js';
import type { RunningMediaServer } from '../src/media-server.js';
import { parseRecordingKey } from '@clinic-hub/recordings';
import { RecordingJobs, startRecordingWorker, type RecordingWorker } from '../src/recording/recording-jobs.js';
import { listRecordings, recordingKeys } from '@clinic-hub/recordings';
import { WeriftRecorder } from '../src/recording/room-recorder.js';
import { MEDIA_TEST_ENGINES, MEDIA_TEST_SECRET, startTestMediaServer } from '@clinic-hub/test-kit/media-node';
import { joinPeer, type TestPeer } from '@clinic-hub/test-kit/engine-peer';
import { makeEncodedMedia, type EncodedMedia } from '@clinic-hub/test-kit/recording-media';

vi.setConfig({ testTimeout: 240_000, hookTimeout: 120_000 });

const CLINIC = 'retclinic';
/** About 60 s: long enough for the whole-recording transcription to finish first on a busy machine. */
const KEEP_DAYS = 0.0007;
const KEEP_MS = Math.round(KEEP_DAYS * 86_400_000);
const AUDIO_MINUTES = 0.5;
const KEY_TEXT = randomBytes(32).toString('base64');
const key = parseRecordingKey(KEY_TEXT)!;

describe.each(MEDIA_TEST_ENGINES)('retention of a consultation, end to end ($name)', ({ name: engine, env }) => {
  let redisServer: TestRedis;
  let redis: Redis;
  let dir: string;
  let hub: HubNodeProcess;
  let server: RunningMediaServer;
  let tap: AudioTap;
  let jobs: RecordingJobs;
  let recorder: WeriftRecorder;
  let recordingWorker: RecordingWorker;
  let aiWorker: AiWorkerProcess;
  let media: EncodedMedia;
  const sockets: (ConsultSocket | QueueSocket)[] = [];
  const peers: TestPeer[] = [];

  beforeAll(async () => {
    redisServer = await startTestRedis();
    redis = new Redis(redisServer.url);
    dir = mkdtempSync(join(tmpdir(), 'consult-retention-'));
    const clinics = join(dir, 'clinics');
    mkdirSync(clinics);
    writeFileSync(
      join(clinics, `${CLINIC}.json`),
      JSON.stringify({
        id: CLINIC,
        name: { ja: '保持テスト', en: 'Retention test' },
        departments: [{ id: 'online', name: { ja: 'オンライン', en: 'Online' }, prefix: 'W', online: true, rooms: [{ id: 'v1', name: { ja: '1', en: '1' } }] }],
        ai: { enabled: true, language: 'en' },
        retention: { liveAudioMinutes: AUDIO_MINUTES, consultationDays: KEEP_DAYS, recordingDays: KEEP_DAYS },
      }),
    );
    const modelsDir = join(dir, 'models');
    writeFixtureModels(modelsDir);
    const recordings = join(dir, 'recordings');
    media = await makeEncodedMedia(dir, {
      seconds: 8,
      speech: { text: 'Good morning doctor. I have had a headache for three days, and it gets worse at night.' },
    });
    jobs = new RecordingJobs(redisServer.url, pino({ level: 'silent' }));
    // A day unless the consultation says otherwise: the clinic's minute must win.
    recorder = new WeriftRecorder({ redis, config: { dir: recordings, key, retentionMs: 86_400_000, segmentMs: 600_000 }, jobs, nodeId: 'media-ret', logger: pino({ level: 'warn' }) });
    [hub, server] = await Promise.all([
      startHubProcess({ redisUrl: redisServer.url, nodeId: 'hub-ret', env: { CLINICS_DIR: clinics, MEDIA_TOKEN_SECRET: MEDIA_TEST_SECRET } }),
      startTestMediaServer({ env, redisUrl: redisServer.url, nodeId: 'media-ret', recorder }),
    ]);
    tap = createAudioTap(redis, { logger: pino({ level: 'warn' }) });
    server.events.subscribe(tap);
    recordingWorker = startRecordingWorker({ redisTarget: redisServer.url, dir: recordings, key, logger: pino({ level: 'warn' }) });
    aiWorker = startAiWorkerProcess(fixtureWorkerEnv(redisServer.url, modelsDir, { RECORDING_KEY: KEY_TEXT, RECORDINGS_DIR: recordings, AI_WORKER_ID: 'ai-ret' }));
  });

  afterAll(async () => {
    for (const peer of peers) await peer.close().catch(() => undefined);
    for (const socket of sockets) socket.disconnect();
    aiWorker?.child.kill('SIGTERM');
    await aiWorker?.exited;
    await recordingWorker?.close();
    await tap?.close();
    await server?.close();
    await recorder?.stopAll();
    await jobs?.close();
    await hub?.stop();
    redis?.disconnect();
    await redisServer?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Every key whose name holds one of the ids (SCAN, all of Redis). */
  async function keysNaming(...ids: string[]): Promise<string[]> {
    const found: string[] = [];
    for (const id of ids) {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `*${id}*`, 'COUNT', 1000);
        found.push(...keys);
        cursor = next;
      } while (cursor !== '0');
    }
    return [...new Set(found)].sort();
  }

  function filesUnder(path: string): string[] {
    if (!existsSync(path)) return [];
    return readdirSync(path, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
  }

  const recordingState = (peer: TestPeer, state: string, from = 0) => peer.waitFor((m: ServerSignal) => m.type === 'recording' && m.recording.state === state, 20_000, from);

  it('audio goes once drained, the rest expires, and after the purge nothing of the consultation is left in Redis or on disk', async () => {
    const reception = await connectQueue(hub.url, await tokenFor('staff', CLINIC, { sub: 'staff:ret' }));
    const doctorHub = await connectConsult(hub.url, await tokenFor('doctor', CLINIC, { sub: 'doctor:ret' }));
    sockets.push(reception, doctorHub);
    const ticket = expectOk(await request(reception, 'queue:checkin', { dept: 'online', patient: { name: '保持 太郎', phone: '090-0000-1111' } })).event.ticket;
    const admitted = expectOk(await consultRequest(doctorHub, 'consult:admit', { dept: 'online', room: 'v1' }));
    const consult = admitted.consultation.id;
    const keys = consultKeys(CLINIC, consult);
    const patientHub = await connectConsult(hub.url, await tokenFor('patient', CLINIC, { ticket: ticket.id, sub: `patient:${ticket.id}` }));
    sockets.push(patientHub);
    const patientPass = expectOk(await consultRequest(patientHub, 'consult:join', {})).pass;

    const doctor = await joinPeer(engine, admitted.pass.mediaUrl, admitted.pass.token, { media });
    const patient = await joinPeer(engine, patientPass.mediaUrl, patientPass.token, { media });
    peers.push(doctor, patient);
    expect((await doctor.request({ type: 'recording', action: 'start' })).type).toBe('ack');
    expect((await doctor.request({ type: 'consent', granted: true })).type).toBe('ack');
    expect((await patient.request({ type: 'consent', granted: true })).type).toBe('ack');
    await recordingState(doctor, 'recording');

    // While it runs: the tap's audio (no expiry yet beyond the live-audio period), the AI's results.
    await waitFor('audio in the consultation stream', async () => (await redis.xlen(keys.audio)) > 20, 20_000);
    const audioTtl = await redis.pttl(keys.audio);
    expect(audioTtl).toBeGreaterThan(0);
    expect(audioTtl).toBeLessThanOrEqual(AUDIO_MINUTES * 60_000);
    await waitFor('AI results of the consultation', async () => (await redis.xlen(keys.ai)) > 0, 60_000);
    const recording = (await listRecordings(redis, CLINIC))[0]!.id;

    const endedAt = Date.now();
    expectOk(await consultRequest(doctorHub, 'consult:end', { consult }));
    await doctor.waitFor((m) => m.type === 'closed', 15_000);

    // The AI session reads the audio to its end, then deletes it.
    await waitFor('the AI session to finish', async () => (await redis.hget(keys.aiState, 'done')) === '1', 60_000);
    expect(await redis.exists(keys.audio), 'the audio stream, once the AI session has read it all').toBe(0);
    const drainedMs = Date.now() - endedAt;
    for (const k of [keys.meta, keys.record, keys.ai, keys.aiState]) {
      const ttl = await redis.pttl(k);
      expect(ttl, `${k} expires with the consultation's data`).toBeGreaterThan(0);
      expect(ttl, k).toBeLessThanOrEqual(KEEP_MS);
    }

    // The recording: finalised with the clinic's period, transcribed whole, the transcript expiring with it.
    const transcript = recordingKeys(CLINIC, recording).transcript;
    await waitFor('the whole-recording transcript', async () => (await redis.exists(transcript)) === 1, KEEP_MS - 5_000);
    const purgeAt = Number(await redis.hget(recordingKeys(CLINIC, recording).meta, 'purgeAt'));
    const stoppedAt = Number(await redis.hget(recordingKeys(CLINIC, recording).meta, 'stoppedAt'));
    expect(purgeAt - stoppedAt).toBe(KEEP_MS);
    expect(await redis.pttl(transcript)).toBeGreaterThan(0);
    expect(filesUnder(join(dir, 'recordings', CLINIC)).length).toBeGreaterThan(0);
    const before = await keysNaming(consult, recording);
    console.log(`${engine}: ended; audio deleted ${drainedMs} ms after the end; keys naming the consultation or recording before the purge: ${before.length}`);

    // After the purge (and the consultation's own expiry): nothing.
    const left = await waitFor(
      'nothing of the consultation left in Redis',
      async () => {
        const found = await keysNaming(consult, recording);
        return found.length === 0 ? found : false;
      },
      KEEP_MS + 45_000,
    ).catch(async () => keysNaming(consult, recording));
    console.log(`${engine}: purged ${Date.now() - endedAt} ms after the end (retention ${KEEP_MS} ms)`);
    expect(left, 'keys naming the consultation or its recording after the purge').toEqual([]);
    expect(filesUnder(join(dir, 'recordings')), 'files left on disk').toEqual([]);
    expect(await redis.zscore(`ch:{${CLINIC}}:recordings`, recording)).toBeNull();
    expect(await redis.exists(`ch:{${CLINIC}}:consults:ticket:${ticket.id}`)).toBe(0);
  });
});
