/**
 * The chat resume rule under real disconnections: a client cut off by a TCP
 * proxy, or moving to another node, gets exactly the messages it missed,
 * once each, in order; a resend after a lost ack is one message, not two.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChatMessage } from '@clinic-hub/protocol';
import { startTestHubs, stopTestHubs, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { chatRequest, connectChat, followThread, newClientMessageId, recordChat, type ChatSocket } from '@clinic-hub/test-kit/chat-client';
import { expectOk } from '@clinic-hub/test-kit/queue-client';
import type { TestRedis } from '@clinic-hub/test-kit/redis';
import { startTcpProxy, type TcpProxy } from '@clinic-hub/test-kit/tcp-proxy';
import { sleep, waitFor } from '@clinic-hub/test-kit/wait';

let redis: TestRedis;
let nodeA: HubNodeProcess;
let nodeB: HubNodeProcess;
/** Clients reach node B through this proxy, which the test cuts. */
let proxy: TcpProxy;
const sockets: ChatSocket[] = [];

beforeAll(async () => {
  ({ redis, nodes: [nodeA, nodeB] } = await startTestHubs(['resume-a', 'resume-b'], { env: { HUB_CHAT_MESSAGES_PER_SECOND: '0', HUB_CHAT_QUOTA_MESSAGES_PER_MINUTE_USER: '0', HUB_CHAT_QUOTA_MESSAGES_PER_MINUTE_THREAD: '0' } }));
  proxy = await startTcpProxy(nodeB.port);
});

afterAll(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  await proxy?.close();
  await stopTestHubs(redis, [nodeA, nodeB]);
});

async function open(url: string, sub: string, reconnection = false): Promise<ChatSocket> {
  const socket = await connectChat(url, await tokenFor('staff', 'testclinic', { sub }), { reconnection });
  sockets.push(socket);
  return socket;
}

async function channel(id: string, members: string[]): Promise<string> {
  const creator = await open(nodeA.url, 'staff:creator');
  return expectOk(await chatRequest(creator, 'chat:create', { kind: 'staff', id, title: id, members })).thread.id;
}

async function send(socket: ChatSocket, threadId: string, text: string): Promise<ChatMessage> {
  return expectOk(await chatRequest(socket, 'chat:send', { threadId, clientMessageId: newClientMessageId(), text })).message;
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('a chat client that loses its connection', () => {
  it('gets exactly the messages sent while it was cut off, once each, in order, after it reconnects by itself', async () => {
    const threadId = await channel('cut', ['staff:sender', 'staff:reader']);
    const sender = await open(nodeA.url, 'staff:sender');
    const reader = await open(proxy.url, 'staff:reader', true);
    const follower = followThread(reader, threadId);
    const arrivals = recordChat(reader);
    const disconnects: string[] = [];
    reader.on('disconnect', (reason) => disconnects.push(reason));
    await follower.resync();

    const before = [];
    for (let i = 0; i < 3; i++) before.push(await send(sender, threadId, `before ${i}`));
    await waitFor('the first messages on the reader', () => follower.lastSeq === 3);

    await proxy.cut();
    await waitFor('the reader to notice the cut', () => disconnects.length === 1);
    const arrivedAtCut = arrivals.messages.length;
    const during = [];
    for (let i = 0; i < 4; i++) during.push(await send(sender, threadId, `during ${i}`));
    await sleep(500);
    expect(arrivals.messages.length).toBe(arrivedAtCut);
    expect(reader.connected).toBe(false);

    await proxy.restore();
    await waitFor('the reader to catch up', () => follower.lastSeq === 7, 15_000);
    const after = await send(sender, threadId, 'after');
    await waitFor('the message after the reconnect', () => follower.lastSeq === 8);
    await sleep(300);

    expect(follower.applied).toEqual(range(1, 8));
    expect(follower.messages).toEqual([...before, ...during, after]);
    expect(disconnects).toHaveLength(1);
  });

  it('pages through a long absence: 130 missed messages arrive exactly once', async () => {
    const threadId = await channel('long', ['staff:sender', 'staff:away']);
    const sender = await open(nodeA.url, 'staff:sender');
    const away = await open(proxy.url, 'staff:away', true);
    const follower = followThread(away, threadId);
    await follower.resync();
    await send(sender, threadId, 'first');
    await waitFor('the first message', () => follower.lastSeq === 1);

    await proxy.cut();
    await waitFor('the cut', () => !away.connected);
    for (let i = 0; i < 130; i++) await send(sender, threadId, `missed ${i}`);
    await proxy.restore();
    await waitFor('all 131 messages', () => follower.lastSeq === 131, 20_000);
    await sleep(300);
    expect(follower.applied).toEqual(range(1, 131));
    expect(follower.messages.map((m) => m.text)).toEqual(['first', ...range(0, 129).map((i) => `missed ${i}`)]);
  });

  it('resumes on another node with its last id, and a live message after a gap makes it fetch what it missed', async () => {
    const threadId = await channel('move', ['staff:sender', 'staff:mover']);
    const sender = await open(nodeA.url, 'staff:sender');
    const first = await open(nodeB.url, 'staff:mover');
    const follower = followThread(first, threadId);
    await follower.resync();
    for (let i = 0; i < 5; i++) await send(sender, threadId, `m${i}`);
    await waitFor('five messages', () => follower.lastSeq === 5);
    const lastId = follower.lastId!;
    first.close();

    for (let i = 5; i < 9; i++) await send(sender, threadId, `m${i}`);
    // A fresh socket on the other node, resuming from the last id it had.
    const second = await open(nodeA.url, 'staff:mover');
    const resumed = expectOk(await chatRequest(second, 'chat:join', { threadId, afterId: lastId }));
    expect(resumed.messages.map((m) => m.seq)).toEqual([6, 7, 8, 9]);
    expect(resumed.hasNewer).toBe(false);

    // A follower that only ever saw up to 9, then gets 11 live: it asks for 10 and applies both, once.
    const gapFollower = followThread(second, threadId);
    await gapFollower.resync();
    expect(gapFollower.lastSeq).toBe(9);
    const ten = await send(sender, threadId, 'm9');
    const eleven = await send(sender, threadId, 'm10');
    gapFollower.handleMessage(eleven);
    await waitFor('the gap filled', () => gapFollower.lastSeq === 11);
    expect(gapFollower.messages.slice(-2)).toEqual([ten, eleven]);
    await sleep(300);
    expect(new Set(gapFollower.applied).size).toBe(gapFollower.applied.length);
  });
});

describe('a message whose ack was lost', () => {
  it('is stored once when resent with the same clientMessageId, and the resend is acked with the same id', async () => {
    const threadId = await channel('lost-ack', ['staff:sender', 'staff:peer']);
    const sender = await open(proxy.url, 'staff:sender', true);
    const peer = await open(nodeA.url, 'staff:peer');
    const peerFollower = followThread(peer, threadId);
    await peerFollower.resync();
    expectOk(await chatRequest(sender, 'chat:join', { threadId }));

    const clientMessageId = newClientMessageId('lost');
    // The hub gets the message and stores it; its ack never comes back.
    proxy.swallowReplies(true);
    await expect(chatRequest(sender, 'chat:send', { threadId, clientMessageId, text: '届きましたか？' }, 1500)).rejects.toThrow();
    await waitFor('the message on the peer', () => peerFollower.lastSeq === 1);
    // The connection is broken for good; the client reconnects and resends.
    const disconnected = new Promise<void>((resolve) => sender.once('disconnect', () => resolve()));
    proxy.swallowReplies(false);
    proxy.reset();
    await disconnected;
    await waitFor('the sender back', () => sender.connected);
    const resent = expectOk(await chatRequest(sender, 'chat:send', { threadId, clientMessageId, text: '届きましたか？' }));
    expect(resent.duplicate).toBe(true);
    expect(resent.message).toEqual(peerFollower.messages[0]);
    expect(resent.message.id).toBe('1-0');

    const history = expectOk(await chatRequest(peer, 'chat:history', { threadId }));
    expect(history.messages.map((m) => m.clientMessageId)).toEqual([clientMessageId]);
    await sleep(300);
    expect(peerFollower.applied).toEqual([1]);
  });
});
