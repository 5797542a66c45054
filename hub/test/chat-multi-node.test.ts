/**
 * Chat across two hub nodes (two processes on one Redis): every member gets
 * every message once, whichever node they and the sender are on; receipts,
 * typing and staff presence cross nodes too.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { patientThreadId } from '@clinic-hub/protocol';
import { startHubProcess, startTestHubs, stopTestHubs, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { chatRequest, connectChat, newClientMessageId, recordChat, type ChatSocket } from '@clinic-hub/test-kit/chat-client';
import { connectQueue, expectOk, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import type { TestRedis } from '@clinic-hub/test-kit/redis';
import { sleep, waitFor } from '@clinic-hub/test-kit/wait';

/** After the last expected delivery, how long to keep listening for a duplicate. */
const SETTLE_MS = 400;

let redis: TestRedis;
let nodeA: HubNodeProcess;
let nodeB: HubNodeProcess;
let reception: QueueSocket;
const sockets: ChatSocket[] = [];

async function open(node: HubNodeProcess, role: 'admin' | 'staff' | 'doctor' | 'patient', sub: string, ticket?: string): Promise<ChatSocket> {
  const socket = await connectChat(node.url, await tokenFor(role, 'testclinic', { sub, ...(ticket ? { ticket } : {}) }));
  sockets.push(socket);
  return socket;
}

async function join(socket: ChatSocket, threadId: string) {
  return expectOk(await chatRequest(socket, 'chat:join', { threadId }));
}

async function checkIn(): Promise<string> {
  return expectOk(await request(reception, 'queue:checkin', { dept: 'gp' })).event.ticket.id;
}

beforeAll(async () => {
  ({ redis, nodes: [nodeA, nodeB] } = await startTestHubs(['chat-a', 'chat-b']));
  reception = await connectQueue(nodeA.url, await tokenFor('staff'));
});

afterEach(() => {
  for (const socket of sockets.splice(0)) socket.close();
});

afterAll(async () => {
  reception?.close();
  await stopTestHubs(redis, [nodeA, nodeB]);
});

describe('chat on two hub nodes', () => {
  it('delivers a message sent on node A to the members on A and on B, once each, both ways', async () => {
    const ticket = await checkIn();
    const threadId = patientThreadId(ticket);
    const staffA = await open(nodeA, 'staff', 'staff:sato');
    const doctorA = await open(nodeA, 'doctor', 'doctor:ito');
    const staffB = await open(nodeB, 'staff', 'staff:kato');
    const patientB = await open(nodeB, 'patient', `patient:${ticket}`, ticket);
    const members = [staffA, doctorA, staffB, patientB];
    const got = members.map((s) => recordChat(s));
    for (const socket of members) await join(socket, threadId);

    const fromA = expectOk(await chatRequest(staffA, 'chat:send', { threadId, clientMessageId: newClientMessageId(), text: 'ご用件を伺います' }));
    expect(fromA).toMatchObject({ duplicate: false, message: { id: '1-0', seq: 1, sender: 'staff:sato', senderRole: 'staff', text: 'ご用件を伺います' } });
    const fromB = expectOk(await chatRequest(patientB, 'chat:send', { threadId, clientMessageId: newClientMessageId(), text: '薬について質問があります' }));
    expect(fromB.message.id).toBe('2-0');

    for (const record of got) await waitFor('both messages on every member', () => record.messages.length >= 2);
    await sleep(SETTLE_MS);
    for (const [i, record] of got.entries()) {
      expect(record.messages, `member ${i}`).toEqual([fromA.message, fromB.message]);
      expect(record.errors).toEqual([]);
    }
  });

  it('tells a clinician who has not joined the thread that there is something new, without the message', async () => {
    const ticket = await checkIn();
    const threadId = patientThreadId(ticket);
    const patientA = await open(nodeA, 'patient', `patient:${ticket}`, ticket);
    const watcherB = await open(nodeB, 'staff', 'staff:watcher');
    const otherTicket = await checkIn();
    const otherPatientB = await open(nodeB, 'patient', `patient:${otherTicket}`, otherTicket);
    const [watched, other] = [recordChat(watcherB), recordChat(otherPatientB)];
    await join(patientA, threadId);
    const sent = expectOk(await chatRequest(patientA, 'chat:send', { threadId, clientMessageId: newClientMessageId(), text: 'すみません' }));
    await waitFor('the activity notice on node B', () => watched.activity.length > 0);
    await sleep(SETTLE_MS);
    expect(watched.activity).toEqual([{ threadId, kind: 'patient', seq: sent.message.seq, sender: `patient:${ticket}`, at: sent.message.at }]);
    expect(watched.messages).toEqual([]);
    expect(watched.threads.map((t) => t.id)).toContain(threadId);
    expect(other).toMatchObject({ messages: [], activity: [], threads: [] });
  });

  it('delivers a staff channel to its members on both nodes, and to no one else', async () => {
    const members = Array.from({ length: 12 }, (_, i) => `staff:member-${i}`);
    const creator = await open(nodeA, 'doctor', 'doctor:lead');
    const created = expectOk(await chatRequest(creator, 'chat:create', { kind: 'staff', title: '病棟連絡', members }));
    const threadId = created.thread.id;
    expect(created.thread).toMatchObject({ kind: 'staff', memberCount: 13, title: '病棟連絡' });

    const memberSockets = await Promise.all(members.map((sub, i) => open(i % 2 ? nodeB : nodeA, 'staff', sub)));
    const outsider = await open(nodeB, 'staff', 'staff:outsider');
    const got = memberSockets.map((s) => recordChat(s));
    const outsiderGot = recordChat(outsider);
    for (const socket of memberSockets) await join(socket, threadId);
    await join(creator, threadId);
    expect(await chatRequest(outsider, 'chat:join', { threadId })).toMatchObject({ ok: false, error: { code: 'CHAT_NOT_MEMBER' } });

    const sent = [];
    for (let i = 0; i < 3; i++) sent.push(expectOk(await chatRequest(creator, 'chat:send', { threadId, clientMessageId: newClientMessageId(), text: `連絡 ${i}` })).message);
    for (const record of got) await waitFor('three messages on every member', () => record.messages.length >= 3);
    await sleep(SETTLE_MS);
    for (const record of got) expect(record.messages).toEqual(sent);
    expect(outsiderGot.messages).toEqual([]);
    expect(outsiderGot.activity).toEqual([]);
  });

  it('carries read receipts and typing across nodes; typing is not echoed to its sender', async () => {
    const ticket = await checkIn();
    const threadId = patientThreadId(ticket);
    const patientA = await open(nodeA, 'patient', `patient:${ticket}`, ticket);
    const staffB = await open(nodeB, 'staff', 'staff:reader');
    const [patientGot, staffGot] = [recordChat(patientA), recordChat(staffB)];
    await join(patientA, threadId);
    await join(staffB, threadId);
    const sent = expectOk(await chatRequest(patientA, 'chat:send', { threadId, clientMessageId: newClientMessageId(), text: '予約の変更をお願いします' }));

    expectOk(await chatRequest(staffB, 'chat:typing', { threadId, typing: true }));
    await waitFor('typing on node A', () => patientGot.typing.length > 0);
    expect(patientGot.typing[0]).toMatchObject({ threadId, member: 'staff:reader', role: 'staff', typing: true });
    // Too often: refused, and not relayed.
    expect(await chatRequest(staffB, 'chat:typing', { threadId, typing: true })).toMatchObject({ ok: false, error: { code: 'RATE_LIMITED' } });
    expectOk(await chatRequest(staffB, 'chat:typing', { threadId, typing: false }));
    await waitFor('typing stopped on node A', () => patientGot.typing.length === 2);
    expect(patientGot.typing[1]).toMatchObject({ typing: false });

    const read = expectOk(await chatRequest(staffB, 'chat:read', { threadId, upToId: sent.message.id }));
    expect(read.receipt).toMatchObject({ threadId, member: 'staff:reader', readSeq: 1, readId: '1-0' });
    await waitFor('the receipt on node A', () => patientGot.receipts.length > 0);
    await sleep(SETTLE_MS);
    expect(patientGot.receipts).toEqual([read.receipt]);
    expect(staffGot.receipts).toEqual([read.receipt]);
    expect(staffGot.typing).toEqual([]);
  });

  it('shows staff presence to the clinic\'s patients on the other node; it goes when the last socket goes, wherever it was', async () => {
    const ticket = await checkIn();
    const patientB = await open(nodeB, 'patient', `patient:${ticket}`, ticket);
    const seen = recordChat(patientB);
    const latest = () => seen.presence.filter((p) => p.member === 'staff:nurse').at(-1);

    const onA = await open(nodeA, 'staff', 'staff:nurse');
    await waitFor('the nurse online on node B', () => latest()?.status === 'online');
    expectOk(await chatRequest(onA, 'chat:set-presence', { status: 'busy' }));
    await waitFor('the nurse busy on node B', () => latest()?.status === 'busy');
    // A second socket on the other node keeps the status the nurse chose.
    const onB = await open(nodeB, 'staff', 'staff:nurse');
    expect(await expectOk(await chatRequest(patientB, 'chat:staff-presence', {})).staff).toContainEqual(
      expect.objectContaining({ member: 'staff:nurse', role: 'staff', status: 'busy' }),
    );

    onA.close();
    await sleep(SETTLE_MS);
    expect(latest()?.status).toBe('busy');
    onB.close();
    await waitFor('the nurse offline on node B', () => latest()?.status === 'offline');
    expect(expectOk(await chatRequest(patientB, 'chat:staff-presence', {})).staff.map((p) => p.member)).not.toContain('staff:nurse');
    // Patients do not set presence.
    expect(await chatRequest(patientB, 'chat:set-presence', { status: 'online' })).toMatchObject({ ok: false, error: { code: 'AUTH_FORBIDDEN' } });
  });

  it('forgets the clinicians of a node that dies without a word, once the other nodes notice', { timeout: 60_000 }, async () => {
    const nodeC = await startHubProcess({ redisUrl: redis.url, nodeId: 'chat-c' });
    try {
      const watcher = await open(nodeA, 'staff', 'staff:watcher');
      const seen = recordChat(watcher);
      await open(nodeC, 'doctor', 'doctor:crash');
      await waitFor('the doctor online', () => seen.presence.some((p) => p.member === 'doctor:crash' && p.status === 'online'));
      nodeC.process.kill('SIGKILL');
      await waitFor('the doctor offline', () => seen.presence.some((p) => p.member === 'doctor:crash' && p.status === 'offline'), 45_000);
    } finally {
      await nodeC.stop().catch(() => undefined);
    }
  });
});
