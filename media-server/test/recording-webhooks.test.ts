/**
 * recording.ready and recording.purged reach the clinic's webhooks from the
 * recordings worker (media-server), through the hub's dispatcher, against a
 * local receiver that is slow on every first attempt (each event is retried
 * once, with the same id) and checks every signature with the function
 * docs/webhooks.md gives. A purge on request (POST …/recordings/:id/purge,
 * admins only, with a reason) brings the recording's purge forward: files
 * and metadata are gone, and recording.purged says who asked and why.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { WEBHOOK_HEADERS, type WebhookPayload } from '@clinic-hub/protocol';
import { getRecording, recordingDir, setRecordingFields } from '@clinic-hub/recordings';
import { startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { makeWebm, newRecordingKey, seedRecording } from '@clinic-hub/test-kit/recording-fixture';
import { startTestRedis } from '@clinic-hub/test-kit/redis';
import { waitFor } from '@clinic-hub/test-kit/wait';
import { RecordingJobs, startRecordingWorker, type RecordingWorker } from '../src/recording/recording-jobs.js';

vi.setConfig({ testTimeout: 90_000, hookTimeout: 90_000 });

const CLINIC = 'testclinic';
const TIMEOUT_MS = 800;
const { key } = newRecordingKey();

let redisServer: Awaited<ReturnType<typeof startTestRedis>>;
let redis: Redis;
let hub: HubNodeProcess;
let dir: string;
let jobs: RecordingJobs;
let worker: RecordingWorker;
let receiver: Server;
let secret = '';
const received: { body: string; signature: string; attempt: number; payload: WebhookPayload }[] = [];

/** docs/webhooks.md, "Checking the signature", as a receiver would write it. */
function verify(rawBody: string, header: string, secretText: string, toleranceSeconds = 300): boolean {
  const parts = header.split(',').map((p) => p.split('='));
  const t = Number(parts.find(([k]) => k === 't')?.[1]);
  if (!Number.isInteger(t) || Math.abs(Date.now() / 1000 - t) > toleranceSeconds) return false;
  const expected = Buffer.from(createHmac('sha256', secretText).update(`${t}.${rawBody}`).digest('hex'));
  return parts.some(([k, v]) => k === 'v1' && v?.length === expected.length && timingSafeEqual(Buffer.from(v), expected));
}

async function api(method: string, path: string, token: string, body?: unknown) {
  const response = await fetch(`${hub.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

beforeAll(async () => {
  redisServer = await startTestRedis();
  redis = new Redis(redisServer.url);
  dir = mkdtempSync(join(tmpdir(), 'recording-webhooks-'));
  hub = await startHubProcess({
    redisUrl: redisServer.url,
    nodeId: 'hub-recording-webhooks',
    env: { HUB_WEBHOOK_TIMEOUT_MS: String(TIMEOUT_MS), HUB_WEBHOOK_BACKOFF_MS: '200', HUB_WEBHOOK_ATTEMPTS: '4' },
  });
  const firstSeen = new Set<string>();
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      const payload = JSON.parse(body) as WebhookPayload;
      received.push({ body, signature: String(req.headers[WEBHOOK_HEADERS.signature] ?? ''), attempt: Number(req.headers[WEBHOOK_HEADERS.attempt]), payload });
      // Slow on the first attempt of each event: the hub gives up waiting and tries again.
      const slow = !firstSeen.has(payload.id);
      firstSeen.add(payload.id);
      setTimeout(() => res.writeHead(204).end(), slow ? TIMEOUT_MS * 2 : 0);
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const created = await api('POST', `/api/clinics/${CLINIC}/webhooks`, await tokenFor('admin'), {
    url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/recordings`,
    events: ['recording.*'],
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  secret = created.body.secret as string;
  jobs = new RecordingJobs(redisServer.url, pino({ level: 'silent' }));
  worker = startRecordingWorker({ redisTarget: redisServer.url, dir, key, logger: pino({ level: 'warn' }) });
});

afterAll(async () => {
  await worker?.close();
  await jobs?.close();
  await new Promise((resolve) => receiver?.close(resolve));
  await hub?.stop();
  redis?.disconnect();
  await redisServer?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

describe('recording webhooks', () => {
  it('recording.ready when a recording is final, recording.purged when it is purged on request, each delivered once after a slow first attempt', async () => {
    const webm = await makeWebm(join(dir, 'fixture.webm'));
    await seedRecording({
      redis,
      dir,
      key,
      clinic: CLINIC,
      consult: 'consult-hooks-01',
      recording: 'rec-hooks-01',
      files: [
        { participant: 'doctor:hooks', part: 'doctor', plain: webm },
        { participant: 'patient:hooks', part: 'patient', plain: webm },
      ],
    });
    // As the recorder leaves it when it stops: closed and encrypted, waiting to be finalised.
    await setRecordingFields(redis, CLINIC, 'rec-hooks-01', { status: 'stopped' });
    const admin = await tokenFor('admin', CLINIC, { sub: 'admin:privacy' });
    const early = await api('POST', `/api/clinics/${CLINIC}/recordings/rec-hooks-01/purge`, admin, { reason: 'patient withdrew consent' });
    expect(early.status).toBe(409);
    expect(early.body.error).toMatchObject({ code: 'RECORDING_IN_PROGRESS', detail: expect.stringContaining('finalised') });

    await jobs.finalise({ clinic: CLINIC, consult: 'consult-hooks-01', recording: 'rec-hooks-01' });
    const ready = await waitFor('recording.ready delivered on the second attempt', () => received.find((r) => r.payload.type === 'recording.ready' && r.attempt === 2), 30_000);
    expect(ready.payload).toMatchObject({
      id: `${CLINIC}-r-rec-hooks-01-ready`,
      clinic: CLINIC,
      data: {
        recording: 'rec-hooks-01',
        consult: 'consult-hooks-01',
        participants: [
          { id: 'doctor:hooks', part: 'doctor' },
          { id: 'patient:hooks', part: 'patient' },
        ],
        files: 2,
        bytes: webm.length * 2,
        finalisedAt: expect.any(Number),
        purgeAt: expect.any(Number),
      },
    });
    expect((await getRecording(redis, CLINIC, 'rec-hooks-01'))?.status).toBe('final');

    // Purge on request: admins only, with a reason; audited; the purge job brought forward.
    expect((await api('POST', `/api/clinics/${CLINIC}/recordings/rec-hooks-01/purge`, await tokenFor('doctor'), { reason: 'asked' })).body.error.code).toBe('AUTH_FORBIDDEN');
    expect((await api('POST', `/api/clinics/${CLINIC}/recordings/rec-hooks-01/purge`, admin, { reason: '' })).body.error.code).toBe('INVALID_PAYLOAD');
    expect((await api('POST', `/api/clinics/${CLINIC}/recordings/rec-nope-01/purge`, admin, { reason: 'patient withdrew consent' })).body.error.code).toBe('RECORDING_NOT_FOUND');
    const requested = await api('POST', `/api/clinics/${CLINIC}/recordings/rec-hooks-01/purge`, admin, { reason: 'patient withdrew consent' });
    expect(requested).toEqual({ status: 202, body: { recording: 'rec-hooks-01', queued: true } });
    const purged = await waitFor('recording.purged delivered on the second attempt', () => received.find((r) => r.payload.type === 'recording.purged' && r.attempt === 2), 30_000);
    expect(purged.payload).toMatchObject({
      id: `${CLINIC}-r-rec-hooks-01-purged`,
      data: { recording: 'rec-hooks-01', why: 'request', reason: 'patient withdrew consent', requestedBy: 'admin:privacy', requestedAt: expect.any(Number), files: 2 },
    });
    expect(await getRecording(redis, CLINIC, 'rec-hooks-01')).toBeNull();
    expect(existsSync(recordingDir(dir, CLINIC, 'rec-hooks-01'))).toBe(false);
    const audit = (await api('GET', `/api/clinics/${CLINIC}/audit?action=recording.purge&count=10`, admin)).body.entries as Record<string, string>[];
    expect(audit).toEqual([expect.objectContaining({ actor: 'admin:privacy', subject: 'rec-hooks-01', after: '{"reason":"patient withdrew consent"}' })]);

    await new Promise((resolve) => setTimeout(resolve, 1000)); // a third attempt of either would have come by now
    for (const type of ['recording.ready', 'recording.purged']) {
      const attempts = received.filter((r) => r.payload.type === type);
      expect(attempts.map((r) => r.attempt), type).toEqual([1, 2]);
      expect(new Set(attempts.map((r) => r.payload.id)).size).toBe(1);
      for (const r of attempts) expect(verify(r.body, r.signature, secret)).toBe(true);
    }
    const deliveries = (await api('GET', `/api/clinics/${CLINIC}/webhooks/deliveries?count=20`, admin)).body.deliveries as { type: string; attempt: number; status: string; error?: string }[];
    expect(deliveries.filter((d) => d.type === 'recording.purged').map((d) => [d.attempt, d.status]).reverse()).toEqual([
      [1, 'retrying'],
      [2, 'delivered'],
    ]);
  });

  it('no webhook event is left behind for a clinic with no endpoint subscribed (nothing names the recording once purged)', async () => {
    await seedRecording({ redis, dir, key, clinic: 'otherclinic', consult: 'consult-quiet-01', recording: 'rec-quiet-01', files: [{ participant: 'doctor:q', part: 'doctor', plain: Buffer.from('x') }] });
    const admin = await tokenFor('admin', 'otherclinic');
    expect((await api('POST', `/api/clinics/otherclinic/recordings/rec-quiet-01/purge`, admin, { reason: 'test of silence' })).status).toBe(202);
    // Its meta goes first, then the job's own record once the job is done: nothing names the recording after that.
    const naming = async () => (await redis.keys('*rec-quiet-01*')).filter((k) => !k.includes(':audit'));
    await waitFor('the recording and its purge job gone', async () => (await naming()).length === 0, 30_000);
    expect(await getRecording(redis, 'otherclinic', 'rec-quiet-01')).toBeNull();
    expect(existsSync(recordingDir(dir, 'otherclinic', 'rec-quiet-01'))).toBe(false);
    expect(received.some((r) => JSON.stringify(r.payload).includes('rec-quiet-01'))).toBe(false);
  });
});
