/**
 * What ending a consultation does to its data (the consult domain driven
 * directly against a real Redis, with clinic files written for the test):
 * the clinic's retention goes into the meta hash at admission; at the end
 * the meta hash, session record, AI results and AI state get that expiry
 * (the ticket's pointer no later), and the live audio stream is deleted at
 * once when no AI session follows the consultation, else it expires after
 * the clinic's live-audio period. A clinic file with a bad retention is
 * refused, naming the field.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { consultKeys } from '@clinic-hub/protocol';
import { ClinicRegistry } from '../src/clinics/clinic-registry.js';
import { consultIndexKeys } from '../src/consult/consult-keys.js';
import type { ConsultCaller, ConsultService } from '../src/consult/consult-service.js';
import { QueueService } from '../src/queue/index.js';
import { announceMediaNode } from '@clinic-hub/test-kit/consult-client';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { testConsultService } from './support/consult-service.js';

const doctor: ConsultCaller = { sub: 'doctor:retention', role: 'doctor', ticket: null, address: '127.0.0.1' };
const DAY_MS = 86_400_000;

function clinicFile(id: string, extra: Record<string, unknown>): Record<string, unknown> {
  return {
    id,
    name: { ja: 'テスト', en: 'Test' },
    departments: [{ id: 'online', name: { ja: 'オンライン', en: 'Online' }, prefix: 'W', online: true, rooms: [{ id: 'v1', name: { ja: '1', en: '1' } }] }],
    ...extra,
  };
}

let redisServer: TestRedis;
let redis: Redis;
let clinicsDir: string;
let queue: QueueService;
let consult: ConsultService;

beforeAll(async () => {
  redisServer = await startTestRedis();
  redis = new Redis(redisServer.url);
  clinicsDir = mkdtempSync(join(tmpdir(), 'consult-retention-'));
  writeFileSync(join(clinicsDir, 'ai-on.json'), JSON.stringify(clinicFile('aion', { ai: { enabled: true, language: 'en' }, recording: { allowed: false }, retention: { liveAudioMinutes: 2, consultationDays: 7, recordingDays: 90 } })));
  writeFileSync(join(clinicsDir, 'ai-off.json'), JSON.stringify(clinicFile('aioff', { retention: { consultationDays: 0.5 } })));
  const clinics = ClinicRegistry.fromDirectory(clinicsDir);
  queue = new QueueService(redis, clinics);
  consult = testConsultService({ redis, clinics, queue });
});

beforeEach(async () => {
  await redis.flushall();
  await announceMediaNode(redis, { id: 'm1', url: 'ws://m1.test', ttlMs: 600_000 });
});

afterAll(async () => {
  redis?.disconnect();
  await redisServer?.cleanup();
  rmSync(clinicsDir, { recursive: true, force: true });
});

/** Admits a fresh patient and gives the consultation everything a running one has: record, AI results, AI state, audio. */
async function liveConsultation(clinic: string): Promise<{ id: string; ticket: string; keys: ReturnType<typeof consultKeys> }> {
  const checkin = await queue.checkin(clinic, { dept: 'online', priority: 'normal' });
  if (!checkin.ok) throw new Error(checkin.error.code);
  const admitted = await consult.admit(clinic, doctor, { dept: 'online', room: 'v1' });
  if (!admitted.ok) throw new Error(admitted.error.code);
  const keys = consultKeys(clinic, admitted.consultation.id);
  await redis.xadd(keys.audio, '*', 'p', 'patient:x', 'r', 'patient', 't', String(Date.now()), 'pcm', Buffer.alloc(3200));
  await redis.xadd(keys.ai, '*', 'r', '{"type":"transcript"}');
  await redis.hset(keys.aiState, 'read', '0-0');
  return { id: admitted.consultation.id, ticket: checkin.event.ticket.id, keys };
}

describe('retention of a consultation', () => {
  it("writes the clinic's periods and recording rule into the meta hash at admission", async () => {
    const on = await liveConsultation('aion');
    expect(await redis.hmget(on.keys.meta, 'ai', 'retainAudioMs', 'retainConsultMs', 'retainRecordingMs', 'rec')).toEqual(['1', String(120_000), String(7 * DAY_MS), String(90 * DAY_MS), '0']);
    const off = await liveConsultation('aioff');
    // Defaults for what the clinic does not say: recording allowed.
    expect(await redis.hmget(off.keys.meta, 'ai', 'retainAudioMs', 'retainConsultMs', 'retainRecordingMs', 'rec')).toEqual(['0', String(15 * 60_000), String(DAY_MS / 2), String(30 * DAY_MS), '1']);
    for (const key of Object.values(on.keys)) expect(await redis.pttl(key), `${key} has no expiry while the consultation runs`).toBe(-1);
  });

  it('at the end: its data expires after consultationDays, and its audio after liveAudioMinutes while an AI session may still read it', async () => {
    const { id, ticket, keys } = await liveConsultation('aion');
    expect(await consult.end('aion', doctor, { consult: id })).toMatchObject({ ok: true });
    for (const key of [keys.meta, keys.record, keys.ai, keys.aiState]) {
      const ttl = await redis.pttl(key);
      expect(ttl, key).toBeGreaterThan(7 * DAY_MS - 60_000);
      expect(ttl, key).toBeLessThanOrEqual(7 * DAY_MS);
    }
    const audio = await redis.pttl(keys.audio);
    expect(audio).toBeGreaterThan(110_000);
    expect(audio).toBeLessThanOrEqual(120_000);
    const pointer = await redis.pttl(consultIndexKeys('aion').ticket(ticket));
    expect(pointer).toBeGreaterThan(0);
    expect(pointer).toBeLessThanOrEqual(7 * DAY_MS);
  });

  it('at the end of a consultation no AI session follows: its audio is deleted at once', async () => {
    const { id, ticket, keys } = await liveConsultation('aioff');
    expect(await consult.end('aioff', doctor, { consult: id })).toMatchObject({ ok: true });
    expect(await redis.exists(keys.audio)).toBe(0);
    for (const key of [keys.meta, keys.record, keys.ai, keys.aiState]) {
      const ttl = await redis.pttl(key);
      expect(ttl, key).toBeGreaterThan(DAY_MS / 2 - 60_000);
      expect(ttl, key).toBeLessThanOrEqual(DAY_MS / 2);
    }
    // The ticket's pointer to it (kept a week otherwise) goes no later than its data.
    expect(await redis.pttl(consultIndexKeys('aioff').ticket(ticket))).toBeLessThanOrEqual(DAY_MS / 2);
  });

  it('ending it again changes nothing', async () => {
    const { id, keys } = await liveConsultation('aioff');
    await consult.end('aioff', doctor, { consult: id });
    await redis.pexpire(keys.meta, 1_000_000);
    expect(await consult.end('aioff', doctor, { consult: id })).toMatchObject({ ok: true, alreadyEnded: true });
    expect(await redis.pttl(keys.meta)).toBeLessThanOrEqual(1_000_000);
  });
});

describe('the clinic file', () => {
  it('is refused with the field named when a retention period is not a positive number or too long', () => {
    for (const [retention, field] of [
      [{ recordingDays: 0 }, 'retention.recordingDays'],
      [{ consultationDays: -1 }, 'retention.consultationDays'],
      [{ liveAudioMinutes: 100_000 }, 'retention.liveAudioMinutes'],
      [{ recordingDays: '30' }, 'retention.recordingDays'],
    ] as const) {
      const dir = mkdtempSync(join(tmpdir(), 'consult-retention-bad-'));
      writeFileSync(join(dir, 'bad.json'), JSON.stringify(clinicFile('bad', { retention })));
      expect(() => ClinicRegistry.fromDirectory(dir), field).toThrow(new RegExp(`not a valid clinic: ${field.replace('.', '\\.')}:`));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
