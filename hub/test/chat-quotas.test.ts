import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { CHAT_ATTACHMENTS_PATH, ChatPayloads, patientThreadId } from '@clinic-hub/protocol';
import { chatKeys } from '../src/chat/chat-keys.js';
import { FileAttachmentStorage } from '../src/chat/attachment-storage.js';
import { ChatService } from '../src/chat/chat-service.js';
import type { Ack } from '@clinic-hub/protocol';
import type { ChatCaller } from '../src/chat/chat-store.js';
import { attachmentsDirFor, startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { connectQueue, expectOk, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';

/**
 * One patient token once filled Redis: twenty 5 MiB uploads were accepted in
 * 2 s (Redis from 2 MB to 128 MB), and sending them removed their expiry.
 * Now attachments are files outside Redis with the clinic's retention,
 * messages and attachment bytes have quotas per user, thread and clinic over
 * every node, and API requests are rate-limited as socket events are.
 */
const C = 'testclinic';
const PNG = (size: number) => Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), randomBytes(size - 8)]);

describe('the chat service', () => {
  let server: TestRedis;
  let redis: Redis;
  const dir = mkdtempSync(join(tmpdir(), 'chat-quotas-'));
  const caller = (role: ChatCaller['role'], sub: string, ticket: string | null = null): ChatCaller => ({ sub, role, ticket, address: '127.0.0.9' });
  const patientA = caller('patient', 'patient:TA', 'TA');
  const patientB = caller('patient', 'patient:TB', 'TB');
  const staff = caller('staff', 'staff:sato');
  const chat = () =>
    new ChatService(redis, {
      findTicket: async (_clinic, ticketId) => ({ number: `A-${ticketId}` }),
      attachmentKey: randomBytes(32),
      attachmentMaxBytes: 64 * 1024,
      attachmentStorage: new FileAttachmentStorage(dir),
      attachmentKeepSeconds: () => 2 * 86_400,
      threadKeepSeconds: (_clinic, kind) => ({ patient: 3, consult: 4, staff: 5 })[kind] * 86_400,
      quotas: { messagesPerMinute: { user: 3, thread: 5, clinic: 7 }, attachmentBytesPerDay: { user: 10_000, thread: 15_000, clinic: 20_000 } },
    });
  const ok = <T extends object>(result: Ack<T>): T => {
    if (!result.ok) throw new Error(`expected ok, got ${result.error.code} ${result.error.detail ?? ''}`);
    return result;
  };
  const send = (service: ChatService, who: ChatCaller, threadId: string, clientMessageId = randomBytes(8).toString('hex'), attachments: string[] = []) =>
    service.send(C, who, ChatPayloads['chat:send'].parse({ threadId, clientMessageId, text: attachments.length ? '' : 'hello', attachments }) as never);

  beforeAll(async () => {
    server = await startTestRedis();
    redis = new Redis(server.url);
  });
  afterAll(async () => {
    redis.disconnect();
    await server.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => redis.flushall());

  it('counts messages per user, per thread and per clinic, and answers a resend of a stored message whatever the quota', async () => {
    const service = chat();
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push(ok(await send(service, patientA, 'patient.TA', `message-a${i}`)).message.id);
    expect(await send(service, patientA, 'patient.TA')).toMatchObject({ ok: false, error: { code: 'CHAT_QUOTA_EXCEEDED', detail: expect.stringMatching(/^user quota of 3 messages per 60 s reached; retry in \d+ s$/) } });
    // The same clientMessageId again (a lost ack): the stored message, not a refusal.
    expect(ok(await send(service, patientA, 'patient.TA', 'message-a2'))).toMatchObject({ duplicate: true, message: { id: ids[2] } });
    ok(await send(service, staff, 'patient.TA'));
    ok(await send(service, staff, 'patient.TA'));
    expect(await send(service, staff, 'patient.TA')).toMatchObject({ ok: false, error: { code: 'CHAT_QUOTA_EXCEEDED', detail: expect.stringContaining('thread quota of 5') } });
    ok(await send(service, patientB, 'patient.TB'));
    ok(await send(service, patientB, 'patient.TB'));
    expect(await send(service, patientB, 'patient.TB')).toMatchObject({ ok: false, error: { code: 'CHAT_QUOTA_EXCEEDED', detail: expect.stringContaining('clinic quota of 7') } });
    // A refused message took nothing: the counters stand at their limits.
    expect(Number((await redis.get((await redis.keys('*quota:msg:clinic:*'))[0]!))!.split(':')[1])).toBe(7);
  });

  it('counts attachment bytes per user, per thread and per clinic, taking nothing for a refused upload', async () => {
    const service = chat();
    const upload = (who: ChatCaller, threadId: string, size: number) => service.uploadAttachment(C, who, { threadId, declaredType: 'image/png', name: 'x.png', bytes: PNG(size) });
    ok(await upload(patientA, 'patient.TA', 6000));
    expect(await upload(patientA, 'patient.TA', 6000)).toMatchObject({ ok: false, error: { code: 'CHAT_QUOTA_EXCEEDED', detail: expect.stringContaining('user quota of 10000 attachment bytes per 86400 s') } });
    ok(await upload(patientA, 'patient.TA', 4000));
    expect(await upload(staff, 'patient.TA', 6000)).toMatchObject({ ok: false, error: { code: 'CHAT_QUOTA_EXCEEDED', detail: expect.stringContaining('thread quota') } });
    ok(await upload(staff, 'patient.TA', 5000));
    ok(await upload(patientB, 'patient.TB', 5000));
    expect(await upload(patientB, 'patient.TB', 1000)).toMatchObject({ ok: false, error: { code: 'CHAT_QUOTA_EXCEEDED', detail: expect.stringContaining('clinic quota') } });
  });

  it('keeps a patient’s chat for the clinic’s retention after its last message, and the clinicians’ list forgets threads that went', async () => {
    const service = chat();
    await redis.zadd(chatKeys(C).patientThreads, Date.now() - 4 * 86_400_000, 'patient.GONE');
    ok(await send(service, patientA, 'patient.TA'));
    for (const key of [chatKeys(C).thread('patient.TA'), chatKeys(C).messages('patient.TA')]) {
      const ttl = await redis.ttl(key);
      expect(ttl, key).toBeGreaterThan(3 * 86_400 - 60);
      expect(ttl, key).toBeLessThanOrEqual(3 * 86_400);
    }
    // Read positions go with the thread, even when no message follows them.
    ok(await service.markRead(C, staff, ChatPayloads['chat:read'].parse({ threadId: 'patient.TA', upToId: '1-0' }) as never));
    expect(await redis.ttl(chatKeys(C).reads('patient.TA'))).toBeGreaterThan(3 * 86_400 - 60);
    expect(await redis.zrange(chatKeys(C).patientThreads, 0, -1)).toEqual(['patient.TA']);
  });

  it('keeps consult and staff threads for their retention too (consultationDays, staffChatDays), and their members’ lists drop threads that went', async () => {
    const service = chat();
    const doctor = caller('doctor', 'doctor:ito');
    const ttlDays = async (key: string) => (await redis.ttl(key)) / 86_400;
    for (const [kind, days] of [['consult', 4], ['staff', 5]] as const) {
      const { thread } = ok(await service.createThread(C, staff, ChatPayloads['chat:create'].parse({ kind, title: `${kind} notes`, members: [doctor.sub] }) as never));
      // Kept without a message too: a thread created and never used goes.
      for (const key of [chatKeys(C).thread(thread.id), chatKeys(C).members(thread.id)]) {
        expect(await ttlDays(key), key).toBeGreaterThan(days - 0.001);
        expect(await ttlDays(key), key).toBeLessThanOrEqual(days);
      }
      ok(await send(service, doctor, thread.id));
      ok(await service.markRead(C, staff, ChatPayloads['chat:read'].parse({ threadId: thread.id, upToId: '1-0' }) as never));
      ok(await service.updateMembers(C, staff, ChatPayloads['chat:members'].parse({ threadId: thread.id, add: ['nurse:kato'], remove: [] }) as never));
      for (const key of [chatKeys(C).thread(thread.id), chatKeys(C).messages(thread.id), chatKeys(C).reads(thread.id), chatKeys(C).members(thread.id)]) {
        expect(await ttlDays(key), key).toBeGreaterThan(days - 0.001);
        expect(await ttlDays(key), key).toBeLessThanOrEqual(days);
      }
      // Its retention has passed (the keys expire together): it leaves the lists.
      expect(ok(await service.listThreads(C, doctor)).threads.map((t) => t.id)).toContain(thread.id);
      await redis.del(chatKeys(C).thread(thread.id), chatKeys(C).messages(thread.id), chatKeys(C).reads(thread.id), chatKeys(C).members(thread.id));
      expect(ok(await service.listThreads(C, doctor)).threads.map((t) => t.id)).not.toContain(thread.id);
      expect(await redis.sismember(chatKeys(C).userThreads(doctor.sub), thread.id)).toBe(0);
      expect(await service.open(C, doctor, thread.id)).toMatchObject({ ok: false, error: { code: 'CHAT_NOT_MEMBER' } });
    }
  });

  it('keeps a sent attachment for the clinic’s retention, never for good, and sweeps its file once that has passed', async () => {
    const service = chat();
    const { attachment } = ok(await service.uploadAttachment(C, patientA, { threadId: 'patient.TA', declaredType: 'image/png', name: 'x.png', bytes: PNG(100) }));
    const pending = ok(await service.uploadAttachment(C, patientA, { threadId: 'patient.TA', declaredType: 'image/png', name: 'y.png', bytes: PNG(100) })).attachment;
    ok(await send(service, patientA, 'patient.TA', undefined, [attachment.id]));
    const ttl = await redis.ttl(chatKeys(C).attachment(attachment.id));
    expect(ttl).toBeGreaterThan(2 * 86_400 - 60);
    expect(ttl).toBeLessThanOrEqual(2 * 86_400);
    const file = join(dir, C, `${attachment.id}.bin`);
    expect(existsSync(file)).toBe(true);

    // Fresh files are never swept, even without metadata (an upload in progress).
    await redis.del(chatKeys(C).attachment(attachment.id));
    expect(await service.sweepAttachmentFiles()).toBe(0);
    // Eleven minutes on: the file whose metadata expired goes; the one still waiting to be sent stays.
    const old = new Date(Date.now() - 11 * 60_000);
    utimesSync(file, old, old);
    utimesSync(join(dir, C, `${pending.id}.bin`), old, old);
    expect(await service.sweepAttachmentFiles()).toBe(1);
    expect(existsSync(file)).toBe(false);
    expect(existsSync(join(dir, C, `${pending.id}.bin`))).toBe(true);
    expect(await service.downloadAttachment(C, patientA, attachment.id)).toMatchObject({ ok: false, error: { code: 'CHAT_ATTACHMENT_NOT_FOUND' } });
  });
});

describe('a hub node', () => {
  let server: TestRedis;
  let redis: Redis;
  let hub: HubNodeProcess;
  let staff: QueueSocket;

  beforeAll(async () => {
    server = await startTestRedis();
    redis = new Redis(server.url);
    hub = await startHubProcess({
      redisUrl: server.url,
      nodeId: 'quotas',
      env: { HUB_RATE_LIMIT_USER_PER_SECOND: '1', HUB_RATE_LIMIT_USER_BURST: '40', HUB_RATE_LIMIT_ADDRESS_PER_SECOND: '1', HUB_RATE_LIMIT_ADDRESS_BURST: '5' },
    });
    staff = await connectQueue(hub.url, await tokenFor('staff', C, { sub: 'staff:quotas' }));
  });
  afterAll(async () => {
    staff?.close();
    redis?.disconnect();
    await hub?.stop();
    rmSync(attachmentsDirFor(server.url), { recursive: true, force: true });
    await server?.cleanup();
  });

  it('takes twenty 5 MiB uploads from one patient only up to their daily quota, outside Redis, and keeps their expiry once sent', async () => {
    const checkin = expectOk(await request(staff, 'queue:checkin', { dept: 'gp' }));
    const threadId = patientThreadId(checkin.event.ticket.id);
    const memoryBefore = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))![1]);
    const statuses: number[] = [];
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const response = await fetch(`${hub.url}${CHAT_ATTACHMENTS_PATH}?thread=${threadId}&name=scan${i}.png`, {
        method: 'POST',
        headers: { authorization: `Bearer ${checkin.patientToken}`, 'content-type': 'image/png' },
        body: PNG(5 * 1024 * 1024 - 64),
      });
      statuses.push(response.status);
      const body = (await response.json()) as { attachment?: { id: string }; error?: { code: string } };
      if (response.status === 201) ids.push(body.attachment!.id);
      else expect(body.error?.code, hub.logs()).toBe('CHAT_QUOTA_EXCEEDED');
    }
    // 50 MiB a day per user by default: ten uploads of just under 5 MiB, then 429.
    expect(statuses.filter((s) => s === 201)).toHaveLength(10);
    expect(statuses.slice(10).every((s) => s === 429)).toBe(true);
    const memoryAfter = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))![1]);
    expect(memoryAfter - memoryBefore).toBeLessThan(1024 * 1024);

    const { connectChat, chatRequest } = await import('@clinic-hub/test-kit/chat-client');
    const patient = await connectChat(hub.url, checkin.patientToken);
    try {
      expectOk(await chatRequest(patient, 'chat:join', { threadId }));
      expectOk(await chatRequest(patient, 'chat:send', { threadId, clientMessageId: 'with-files', text: '', attachments: ids.slice(0, 3) }));
    } finally {
      patient.close();
    }
    for (const id of ids.slice(0, 3)) {
      const ttl = await redis.ttl(chatKeys(C).attachment(id));
      expect(ttl, 'a sent attachment keeps an expiry').toBeGreaterThan(29 * 86_400);
    }
  });

  it('rate-limits API requests per user (with their sockets’ events) and per address, with 429 and Retry-After', async () => {
    const staffToken = await tokenFor('staff', C, { sub: 'staff:poller' });
    const statuses = await Promise.all(Array.from({ length: 60 }, () => fetch(`${hub.url}/api/clinics/${C}`, { headers: { authorization: `Bearer ${staffToken}` } }).then((r) => r.status)));
    expect(statuses.filter((s) => s === 200).length, JSON.stringify(statuses)).toBeGreaterThanOrEqual(39);
    expect(statuses.filter((s) => s === 200).length).toBeLessThanOrEqual(42);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(18);
    const refused = await fetch(`${hub.url}/api/clinics/${C}`, { headers: { authorization: `Bearer ${staffToken}` } });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await refused.json()).toMatchObject({ error: { code: 'RATE_LIMITED', detail: expect.stringContaining('user limit') } });

    // Without a token: per address (5 at once here), whatever the route answers otherwise (401).
    const anonymous = await Promise.all(Array.from({ length: 10 }, () => fetch(`${hub.url}/api/clinics/${C}`).then((r) => r.status)));
    expect(anonymous.filter((s) => s === 401).length).toBeLessThanOrEqual(6);
    expect(anonymous.filter((s) => s === 429).length).toBeGreaterThanOrEqual(4);
    // Health checks are never limited.
    expect((await fetch(`${hub.url}/healthz`)).status).toBe(200);
  });
});
