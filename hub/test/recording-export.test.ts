/**
 * Recording exports over HTTP, on both servers (uWebSockets.js and Node
 * HTTP): who may list and download, the decrypted WebM streamed whole and
 * checked, every list and export in the audit stream, integrity failures
 * refused before a byte is sent.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import type { RecordingFile, RecordingList, RecordingMeta } from '@clinic-hub/protocol';
import { parseRecordingKey, recordingDir, sealedPath, loadRecordingConfig } from '@clinic-hub/recordings';
import { readAudit } from '../src/audit/audit-log.js';
import { ClinicRegistry } from '../src/clinics/clinic-registry.js';
import { QueueService } from '../src/queue/index.js';
import { createRecordingRoutes } from '../src/recordings/recording-routes.js';
import { TEST_CLINICS_DIR, startHubProcess, testTokens, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { startTestAuth } from './support/auth.js';
import { makeWebm, seedRecording } from '@clinic-hub/test-kit/recording-fixture';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });
const run = promisify(execFile);

const CLINIC = 'testclinic';
const KEY_TEXT = randomBytes(32).toString('base64');
const key = parseRecordingKey(KEY_TEXT)!;
const PATIENT = 'patient:testclinic:p-7';
const DOCTOR = 'doctor:testclinic:d-3';
const NURSE = 'nurse:testclinic:n-5';

let redisServer: TestRedis;
let redis: Redis;
let dir: string;
let webm: Buffer;
let big: Buffer;
let files: RecordingFile[];
const hubs: Record<'uws' | 'node', HubNodeProcess> = {} as never;

beforeAll(async () => {
  redisServer = await startTestRedis();
  redis = new Redis(redisServer.url);
  // The patient whose token is refused below is in the queue: refused for their role, not for their ticket.
  await new QueueService(redis, ClinicRegistry.fromDirectory(TEST_CLINICS_DIR)).checkin(CLINIC, { dept: 'gp', priority: 'normal' }, 't-1');
  dir = mkdtempSync(join(tmpdir(), 'recording-export-'));
  webm = await makeWebm(join(dir, 'fixture.webm'));
  // Big enough that the servers' back-pressure handling is exercised.
  big = randomBytes(24 * 1024 * 1024);
  const seed = (consult: string, recording: string, seeded: Parameters<typeof seedRecording>[0]['files']) =>
    seedRecording({ redis, dir: join(dir, 'recordings'), key, clinic: CLINIC, consult, recording, files: seeded });
  files = await seed('consult-export-01', 'rec-export-01', [
    { participant: PATIENT, part: 'patient', plain: webm },
    { participant: DOCTOR, part: 'doctor', plain: big },
  ]);
  await seed('consult-export-02', 'rec-damaged-02', [{ participant: PATIENT, part: 'patient', plain: webm }]);
  const damagedPath = sealedPath(recordingDir(join(dir, 'recordings'), CLINIC, 'rec-damaged-02'), (await redis.hkeys(`ch:{${CLINIC}}:recording:rec-damaged-02`)).find((f) => f.startsWith('file:'))!.slice(5));
  const damaged = readFileSync(damagedPath);
  damaged[damaged.length - 20]! ^= 0x01;
  writeFileSync(damagedPath, damaged);
  // Metadata altered in Redis: a name that leaves the recording's folder (pointing at a real file of
  // another recording), one that would break the download header, and a checksum that would.
  const tampered = await seed('consult-export-03', 'rec-tampered-03', [
    { participant: PATIENT, part: 'patient', plain: webm },
    { participant: DOCTOR, part: 'doctor', plain: webm },
    { participant: NURSE, part: 'nurse', plain: webm },
  ]);
  const tamperedKey = `ch:{${CLINIC}}:recording:rec-tampered-03`;
  const rewrites = [
    { ...tampered[0]!, name: `../rec-export-01/${files[0]!.name}` },
    { ...tampered[1]!, name: 'p1.webm"\r\nx-injected: yes\r\nx-other: "' },
    { ...tampered[2]!, plainSha256: `${tampered[2]!.plainSha256}\r\nx-injected: yes` },
  ];
  for (const [index, file] of rewrites.entries()) {
    await redis.hdel(tamperedKey, `file:${tampered[index]!.name}`);
    await redis.hset(tamperedKey, `file:${file.name}`, JSON.stringify(file));
  }

  const env = { RECORDINGS_DIR: join(dir, 'recordings'), RECORDING_KEY: KEY_TEXT };
  [hubs.uws, hubs.node] = await Promise.all([
    startHubProcess({ redisUrl: redisServer.url, nodeId: 'rec-uws', server: 'uws', env }),
    startHubProcess({ redisUrl: redisServer.url, nodeId: 'rec-node', server: 'node', env }),
  ]);
});

afterAll(async () => {
  await Promise.all(Object.values(hubs).map((h) => h?.stop()));
  redis?.disconnect();
  await redisServer?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

const get = (hub: HubNodeProcess, path: string, token?: string) =>
  fetch(`${hub.url}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });

describe.each(['uws', 'node'] as const)('recordings on a %s hub', (kind) => {
  const hub = () => hubs[kind];
  const filePath = (participant: string, recording = 'rec-export-01') => `/api/clinics/${CLINIC}/recordings/${recording}/files/${encodeURIComponent(participant)}`;

  it('refuses patient, display, staff and other-clinic tokens, and no token', async () => {
    const cases: [string | undefined, number, string][] = [
      [undefined, 401, 'AUTH_INVALID'],
      [await tokenFor('patient', CLINIC, { ticket: 't-1', sub: PATIENT }), 403, 'AUTH_FORBIDDEN'],
      [await tokenFor('display'), 403, 'AUTH_FORBIDDEN'],
      [await tokenFor('staff'), 403, 'AUTH_FORBIDDEN'],
      [await tokenFor('doctor', 'otherclinic'), 403, 'AUTH_WRONG_CLINIC'],
    ];
    for (const [token, status, code] of cases) {
      for (const path of [`/api/clinics/${CLINIC}/recordings`, filePath(PATIENT)]) {
        const res = await get(hub(), path, token);
        expect(res.status, `${path} with ${code}`).toBe(status);
        const body = (await res.json()) as { error: { code: string } };
        if (token) expect(body.error.code).toBe(code);
      }
    }
  });

  it('lists recordings for a doctor: ids, roles, times, checksums and consent, no names; audited', async () => {
    const doctor = await tokenFor('doctor', CLINIC, { sub: `doctor:list:${kind}` });
    const res = await get(hub(), `/api/clinics/${CLINIC}/recordings`, doctor);
    expect(res.status).toBe(200);
    const list = (await res.json()) as RecordingList;
    expect(list.recordings.map((r) => r.id).sort()).toEqual(['rec-damaged-02', 'rec-export-01', 'rec-tampered-03']);
    const meta = list.recordings.find((r) => r.id === 'rec-export-01')!;
    expect(meta).toMatchObject({ clinic: CLINIC, consult: 'consult-export-01', status: 'final', stopReason: 'requested' });
    expect(meta.participants).toEqual([
      { id: DOCTOR, part: 'doctor' },
      { id: PATIENT, part: 'patient' },
    ]);
    expect(meta.files.map((f) => f.plainSha256).sort()).toEqual(files.map((f) => f.plainSha256).sort());
    expect(meta.consent).toHaveLength(2);
    // (The tampered recording's altered names are the next test's business.)
    expect(JSON.stringify(list.recordings.filter((r) => r.id !== 'rec-tampered-03'))).not.toMatch(/"name":"(?!p\d)/);
    const audit = await readAudit(redis, CLINIC, 20);
    expect(audit.find((a) => a.actor === `doctor:list:${kind}`)).toMatchObject({ role: 'doctor', action: 'recordings.list', from: '127.0.0.1' });
  });

  it('streams the decrypted WebM to a doctor, whole and checked; ffprobe reads it; the export is audited first', async () => {
    const doctor = await tokenFor('doctor', CLINIC, { sub: `doctor:export:${kind}` });
    const res = await get(hub(), filePath(PATIENT), doctor);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('video/webm');
    expect(res.headers.get('content-disposition')).toMatch(/^attachment; filename="rec-export-01-p0-/);
    const body = Buffer.from(await res.arrayBuffer());
    expect(body.equals(webm)).toBe(true);
    expect(res.headers.get('x-recording-sha256')).toBe(createHash('sha256').update(body).digest('hex'));
    expect(Number(res.headers.get('x-recording-bytes'))).toBe(body.length);
    const out = join(dir, `export-${kind}.webm`);
    writeFileSync(out, body);
    const { stdout } = await run('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name', '-of', 'csv=p=0', out]);
    expect(stdout.trim().split('\n').sort()).toEqual(['opus', 'vp8']);

    const audit = await readAudit(redis, CLINIC, 20);
    expect(audit.find((a) => a.actor === `doctor:export:${kind}`)).toMatchObject({
      role: 'doctor',
      action: 'recording.export',
      subject: `rec-export-01/${files[0]!.name}`,
      from: '127.0.0.1',
    });
  });

  it('streams a 24 MB file intact to an all-clinics admin', async () => {
    const admin = await tokenFor('admin', '*');
    const started = Date.now();
    const res = await get(hub(), filePath(DOCTOR), admin);
    expect(res.status).toBe(200);
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      hash.update(chunk);
      bytes += chunk.length;
    }
    console.log(`${kind}: 24 MB export (verify + decrypt + stream) in ${Date.now() - started} ms`);
    expect(bytes).toBe(big.length);
    expect(hash.digest('hex')).toBe(createHash('sha256').update(big).digest('hex'));
  });

  it('a damaged file is refused with RECORDING_CORRUPT before anything is sent; unknown ids are RECORDING_NOT_FOUND', async () => {
    const doctor = await tokenFor('doctor');
    const damaged = await get(hub(), filePath(PATIENT, 'rec-damaged-02'), doctor);
    expect(damaged.status).toBe(500);
    expect(((await damaged.json()) as { error: { code: string } }).error.code).toBe('RECORDING_CORRUPT');
    for (const path of [filePath(PATIENT, 'rec-nope'), filePath('nobody'), `/api/clinics/${CLINIC}/recordings/rec-nope`]) {
      const res = await get(hub(), path, doctor);
      expect(res.status, path).toBe(404);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('RECORDING_NOT_FOUND');
    }
    const meta = await get(hub(), `/api/clinics/${CLINIC}/recordings/rec-export-01`, doctor);
    expect(((await meta.json()) as RecordingMeta).files).toHaveLength(2);
  });

  it('file entries altered in Redis are RECORDING_METADATA_INVALID: no path outside the recording, no header from them, no audit subject', async () => {
    const doctor = await tokenFor('doctor', CLINIC, { sub: `doctor:tampered:${kind}` });
    for (const participant of [PATIENT, DOCTOR, NURSE]) {
      const res = await get(hub(), filePath(participant, 'rec-tampered-03'), doctor);
      expect(res.status, participant).toBe(500);
      expect(res.headers.get('x-injected')).toBeNull();
      expect(res.headers.get('content-disposition')).toBeNull();
      expect(((await res.json()) as { error: { code: string } }).error.code, participant).toBe('RECORDING_METADATA_INVALID');
    }
    const audit = await readAudit(redis, CLINIC, 50);
    expect(audit.filter((a) => a.actor === `doctor:tampered:${kind}`)).toEqual([]);
  });
});

describe('without RECORDING_KEY', () => {
  it('the routes answer RECORDING_KEY_MISSING', async () => {
    const clinics = ClinicRegistry.fromDirectory(TEST_CLINICS_DIR);
    const auth = await startTestAuth(redisServer.url, clinics);
    onTestFinished(() => auth.close());
    const routes = createRecordingRoutes({
      authenticator: auth.authenticator,
      clinics,
      redis,
      config: loadRecordingConfig({ RECORDINGS_DIR: join(dir, 'recordings') }),
      purges: { request: async () => true },
      logger: pino({ level: 'silent' }),
    });
    const response = await routes({
      method: 'GET',
      path: `/api/clinics/${CLINIC}/recordings`,
      query: new URLSearchParams(),
      headers: { authorization: `Bearer ${await tokenFor('doctor')}` },
      body: Buffer.alloc(0),
      remoteAddress: '127.0.0.1',
    });
    expect(response?.status).toBe(503);
    expect(JSON.parse(String(response?.body)).error.code).toBe('RECORDING_KEY_MISSING');
  });
});
