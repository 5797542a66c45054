import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { RecordingList } from '@clinic-hub/protocol';
import { parseRecordingKey } from '@clinic-hub/recordings';
import { ClinicRegistry, QueueService, readAudit } from '@clinic-hub/hub';
import { TEST_CLINICS_DIR, startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { makeWebm, seedRecording } from '@clinic-hub/test-kit/recording-fixture';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { cleanEnv, runCli } from '@clinic-hub/test-kit/run-cli';

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

/** `clinic recordings` against a real hub and Redis, with a recording stored as the media-server stores one. */
const KEY_TEXT = randomBytes(32).toString('base64');
const PATIENT = 'patient:testclinic:p-9';

let redisServer: TestRedis;
let redis: Redis;
let hub: HubNodeProcess;
let dir: string;
let webm: Buffer;
let doctor: string;

const as = (token: string) => cleanEnv({ CLINIC_URL: hub.url, CLINIC_TOKEN: token });

beforeAll(async () => {
  redisServer = await startTestRedis();
  redis = new Redis(redisServer.url);
  // The patient refused below is in the queue: refused for their role, not for their ticket.
  await new QueueService(redis, ClinicRegistry.fromDirectory(TEST_CLINICS_DIR)).checkin('testclinic', { dept: 'gp', priority: 'normal' }, 't-9');
  dir = mkdtempSync(join(tmpdir(), 'cli-recordings-'));
  webm = await makeWebm(join(dir, 'fixture.webm'), 2);
  await seedRecording({
    redis,
    dir: join(dir, 'recordings'),
    key: parseRecordingKey(KEY_TEXT)!,
    clinic: 'testclinic',
    consult: 'consult-cli-0001',
    recording: 'rec-cli-0001',
    files: [
      { participant: PATIENT, part: 'patient', plain: webm },
      { participant: 'doctor:testclinic:d-1', part: 'doctor', plain: webm },
    ],
  });
  hub = await startHubProcess({ redisUrl: redisServer.url, nodeId: 'cli-recordings', env: { RECORDINGS_DIR: join(dir, 'recordings'), RECORDING_KEY: KEY_TEXT } });
  doctor = await tokenFor('doctor', 'testclinic', { sub: 'doctor:cli:d-2' });
});

afterAll(async () => {
  await hub?.stop();
  redis?.disconnect();
  await redisServer?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

describe('clinic recordings', () => {
  it('--json lists the recording with roles, files and checksums', async () => {
    const run = await runCli(['recordings', '--json'], { env: as(doctor) });
    expect(run.code, run.stderr).toBe(0);
    const list = run.json<RecordingList>();
    expect(list.clinic).toBe('testclinic');
    expect(list.recordings).toHaveLength(1);
    expect(list.recordings[0]).toMatchObject({ id: 'rec-cli-0001', consult: 'consult-cli-0001', status: 'final' });
    expect(list.recordings[0]!.participants.map((p) => p.part).sort()).toEqual(['doctor', 'patient']);
    expect(list.recordings[0]!.files.every((f) => /^[0-9a-f]{64}$/.test(f.plainSha256))).toBe(true);
  });

  it('prints a table for people, without colour when stdout is not a terminal', async () => {
    const run = await runCli(['recordings'], { env: as(doctor) });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^testclinic: 1 recording$/m);
    expect(run.stdout).toMatch(/rec-cli-0001\s+consult-cli-0001\s+final\s+\S+ ago\s+3s\s+patient, doctor|rec-cli-0001\s+consult-cli-0001\s+final\s+\S+ ago\s+3s\s+doctor, patient/);
    expect(run.stdout).not.toContain('\u001B[');
  });

  it('export writes the decrypted WebM, checked, and the hub audits it', async () => {
    const out = join(dir, 'visit.webm');
    const run = await runCli(['recordings', 'export', 'rec-cli-0001', '--participant', PATIENT, '--out', out, '--json'], { env: as(doctor) });
    expect(run.code, run.stderr).toBe(0);
    expect(run.json()).toMatchObject({ recording: 'rec-cli-0001', participant: PATIENT, out, bytes: webm.length });
    expect(readFileSync(out).equals(webm)).toBe(true);
    expect(existsSync(`${out}.part`)).toBe(false);
    const audit = await readAudit(redis, 'testclinic', 10);
    expect(audit.find((a) => a.action === 'recording.export')).toMatchObject({ actor: 'doctor:cli:d-2', role: 'doctor' });

    const again = await runCli(['recordings', 'export', 'rec-cli-0001', '--participant', PATIENT, '--out', out, '--json'], { env: as(doctor) });
    expect(again.code).toBe(2);
    expect(again.error().hint).toMatch(/--force/);
  });

  it('exit codes: a patient token is refused (3), an unknown recording is not found (4)', async () => {
    const patient = await runCli(['recordings', '--json'], { env: as(await tokenFor('patient', 'testclinic', { ticket: 't-9', sub: PATIENT })) });
    expect(patient.code).toBe(3);
    expect(patient.error().code).toBe('AUTH_FORBIDDEN');
    const missing = await runCli(['recordings', 'export', 'rec-nope-0001', '--participant', PATIENT, '--out', join(dir, 'x.webm'), '--json'], { env: as(doctor) });
    expect(missing.code).toBe(4);
    expect(missing.error().code).toBe('RECORDING_NOT_FOUND');
    expect(existsSync(join(dir, 'x.webm'))).toBe(false);
  });
});
