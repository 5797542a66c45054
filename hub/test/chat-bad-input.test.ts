/**
 * Bad chat input gets an error with a code, the sender's socket stays up
 * (except past the transport's own limit), and the node keeps serving
 * everyone else.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHAT_MAX_TEXT_LENGTH } from '@clinic-hub/protocol';
import { startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { chatRequest, chatRequestRaw, connectChat, followThread, newClientMessageId, recordChat, type ChatSocket } from '@clinic-hub/test-kit/chat-client';
import { expectOk } from '@clinic-hub/test-kit/queue-client';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { waitFor } from '@clinic-hub/test-kit/wait';

let redis: TestRedis;
let hub: HubNodeProcess;
let sender: ChatSocket;
let healthy: ChatSocket;
let healthyFollower: ReturnType<typeof followThread>;
let threadId: string;
const sockets: ChatSocket[] = [];

async function open(sub: string): Promise<ChatSocket> {
  const socket = await connectChat(hub.url, await tokenFor('staff', 'testclinic', { sub }));
  sockets.push(socket);
  return socket;
}

/** A message from another member still reaches the healthy member: the node serves on. */
async function expectStillServing(): Promise<void> {
  const probe = await open('staff:probe');
  const sent = expectOk(await chatRequest(probe, 'chat:send', { threadId, clientMessageId: newClientMessageId(), text: 'still here' }));
  await waitFor('the probe message on the healthy member', () => healthyFollower.lastSeq === sent.message.seq);
  expect(hub.process.exitCode).toBeNull();
  probe.close();
}

beforeAll(async () => {
  redis = await startTestRedis();
  hub = await startHubProcess({ redisUrl: redis.url, nodeId: 'chat-bad-input', env: { HUB_CHAT_MESSAGES_PER_SECOND: '2' } });
  const lead = await open('staff:lead');
  threadId = expectOk(await chatRequest(lead, 'chat:create', { kind: 'staff', id: 'bad', title: 'bad input', members: ['staff:sender', 'staff:healthy', 'staff:probe'] })).thread.id;
  sender = await open('staff:sender');
  healthy = await open('staff:healthy');
  healthyFollower = followThread(healthy, threadId);
  await healthyFollower.resync();
  expectOk(await chatRequest(sender, 'chat:join', { threadId }));
});

afterAll(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  await hub?.stop();
  await redis?.cleanup();
});

describe('bad chat input', () => {
  it('INVALID_PAYLOAD for payloads that do not match the schema, naming the field', async () => {
    const id = newClientMessageId();
    const cases: [string, unknown, string | null][] = [
      ['chat:send', { threadId, text: 'no id' }, 'clientMessageId'],
      ['chat:send', { threadId, clientMessageId: 'short', text: 'x' }, 'clientMessageId'],
      ['chat:send', { threadId, clientMessageId: 'has spaces in it', text: 'x' }, 'clientMessageId'],
      ['chat:send', { threadId: 'nonsense', clientMessageId: id, text: 'x' }, 'threadId'],
      ['chat:send', { threadId: 'staff.../../etc', clientMessageId: id, text: 'x' }, 'threadId'],
      ['chat:send', { threadId, clientMessageId: id, text: 42 }, 'text'],
      ['chat:send', { threadId, clientMessageId: id, text: 'bell\u0007' }, 'text'],
      ['chat:send', { threadId, clientMessageId: id, text: 'x', attachments: ['../x'] }, 'attachments.0'],
      ['chat:send', { threadId, clientMessageId: id, text: 'x', attachments: Array(6).fill('aaaaaaaaaaaaaaaaaaaa') }, 'attachments'],
      ['chat:send', 'hello', null],
      ['chat:send', null, null],
      ['chat:join', { threadId, afterId: 'latest' }, 'afterId'],
      ['chat:join', { threadId, afterId: '5-1' }, 'afterId'],
      ['chat:join', { threadId, limit: 1000 }, 'limit'],
      ['chat:history', { threadId, before: '5-0', after: '1-0' }, 'before'],
      ['chat:read', { threadId }, 'upToId'],
      ['chat:typing', { threadId, typing: 'yes' }, 'typing'],
      ['chat:create', { kind: 'patient', title: 'x' }, 'kind'],
      ['chat:create', { kind: 'staff', title: '' }, 'title'],
      ['chat:create', { kind: 'staff', title: 'x', members: ['has space'] }, 'members.0'],
      ['chat:set-presence', { status: 'invisible' }, 'status'],
      ['chat:threads', { extra: true }, null],
    ];
    for (const [event, payload, field] of cases) {
      const ack = await chatRequestRaw(sender, event, payload);
      expect(ack, `${event} ${JSON.stringify(payload)?.slice(0, 60)}`).toMatchObject({ ok: false, error: { code: 'INVALID_PAYLOAD' } });
      if (field) expect(ack.error!.detail).toMatch(new RegExp(`^${field.replaceAll('.', '\\.')}:`));
    }
    expect(await chatRequestRaw(sender, 'chat:send')).toMatchObject({ ok: false, error: { code: 'INVALID_PAYLOAD' } });
    await expectStillServing();
  });

  it('CHAT_MESSAGE_TOO_LONG over 2000 characters and CHAT_MESSAGE_EMPTY for nothing to say; nothing is stored', async () => {
    const before = healthyFollower.lastSeq;
    const long = await chatRequest(sender, 'chat:send', { threadId, clientMessageId: newClientMessageId(), text: 'あ'.repeat(CHAT_MAX_TEXT_LENGTH + 1) });
    expect(long).toMatchObject({ ok: false, error: { code: 'CHAT_MESSAGE_TOO_LONG', detail: '2001 > 2000 characters' } });
    expect(await chatRequest(sender, 'chat:send', { threadId, clientMessageId: newClientMessageId(), text: '   ' })).toMatchObject({
      ok: false,
      error: { code: 'CHAT_MESSAGE_EMPTY' },
    });
    expect(await chatRequest(sender, 'chat:send', { threadId, clientMessageId: newClientMessageId(), text: 'x', attachments: ['aaaaaaaaaaaaaaaaaaaa'] })).toMatchObject({
      ok: false,
      error: { code: 'CHAT_ATTACHMENT_NOT_FOUND' },
    });
    const history = expectOk(await chatRequest(sender, 'chat:history', { threadId }));
    expect(history.messages.at(-1)?.seq ?? 0).toBe(before);
    await expectStillServing();
  });

  it('PAYLOAD_TOO_LARGE over 16 KiB, before anything else; past 1 MiB only that transport closes', async () => {
    expect(await chatRequest(sender, 'chat:send', { threadId, clientMessageId: newClientMessageId(), text: 'x'.repeat(17 * 1024) })).toMatchObject({
      ok: false,
      error: { code: 'PAYLOAD_TOO_LARGE' },
    });
    const doomed = await open('staff:sender');
    const closed = new Promise<string>((resolve) => doomed.once('disconnect', (reason) => resolve(reason)));
    doomed.emit('chat:send', { threadId, clientMessageId: newClientMessageId(), text: 'x'.repeat(1_100_000) }, () => undefined);
    expect(await closed).toMatch(/transport (close|error)/);
    expect(sender.connected).toBe(true);
    await expectStillServing();
  });

  it('UNKNOWN_EVENT for events the chat namespace does not know, queue events included', async () => {
    for (const event of ['chat:nope', 'queue:checkin', 'chat:delete', '__proto__', 'x'.repeat(300)]) {
      const ack = await chatRequestRaw(sender, event, {});
      expect(ack, event.slice(0, 20)).toMatchObject({ ok: false, error: { code: 'UNKNOWN_EVENT' } });
      expect(ack.error!.detail!.length).toBeLessThanOrEqual(64);
    }
    await expectStillServing();
  });

  it('answers bad events sent without an ack with hub:error', async () => {
    const got = recordChat(sender);
    const emit = (event: string, payload: unknown) => (sender as unknown as { emit(e: string, p: unknown): void }).emit(event, payload);
    emit('chat:nope', {});
    emit('chat:send', { threadId });
    emit('chat:create', { kind: 'staff', title: 'x'.repeat(17 * 1024) });
    await waitFor('three hub:error events', () => got.errors.length >= 3);
    expect(got.errors).toEqual([
      expect.objectContaining({ code: 'UNKNOWN_EVENT', event: 'chat:nope' }),
      expect.objectContaining({ code: 'INVALID_PAYLOAD', event: 'chat:send' }),
      expect.objectContaining({ code: 'PAYLOAD_TOO_LARGE', event: 'chat:create' }),
    ]);
    await expectStillServing();
  });

  it('RATE_LIMITED for a flood of messages, and for typing more than once a second', async () => {
    const flooder = await open('staff:sender');
    const acks = [];
    for (let i = 0; i < 20; i++) acks.push(await chatRequest(flooder, 'chat:send', { threadId, clientMessageId: newClientMessageId(), text: `flood ${i}` }));
    const limited = acks.filter((a) => !a.ok);
    expect(limited.length).toBeGreaterThan(0);
    for (const ack of limited) expect(ack).toMatchObject({ ok: false, error: { code: 'RATE_LIMITED' } });
    // The burst allowance (5 s at 2 per second) went through, the rest did not.
    expect(acks.filter((a) => a.ok).length).toBeLessThanOrEqual(11);

    expect(await chatRequest(sender, 'chat:typing', { threadId: 'staff.not-joined', typing: true })).toMatchObject({ ok: false, error: { code: 'CHAT_NOT_JOINED' } });
    expectOk(await chatRequest(sender, 'chat:typing', { threadId, typing: true }));
    expect(await chatRequest(sender, 'chat:typing', { threadId, typing: true })).toMatchObject({ ok: false, error: { code: 'RATE_LIMITED' } });
    await expectStillServing();
  });

  it('AUTH_EXPIRED when the token expires: hub:session-ended, then the hub disconnects the socket', async () => {
    const shortLived = await connectChat(hub.url, await tokenFor('staff', 'testclinic', { sub: 'staff:sender', ttlSeconds: 2 }));
    sockets.push(shortLived);
    const ended = new Promise<{ code: string }>((resolve) => shortLived.once('hub:session-ended', resolve));
    const disconnected = new Promise<string>((resolve) => shortLived.once('disconnect', (reason) => resolve(reason)));
    expectOk(await chatRequest(shortLived, 'chat:threads', {}));
    expect(await ended).toMatchObject({ code: 'AUTH_EXPIRED' });
    expect(await disconnected).toBe('io server disconnect');
    await expectStillServing();
  });
});
