import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { ChatPayloads, type ChatMessage, type Ack } from '@clinic-hub/protocol';
import { readAudit } from '../src/audit/audit-log.js';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { AttachmentCipher, attachmentAdditionalData } from '../src/chat/attachment-cipher.js';
import { cleanFileName, sniffAttachmentType } from '../src/chat/attachment-type.js';
import { chatKeys } from '../src/chat/chat-keys.js';
import { FileAttachmentStorage } from '../src/chat/attachment-storage.js';
import { ChatService } from '../src/chat/chat-service.js';
import { createStaffChannel } from '../src/chat/index.js';
import type { ChatCaller } from '../src/chat/chat-store.js';

const C = 'testclinic';
const KEY = randomBytes(32);
const PNG = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.from('IHDR fake image body: 検査結果')]);

let redisServer: TestRedis;
let redis: Redis;
let chat: ChatService;
const storageDir = mkdtempSync(join(tmpdir(), 'chat-attachments-'));
const storage = new FileAttachmentStorage(storageDir);
const fileOf = (id: string) => join(storageDir, C, `${id}.bin`);
const activeTickets = new Map<string, string>();

const caller = (role: ChatCaller['role'], sub: string, ticket: string | null = null): ChatCaller => ({ sub, role, ticket, address: '127.0.0.9' });
const staff = caller('staff', 'staff:sato');
const doctor = caller('doctor', 'doctor:ito');
const patientA = caller('patient', 'patient:TA', 'TA');
const patientB = caller('patient', 'patient:TB', 'TB');
const display = caller('display', 'display:tv');

function ok<T extends object>(result: Ack<T>): T {
  if (!result.ok) throw new Error(`expected ok, got ${result.error.code} ${result.error.detail ?? ''}`);
  return result;
}

const parse = <E extends keyof typeof ChatPayloads>(event: E, payload: unknown) => ChatPayloads[event].parse(payload) as never;

function send(who: ChatCaller, threadId: string, text: string, clientMessageId = randomBytes(8).toString('hex'), attachments: string[] = []) {
  return chat.send(C, who, parse('chat:send', { threadId, clientMessageId, text, attachments }));
}

beforeAll(async () => {
  redisServer = await startTestRedis();
  redis = new Redis(redisServer.url);
  chat = new ChatService(redis, {
    findTicket: async (_clinic, ticketId) => {
      const number = activeTickets.get(ticketId);
      return number ? { number } : null;
    },
    attachmentKey: KEY,
    attachmentMaxBytes: 64 * 1024,
    attachmentStorage: storage,
  });
});
afterAll(async () => {
  redis.disconnect();
  await redisServer.cleanup();
  rmSync(storageDir, { recursive: true, force: true });
});
beforeEach(async () => {
  await redis.flushall();
  activeTickets.clear();
  activeTickets.set('TA', 'A-001').set('TB', 'A-002');
});

describe('patient threads', () => {
  it('are created on first use, for a ticket in the queue, titled with its number', async () => {
    const { thread } = ok(await chat.open(C, patientA, 'patient.TA'));
    expect(thread).toMatchObject({ id: 'patient.TA', kind: 'patient', title: 'A-001', ticket: 'TA', lastSeq: 0, memberCount: null });
    // Opened again: the same thread.
    expect(ok(await chat.open(C, staff, 'patient.TA')).thread.createdAt).toBe(thread.createdAt);
    // No ticket in the queue, no thread.
    expect(await chat.open(C, staff, 'patient.NOPE')).toMatchObject({ ok: false, error: { code: 'CHAT_THREAD_NOT_FOUND' } });
  });

  it('are read and written by their patient and the clinic\'s clinicians only', async () => {
    ok(await send(patientA, 'patient.TA', 'こんにちは'));
    ok(await send(staff, 'patient.TA', 'はい、どうしましたか'));
    ok(await send(doctor, 'patient.TA', '診察前に確認します'));
    // Another patient: refused, and told nothing about whether the thread exists.
    for (const threadId of ['patient.TA', 'patient.NOPE']) {
      expect(await chat.open(C, patientB, threadId)).toMatchObject({ ok: false, error: { code: 'CHAT_NOT_MEMBER' } });
      expect(await send(patientB, threadId, 'hello')).toMatchObject({ ok: false, error: { code: 'CHAT_NOT_MEMBER' } });
      expect(await chat.history(C, patientB, parse('chat:history', { threadId }))).toMatchObject({ ok: false, error: { code: 'CHAT_NOT_MEMBER' } });
    }
    expect(await chat.join(C, display, parse('chat:join', { threadId: 'patient.TA' }))).toMatchObject({ ok: false, error: { code: 'AUTH_FORBIDDEN' } });
    const page = ok(await chat.join(C, patientA, parse('chat:join', { threadId: 'patient.TA' })));
    expect(page.messages.map((m) => [m.sender, m.senderRole, m.text])).toEqual([
      ['patient:TA', 'patient', 'こんにちは'],
      ['staff:sato', 'staff', 'はい、どうしましたか'],
      ['doctor:ito', 'doctor', '診察前に確認します'],
    ]);
  });
});

describe('messages', () => {
  it('get their stream id, <seq>-0, numbered from 1 without gaps', async () => {
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push(ok(await send(patientA, 'patient.TA', `m${i}`)).message.id);
    expect(ids).toEqual(['1-0', '2-0', '3-0']);
    const stream = await redis.xrange(chatKeys(C).messages('patient.TA'), '-', '+');
    expect(stream.map(([id]) => id)).toEqual(ids);
    expect(JSON.parse(stream[0]![1][1]!)).toMatchObject({ id: '1-0', seq: 1, text: 'm0', attachments: [] });
  });

  it('are stored once when resent with the same clientMessageId; the resend gets the same id', async () => {
    const first = ok(await send(patientA, 'patient.TA', '薬の相談です', 'client-msg-0001'));
    const again = ok(await send(patientA, 'patient.TA', '薬の相談です', 'client-msg-0001'));
    expect(first.duplicate).toBe(false);
    expect(again).toMatchObject({ duplicate: true, message: first.message });
    expect(await redis.xlen(chatKeys(C).messages('patient.TA'))).toBe(1);
    // The id belongs to its sender: the same clientMessageId from someone else is their own message.
    const staffs = ok(await send(staff, 'patient.TA', 'どうぞ', 'client-msg-0001'));
    expect(staffs).toMatchObject({ duplicate: false, message: { id: '2-0', sender: 'staff:sato' } });
  });

  it('refuse text over 2000 characters and empty messages with their codes, storing nothing', async () => {
    ok(await chat.open(C, patientA, 'patient.TA'));
    expect(await send(patientA, 'patient.TA', 'あ'.repeat(2001))).toMatchObject({ ok: false, error: { code: 'CHAT_MESSAGE_TOO_LONG' } });
    expect(await send(patientA, 'patient.TA', ' \n\t ')).toMatchObject({ ok: false, error: { code: 'CHAT_MESSAGE_EMPTY' } });
    expect(ok(await send(patientA, 'patient.TA', 'あ'.repeat(2000))).message.text).toHaveLength(2000);
    expect(await redis.xlen(chatKeys(C).messages('patient.TA'))).toBe(1);
  });

  it('page backwards and forwards, and a resume after an id gets exactly what followed it', async () => {
    for (let i = 1; i <= 120; i++) ok(await send(i % 2 ? patientA : staff, 'patient.TA', `message ${i}`));
    const seqs = (messages: ChatMessage[]) => messages.map((m) => m.seq);
    const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

    const latest = ok(await chat.join(C, staff, parse('chat:join', { threadId: 'patient.TA' })));
    expect(seqs(latest.messages)).toEqual(range(71, 120));
    expect(latest).toMatchObject({ hasOlder: true, hasNewer: false, thread: { lastSeq: 120 } });
    const older = ok(await chat.history(C, staff, parse('chat:history', { threadId: 'patient.TA', before: '71-0' })));
    expect(seqs(older.messages)).toEqual(range(21, 70));
    expect(older.hasOlder).toBe(true);
    const oldest = ok(await chat.history(C, staff, parse('chat:history', { threadId: 'patient.TA', before: '21-0' })));
    expect(seqs(oldest.messages)).toEqual(range(1, 20));
    expect(oldest.hasOlder).toBe(false);

    const resumed = ok(await chat.join(C, patientA, parse('chat:join', { threadId: 'patient.TA', afterId: '100-0' })));
    expect(seqs(resumed.messages)).toEqual(range(101, 120));
    expect(resumed.hasNewer).toBe(false);
    const far = ok(await chat.join(C, patientA, parse('chat:join', { threadId: 'patient.TA', afterId: '10-0', limit: 50 })));
    expect(seqs(far.messages)).toEqual(range(11, 60));
    expect(far.hasNewer).toBe(true);
    const fromStart = ok(await chat.history(C, patientA, parse('chat:history', { threadId: 'patient.TA', after: '0-0', limit: 5 })));
    expect(seqs(fromStart.messages)).toEqual(range(1, 5));
    const upToDate = ok(await chat.join(C, patientA, parse('chat:join', { threadId: 'patient.TA', afterId: '120-0' })));
    expect(upToDate.messages).toEqual([]);
  });

  it('write every read of a thread to the audit stream', async () => {
    ok(await send(patientA, 'patient.TA', 'hello'));
    ok(await chat.join(C, staff, parse('chat:join', { threadId: 'patient.TA' })));
    ok(await chat.history(C, doctor, parse('chat:history', { threadId: 'patient.TA' })));
    const entries = await readAudit(redis, C, 10);
    expect(entries.slice(0, 2).map((e) => [e.actor, e.role, e.action, e.subject, e.from])).toEqual([
      ['doctor:ito', 'doctor', 'chat.read', 'patient.TA', '127.0.0.9'],
      ['staff:sato', 'staff', 'chat.read', 'patient.TA', '127.0.0.9'],
    ]);
    // A refused read is not a read.
    expect((await chat.history(C, patientB, parse('chat:history', { threadId: 'patient.TA' }))).ok).toBe(false);
    expect(await readAudit(redis, C, 10)).toHaveLength(2);
  });
});

describe('read receipts', () => {
  it('only move forward, name only messages the thread holds, and come back with a join', async () => {
    for (let i = 0; i < 3; i++) ok(await send(patientA, 'patient.TA', `m${i}`));
    expect(ok(await chat.markRead(C, staff, parse('chat:read', { threadId: 'patient.TA', upToId: '2-0' }))).receipt).toMatchObject({
      member: 'staff:sato',
      role: 'staff',
      readSeq: 2,
      readId: '2-0',
    });
    expect(ok(await chat.markRead(C, staff, parse('chat:read', { threadId: 'patient.TA', upToId: '1-0' }))).receipt.readSeq).toBe(2);
    // Past the latest message, or naming a message by another `at`: the reader holds messages the thread does not
    // (a failover lost them): nothing recorded, rewound.
    expect(ok(await chat.markRead(C, staff, parse('chat:read', { threadId: 'patient.TA', upToId: '99-0' })))).toMatchObject({ rewound: true, receipt: { readSeq: 2 } });
    const third = ok(await chat.history(C, staff, parse('chat:history', { threadId: 'patient.TA', after: '2-0' }))).messages[0]!;
    expect(ok(await chat.markRead(C, staff, parse('chat:read', { threadId: 'patient.TA', upToId: '3-0', upToAt: third.at + 1 })))).toMatchObject({ rewound: true, receipt: { readSeq: 2 } });
    expect(ok(await chat.markRead(C, staff, parse('chat:read', { threadId: 'patient.TA', upToId: '3-0', upToAt: third.at })))).toMatchObject({ rewound: false, receipt: { readSeq: 3 } });
    const joined = ok(await chat.join(C, patientA, parse('chat:join', { threadId: 'patient.TA' })));
    expect(joined.receipts).toEqual([expect.objectContaining({ member: 'staff:sato', readSeq: 3 })]);
    expect(await chat.markRead(C, patientB, parse('chat:read', { threadId: 'patient.TA', upToId: '1-0' }))).toMatchObject({
      ok: false,
      error: { code: 'CHAT_NOT_MEMBER' },
    });
  });
});

describe('consult and staff threads', () => {
  it('are read and written by their members only; staff threads by clinician members only', async () => {
    const { thread } = ok(await chat.createThread(C, doctor, parse('chat:create', { kind: 'staff', id: 'night', title: '夜勤', members: ['staff:sato', 'patient:TA'] })));
    expect(thread).toMatchObject({ id: 'staff.night', kind: 'staff', title: '夜勤', memberCount: 3, createdBy: 'doctor:ito' });
    ok(await send(staff, 'staff.night', '了解です'));
    expect(await send(caller('staff', 'staff:other'), 'staff.night', 'hi')).toMatchObject({ ok: false, error: { code: 'CHAT_NOT_MEMBER' } });
    // A patient's sub on a staff thread's list does not make a patient a reader.
    expect(await send(patientA, 'staff.night', 'hi')).toMatchObject({ ok: false, error: { code: 'CHAT_NOT_MEMBER' } });
    // An admin is not a member either.
    expect(await chat.join(C, caller('admin', 'admin:root'), parse('chat:join', { threadId: 'staff.night' }))).toMatchObject({
      ok: false,
      error: { code: 'CHAT_NOT_MEMBER' },
    });

    const consult = ok(await chat.createThread(C, doctor, parse('chat:create', { kind: 'consult', id: 'c42', title: '診察 A-001', members: ['patient:TA'] })));
    expect(consult.thread.id).toBe('consult.c42');
    ok(await send(patientA, 'consult.c42', '聞こえますか'));
    expect(await send(patientB, 'consult.c42', 'hi')).toMatchObject({ ok: false, error: { code: 'CHAT_NOT_MEMBER' } });
    expect(await send(staff, 'consult.c42', 'hi')).toMatchObject({ ok: false, error: { code: 'CHAT_NOT_MEMBER' } });
  });

  it('are created once: a retry by the creator returns it, anyone else gets CHAT_THREAD_EXISTS', async () => {
    const input = parse('chat:create', { kind: 'staff', id: 'ops', title: 'Ops', members: ['staff:sato'] });
    expect(ok(await chat.createThread(C, doctor, input)).created).toBe(true);
    expect(ok(await chat.createThread(C, doctor, input)).created).toBe(false);
    expect(await chat.createThread(C, staff, input)).toMatchObject({ ok: false, error: { code: 'CHAT_THREAD_EXISTS' } });
    // Without an id, each creation is a new thread.
    const a = ok(await chat.createThread(C, staff, parse('chat:create', { kind: 'staff', title: 'x' })));
    const b = ok(await chat.createThread(C, staff, parse('chat:create', { kind: 'staff', title: 'x' })));
    expect(a.thread.id).not.toBe(b.thread.id);
  });

  it('change members through their members; a patient thread has no list to change', async () => {
    ok(await chat.createThread(C, doctor, parse('chat:create', { kind: 'staff', id: 'ward', title: 'Ward' })));
    expect(await send(staff, 'staff.ward', 'hi')).toMatchObject({ ok: false, error: { code: 'CHAT_NOT_MEMBER' } });
    expect(ok(await chat.updateMembers(C, doctor, parse('chat:members', { threadId: 'staff.ward', add: ['staff:sato'] }))).thread.memberCount).toBe(2);
    ok(await send(staff, 'staff.ward', 'hi'));
    // Not a member: may not change the list.
    expect(await chat.updateMembers(C, caller('staff', 'staff:other'), parse('chat:members', { threadId: 'staff.ward', add: ['staff:other'] }))).toMatchObject({
      ok: false,
      error: { code: 'CHAT_NOT_MEMBER' },
    });
    ok(await chat.updateMembers(C, doctor, parse('chat:members', { threadId: 'staff.ward', remove: ['staff:sato'] })));
    expect(await send(staff, 'staff.ward', 'again')).toMatchObject({ ok: false, error: { code: 'CHAT_NOT_MEMBER' } });
    ok(await chat.open(C, patientA, 'patient.TA'));
    expect(await chat.updateMembers(C, staff, parse('chat:members', { threadId: 'patient.TA', add: ['staff:x'] }))).toMatchObject({
      ok: false,
      error: { code: 'CHAT_MEMBERS_FIXED' },
    });
  });

  it('list what each caller may read, with their read position', async () => {
    ok(await send(patientA, 'patient.TA', 'a'));
    ok(await send(patientB, 'patient.TB', 'b'));
    ok(await chat.createThread(C, doctor, parse('chat:create', { kind: 'staff', id: 'mine', title: 'Mine', members: ['staff:sato'] })));
    ok(await chat.createThread(C, doctor, parse('chat:create', { kind: 'staff', id: 'theirs', title: 'Theirs' })));
    ok(await chat.markRead(C, staff, parse('chat:read', { threadId: 'patient.TA', upToId: '1-0' })));
    const forStaff = ok(await chat.listThreads(C, staff)).threads;
    expect(forStaff.map((t) => t.id).sort()).toEqual(['patient.TA', 'patient.TB', 'staff.mine']);
    expect(forStaff.find((t) => t.id === 'patient.TA')).toMatchObject({ readSeq: 1, lastSeq: 1, title: 'A-001' });
    expect(ok(await chat.listThreads(C, patientB)).threads.map((t) => t.id)).toEqual(['patient.TB']);
  });

  it('make a 500-member staff channel in one call (createStaffChannel, for benchmarks), which every member finds in their list', async () => {
    const members = Array.from({ length: 500 }, (_, i) => `staff:bench-${i}`);
    const thread = await createStaffChannel(redis, C, { id: 'bench', title: 'Bench', members, createdBy: members[0]! });
    expect(thread).toMatchObject({ id: 'staff.bench', memberCount: 500 });
    // Again: the same channel.
    expect((await createStaffChannel(redis, C, { id: 'bench', title: 'Bench', members, createdBy: members[0]! })).createdAt).toBe(thread.createdAt);
    for (const sub of [members[0]!, members[499]!]) {
      expect(ok(await chat.listThreads(C, caller('staff', sub))).threads.map((t) => t.id)).toEqual(['staff.bench']);
    }
  });
});

describe('attachments', () => {
  it('are stored encrypted: the bytes at rest are not the file, and open only with the key and in their place', async () => {
    const { attachment } = ok(await chat.uploadAttachment(C, patientA, { threadId: 'patient.TA', declaredType: 'image/png', name: '../../写真.png', bytes: PNG }));
    expect(attachment).toMatchObject({ type: 'image/png', size: PNG.length, name: '写真.png', threadId: 'patient.TA' });
    // Outside Redis: a file of the attachment storage, mode 0600.
    expect(await redis.exists(chatKeys(C).attachmentBlob(attachment.id))).toBe(0);
    expect(statSync(fileOf(attachment.id)).mode & 0o777).toBe(0o600);
    const sealed = readFileSync(fileOf(attachment.id));
    expect(sealed.includes(PNG.subarray(0, 8))).toBe(false);
    expect(sealed.includes(Buffer.from('検査結果'))).toBe(false);
    const aad = attachmentAdditionalData(C, 'patient.TA', attachment.id);
    expect(new AttachmentCipher(KEY).open(sealed, aad)).toEqual(PNG);
    expect(() => new AttachmentCipher(randomBytes(32)).open(sealed, aad)).toThrow();
    expect(() => new AttachmentCipher(KEY).open(sealed, attachmentAdditionalData(C, 'patient.TB', attachment.id))).toThrow();
    const tampered = Buffer.from(sealed);
    tampered[tampered.length - 1]! ^= 1;
    expect(() => new AttachmentCipher(KEY).open(tampered, aad)).toThrow();
  });

  it('wait to be sent (expiring otherwise), are sent by their uploader, and read by members only, audited', async () => {
    const { attachment } = ok(await chat.uploadAttachment(C, patientA, { threadId: 'patient.TA', declaredType: 'image/png', name: 'x.png', bytes: PNG }));
    expect(await redis.ttl(chatKeys(C).attachment(attachment.id))).toBeGreaterThan(3600);
    // Until sent, only its uploader sees it.
    expect(await chat.downloadAttachment(C, staff, attachment.id)).toMatchObject({ ok: false, error: { code: 'CHAT_ATTACHMENT_NOT_FOUND' } });
    // Nobody else can send it, nor can it go to another thread.
    expect(await send(staff, 'patient.TA', 'see', undefined, [attachment.id])).toMatchObject({ ok: false, error: { code: 'CHAT_ATTACHMENT_NOT_FOUND' } });
    ok(await chat.open(C, patientA, 'patient.TA'));
    const sent = ok(await send(patientA, 'patient.TA', '', undefined, [attachment.id]));
    expect(sent.message.attachments).toEqual([{ id: attachment.id, type: 'image/png', size: PNG.length, name: 'x.png' }]);
    // Sent: kept for the clinic's retention (30 days by default), never for good.
    const kept = await redis.ttl(chatKeys(C).attachment(attachment.id));
    expect(kept).toBeGreaterThan(29 * 86_400);
    expect(kept).toBeLessThanOrEqual(30 * 86_400);

    const read = ok(await chat.downloadAttachment(C, staff, attachment.id));
    expect(read.bytes).toEqual(PNG);
    expect((await readAudit(redis, C, 1))[0]).toMatchObject({ actor: 'staff:sato', action: 'chat.attachment.read', subject: `patient.TA/${attachment.id}` });
    expect(await chat.downloadAttachment(C, patientB, attachment.id)).toMatchObject({ ok: false, error: { code: 'CHAT_NOT_MEMBER' } });
    expect(await chat.downloadAttachment(C, staff, 'nosuchattachment0000')).toMatchObject({ ok: false, error: { code: 'CHAT_ATTACHMENT_NOT_FOUND' } });
  });

  it('are checked by their first bytes, not by the type they claim, and by size', async () => {
    const upload = (bytes: Buffer, declaredType: string | null) => chat.uploadAttachment(C, patientA, { threadId: 'patient.TA', declaredType, name: 'f', bytes });
    const html = Buffer.from('<!doctype html><script>alert(1)</script>');
    const exe = Buffer.concat([Buffer.from('MZ'), randomBytes(200)]);
    expect(await upload(html, 'image/png')).toMatchObject({ ok: false, error: { code: 'CHAT_ATTACHMENT_TYPE_NOT_ALLOWED' } });
    expect(await upload(exe, 'image/png')).toMatchObject({ ok: false, error: { code: 'CHAT_ATTACHMENT_TYPE_NOT_ALLOWED' } });
    expect(await upload(exe, 'application/octet-stream')).toMatchObject({ ok: false, error: { code: 'CHAT_ATTACHMENT_TYPE_NOT_ALLOWED' } });
    expect(await upload(PNG, 'application/pdf')).toMatchObject({ ok: false, error: { code: 'CHAT_ATTACHMENT_TYPE_NOT_ALLOWED' } });
    expect(await upload(Buffer.concat([PNG, Buffer.alloc(64 * 1024)]), 'image/png')).toMatchObject({ ok: false, error: { code: 'CHAT_ATTACHMENT_TOO_LARGE' } });
    expect(ok(await upload(Buffer.from('%PDF-1.7\n%…'), 'application/pdf')).attachment).toMatchObject({ type: 'application/pdf', name: 'f.pdf' });
    expect(ok(await upload(PNG, null)).attachment.type).toBe('image/png');
    expect(await redis.keys('*att:*:blob')).toHaveLength(0);
    expect(readdirSync(join(storageDir, C)).filter((f) => f.endsWith('.bin')).length).toBeGreaterThanOrEqual(2);
  });

  it('recognise PNG, JPEG, WebP and PDF by their signatures and clean file names', () => {
    expect(sniffAttachmentType(PNG)).toBe('image/png');
    expect(sniffAttachmentType(Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0x10]))).toBe('image/jpeg');
    expect(sniffAttachmentType(Buffer.concat([Buffer.from('RIFF'), Buffer.alloc(4), Buffer.from('WEBPVP8 ')]))).toBe('image/webp');
    expect(sniffAttachmentType(Buffer.concat([Buffer.from('RIFF'), Buffer.alloc(4), Buffer.from('WAVEfmt ')]))).toBeNull();
    expect(sniffAttachmentType(Buffer.from('%PDF-1.4'))).toBe('application/pdf');
    expect(sniffAttachmentType(Buffer.from('GIF89a'))).toBeNull();
    expect(sniffAttachmentType(Buffer.alloc(0))).toBeNull();
    expect(cleanFileName('C:\\Users\\x\\report', 'application/pdf')).toBe('report.pdf');
    expect(cleanFileName('photo.JPEG', 'image/jpeg')).toBe('photo.JPEG');
    expect(cleanFileName('a"b<c>.png', 'image/png')).toBe('abc.png');
    expect(cleanFileName('.htaccess', 'image/png')).toBe('attachment.png');
    expect(cleanFileName(null, 'image/webp')).toBe('attachment.webp');
  });
});
