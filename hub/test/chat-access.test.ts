/**
 * Who may read chat: members only, in every way there is to read it
 * (history, a resume, live delivery, attachments over HTTP); a patient only
 * their own thread; displays and services not at all.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHAT_ATTACHMENTS_PATH, patientThreadId } from '@clinic-hub/protocol';
import { startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { signed, tampered } from '@clinic-hub/test-kit/forged-tokens';
import { chatConnectError, chatRequest, connectChat, newClientMessageId, recordChat, type ChatSocket } from '@clinic-hub/test-kit/chat-client';
import { connectQueue, expectOk, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { sleep, waitFor } from '@clinic-hub/test-kit/wait';

const PNG = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.from('a private picture')]);

let redis: TestRedis;
let hub: HubNodeProcess;
let reception: QueueSocket;
const sockets: ChatSocket[] = [];

/** Two patients with a thread each, a staff channel, and an attachment in patient A's thread. */
const world = {
  ticketA: '',
  ticketB: '',
  threadA: '',
  staffThread: '',
  attachmentId: '',
};

type Role = Parameters<typeof tokenFor>[0];
const token = (role: Role, sub: string, ticket?: string, clinic = 'testclinic') => tokenFor(role, clinic, { sub, ...(ticket ? { ticket } : {}) });

async function open(role: Role, sub: string, ticket?: string, clinic = 'testclinic'): Promise<ChatSocket> {
  const socket = await connectChat(hub.url, await token(role, sub, ticket, clinic));
  sockets.push(socket);
  return socket;
}

async function http(method: string, path: string, bearer: string | null, body?: Buffer, type = 'image/png') {
  const res = await fetch(`${hub.url}${path}`, {
    method,
    headers: { ...(bearer ? { authorization: `Bearer ${bearer}` } : {}), ...(body ? { 'content-type': type } : {}) },
    ...(body ? { body } : {}),
  });
  const bytes = Buffer.from(await res.arrayBuffer());
  let json: any = null;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    // the file itself
  }
  return { status: res.status, bytes, json };
}

beforeAll(async () => {
  redis = await startTestRedis();
  hub = await startHubProcess({ redisUrl: redis.url, nodeId: 'chat-access' });
  reception = await connectQueue(hub.url, await tokenFor('staff'));
  world.ticketA = expectOk(await request(reception, 'queue:checkin', { dept: 'gp' })).event.ticket.id;
  world.ticketB = expectOk(await request(reception, 'queue:checkin', { dept: 'gp' })).event.ticket.id;
  world.threadA = patientThreadId(world.ticketA);

  const patientA = await open('patient', `patient:${world.ticketA}`, world.ticketA);
  expectOk(await chatRequest(patientA, 'chat:join', { threadId: world.threadA }));
  const upload = await http('POST', `${CHAT_ATTACHMENTS_PATH}?thread=${world.threadA}&name=photo.png`, await token('patient', `patient:${world.ticketA}`, world.ticketA), PNG);
  expect(upload.status).toBe(201);
  world.attachmentId = upload.json.attachment.id;
  expectOk(await chatRequest(patientA, 'chat:send', { threadId: world.threadA, clientMessageId: newClientMessageId(), text: '処方について', attachments: [world.attachmentId] }));

  const lead = await open('doctor', 'doctor:lead');
  world.staffThread = expectOk(await chatRequest(lead, 'chat:create', { kind: 'staff', id: 'doctors', title: '医師', members: ['doctor:second'] })).thread.id;
  expectOk(await chatRequest(lead, 'chat:send', { threadId: world.staffThread, clientMessageId: newClientMessageId(), text: '申し送り' }));
});

afterAll(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  reception?.close();
  await hub?.stop();
  await redis?.cleanup();
});

describe('who may connect to chat', () => {
  it('refuses display and service tokens, and tokens that are missing, forged or for another clinic', async () => {
    expect(await chatConnectError(hub.url, await tokenFor('display'))).toMatchObject({ code: 'AUTH_FORBIDDEN' });
    expect(await chatConnectError(hub.url, await tokenFor('service'))).toMatchObject({ code: 'AUTH_FORBIDDEN' });
    expect(await chatConnectError(hub.url, undefined)).toMatchObject({ code: 'AUTH_REQUIRED' });
    expect(await chatConnectError(hub.url, await signed({ role: 'staff', clinic: 'testclinic' }, { secret: 'x'.repeat(40) }))).toMatchObject({ code: 'AUTH_INVALID' });
    expect(await chatConnectError(hub.url, tampered(await tokenFor('display'), { role: 'staff' }))).toMatchObject({ code: 'AUTH_INVALID' });
    expect(await chatConnectError(hub.url, await tokenFor('staff', 'otherclinic'), { clinic: 'testclinic' })).toMatchObject({ code: 'AUTH_WRONG_CLINIC' });
    // And the display cannot fetch attachments either.
    const res = await http('GET', `${CHAT_ATTACHMENTS_PATH}/${world.attachmentId}`, await tokenFor('display'));
    expect(res.status).toBe(403);
    expect(res.json).toMatchObject({ error: { code: 'AUTH_FORBIDDEN' } });
  });
});

describe('a patient', () => {
  it('cannot read or write another patient\'s thread, in any way', async () => {
    const patientB = await open('patient', `patient:${world.ticketB}`, world.ticketB);
    const got = recordChat(patientB);
    const refused = { ok: false, error: { code: 'CHAT_NOT_MEMBER' } };
    expect(await chatRequest(patientB, 'chat:join', { threadId: world.threadA })).toMatchObject(refused);
    expect(await chatRequest(patientB, 'chat:join', { threadId: world.threadA, afterId: '0-0' })).toMatchObject(refused);
    expect(await chatRequest(patientB, 'chat:history', { threadId: world.threadA })).toMatchObject(refused);
    expect(await chatRequest(patientB, 'chat:history', { threadId: world.threadA, after: '0-0' })).toMatchObject(refused);
    expect(await chatRequest(patientB, 'chat:send', { threadId: world.threadA, clientMessageId: newClientMessageId(), text: 'hi' })).toMatchObject(refused);
    expect(await chatRequest(patientB, 'chat:read', { threadId: world.threadA, upToId: '1-0' })).toMatchObject(refused);
    expect(await chatRequest(patientB, 'chat:typing', { threadId: world.threadA, typing: true })).toMatchObject({ ok: false, error: { code: 'CHAT_NOT_JOINED' } });
    // Nor staff channels, even if named on one.
    expect(await chatRequest(patientB, 'chat:join', { threadId: world.staffThread })).toMatchObject(refused);
    const res = await http('GET', `${CHAT_ATTACHMENTS_PATH}/${world.attachmentId}`, await token('patient', `patient:${world.ticketB}`, world.ticketB));
    expect(res.status).toBe(403);
    expect(res.json).toMatchObject({ error: { code: 'CHAT_NOT_MEMBER' } });
    expect(res.bytes.includes(Buffer.from('a private picture'))).toBe(false);

    // Nothing of thread A reaches patient B live.
    const patientA = await open('patient', `patient:${world.ticketA}`, world.ticketA);
    expectOk(await chatRequest(patientA, 'chat:send', { threadId: world.threadA, clientMessageId: newClientMessageId(), text: '秘密の相談' }));
    await sleep(400);
    expect(got).toMatchObject({ messages: [], receipts: [], activity: [], threads: [] });
    // Their own thread works.
    expect(expectOk(await chatRequest(patientB, 'chat:join', { threadId: patientThreadId(world.ticketB) })).thread).toMatchObject({ kind: 'patient' });
    expect(expectOk(await chatRequest(patientB, 'chat:threads', {})).threads.map((t) => t.id)).toEqual([patientThreadId(world.ticketB)]);
  });

  it('cannot open a thread for a ticket of its choosing, nor create threads', async () => {
    const patientB = await open('patient', `patient:${world.ticketB}`, world.ticketB);
    expect(await chatRequest(patientB, 'chat:join', { threadId: patientThreadId('made-up-ticket') })).toMatchObject({ ok: false, error: { code: 'CHAT_NOT_MEMBER' } });
    expect(await chatRequest(patientB, 'chat:create', { kind: 'staff', title: 'mine', members: [] })).toMatchObject({ ok: false, error: { code: 'AUTH_FORBIDDEN' } });
  });
});

describe('clinicians who are not members', () => {
  it('cannot read a staff channel (history, resume, live) or join it', async () => {
    const outsider = await open('staff', 'staff:outsider');
    const got = recordChat(outsider);
    const refused = { ok: false, error: { code: 'CHAT_NOT_MEMBER' } };
    expect(await chatRequest(outsider, 'chat:join', { threadId: world.staffThread })).toMatchObject(refused);
    expect(await chatRequest(outsider, 'chat:join', { threadId: world.staffThread, afterId: '0-0' })).toMatchObject(refused);
    expect(await chatRequest(outsider, 'chat:history', { threadId: world.staffThread, before: '99-0' })).toMatchObject(refused);
    // The same answer for a channel that does not exist: no way to probe for names.
    expect(await chatRequest(outsider, 'chat:join', { threadId: 'staff.no-such-channel' })).toMatchObject(refused);
    expect(expectOk(await chatRequest(outsider, 'chat:threads', {})).threads.map((t) => t.id)).not.toContain(world.staffThread);

    const member = await open('doctor', 'doctor:second');
    expectOk(await chatRequest(member, 'chat:join', { threadId: world.staffThread }));
    expectOk(await chatRequest(member, 'chat:send', { threadId: world.staffThread, clientMessageId: newClientMessageId(), text: '了解' }));
    await sleep(400);
    expect(got.messages).toEqual([]);
    expect(got.activity).toEqual([]);
  });

  it('of another clinic see nothing of this one, and its attachments are not theirs', async () => {
    const other = await open('staff', 'staff:sato', undefined, 'otherclinic');
    expect(await chatRequest(other, 'chat:join', { threadId: world.threadA })).toMatchObject({ ok: false, error: { code: 'CHAT_THREAD_NOT_FOUND' } });
    const res = await http('GET', `${CHAT_ATTACHMENTS_PATH}/${world.attachmentId}`, await token('staff', 'staff:sato', undefined, 'otherclinic'));
    expect(res.status).toBe(404);
    expect(res.json).toMatchObject({ error: { code: 'CHAT_ATTACHMENT_NOT_FOUND' } });
    const named = await http('GET', `${CHAT_ATTACHMENTS_PATH}/${world.attachmentId}?clinic=testclinic`, await token('staff', 'staff:sato', undefined, 'otherclinic'));
    expect(named.status).toBe(403);
    expect(named.json).toMatchObject({ error: { code: 'AUTH_WRONG_CLINIC' } });
  });

  it('removed from a channel stop receiving it at once', async () => {
    const lead = await open('doctor', 'doctor:lead');
    const leaving = await open('doctor', 'doctor:leaving');
    const threadId = expectOk(await chatRequest(lead, 'chat:create', { kind: 'staff', title: 'temp', members: ['doctor:leaving'] })).thread.id;
    const got = recordChat(leaving);
    expectOk(await chatRequest(leaving, 'chat:join', { threadId }));
    expectOk(await chatRequest(lead, 'chat:send', { threadId, clientMessageId: newClientMessageId(), text: 'before' }));
    await waitFor('the first message', () => got.messages.length === 1);
    expectOk(await chatRequest(lead, 'chat:members', { threadId, remove: ['doctor:leaving'] }));
    await waitFor('the removal notice', () => got.removed.includes(threadId));
    expectOk(await chatRequest(lead, 'chat:send', { threadId, clientMessageId: newClientMessageId(), text: 'after' }));
    await sleep(400);
    expect(got.messages.map((m) => m.text)).toEqual(['before']);
    expect(await chatRequest(leaving, 'chat:history', { threadId })).toMatchObject({ ok: false, error: { code: 'CHAT_NOT_MEMBER' } });
  });
});

describe('clinicians of the clinic', () => {
  it('read patient threads (audited) and their attachments (audited)', async () => {
    const doctor = await open('doctor', 'doctor:reader');
    const page = expectOk(await chatRequest(doctor, 'chat:join', { threadId: world.threadA }));
    expect(page.messages[0]).toMatchObject({ text: '処方について', attachments: [{ id: world.attachmentId, type: 'image/png' }] });
    const res = await http('GET', `${CHAT_ATTACHMENTS_PATH}/${world.attachmentId}`, await token('doctor', 'doctor:reader'));
    expect(res.status).toBe(200);
    expect(res.bytes).toEqual(PNG);
    const audit = await fetch(`${hub.url}/api/clinics/testclinic/audit?count=10`, { headers: { authorization: `Bearer ${await tokenFor('admin')}` } });
    const entries = ((await audit.json()) as { entries: { actor: string; action: string; subject: string }[] }).entries;
    expect(entries.filter((e) => e.actor === 'doctor:reader').map((e) => [e.action, e.subject])).toEqual([
      ['chat.attachment.read', `${world.threadA}/${world.attachmentId}`],
      ['chat.read', world.threadA],
    ]);
  });
});
