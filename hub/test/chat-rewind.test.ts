import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { Redis } from 'ioredis';
import type { Namespace } from 'socket.io';
import { ChatPayloads, type Ack, type ChatMessage } from '@clinic-hub/protocol';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { sleep, waitFor } from '@clinic-hub/test-kit/wait';
import { HubMetrics } from '../src/metrics.js';
import { chatKeys, chatRooms } from '../src/chat/chat-keys.js';
import { startChatFanout } from '../src/chat/chat-live.js';
import { ChatService } from '../src/chat/chat-service.js';
import { createStaffChannel } from '../src/chat/index.js';
import type { ChatCaller } from '../src/chat/chat-store.js';

/**
 * A chat message goes out live before a replica holds it: a failover can lose
 * it after readers have it, and give its seq to the next message, which they
 * would drop as one they have. The fan-out notices (the seq back as another
 * message, or the thread behind what it sent), marks the thread rewound in
 * Redis and closes its room's connections; a resume past the mark is answered
 * with the latest page and `rewound: true` (docs/protocol.md, "The chat
 * resume rule"). Real Redis for the store; the namespace and the subscription
 * are fakes fed by hand, as a failover would feed them.
 */
const C = 'testclinic';
const writer: ChatCaller = { sub: 'staff:writer', role: 'staff', ticket: null, address: '127.0.0.9' };

let redisServer: TestRedis;
let redis: Redis;
let chat: ChatService;

beforeAll(async () => {
  redisServer = await startTestRedis();
  redis = new Redis(redisServer.url);
  chat = new ChatService(redis, { findTicket: async () => null, attachmentKey: null, attachmentMaxBytes: 0 });
});

afterAll(async () => {
  redis?.disconnect();
  await redisServer?.cleanup();
});

function ok<T extends object>(result: Ack<T>): T {
  if (!result.ok) throw new Error(`expected ok, got ${result.error.code} ${result.error.detail ?? ''}`);
  return result;
}

const send = async (threadId: string, text: string) =>
  ok(await chat.send(C, writer, ChatPayloads['chat:send'].parse({ threadId, clientMessageId: randomBytes(8).toString('hex'), text }) as never)).message;

/** What the new master holds after a failover that lost the thread's messages from `seq` on: they are gone, and their seqs come again. */
async function loseFrom(threadId: string, seq: number) {
  const keys = chatKeys(C);
  // Made again from what is kept: a stream takes no id below one it had.
  const kept = await redis.xrange(keys.messages(threadId), '-', `${seq - 1}-0`);
  const rebuild = redis.multi().del(keys.messages(threadId)).hset(keys.thread(threadId), 'seq', seq - 1);
  for (const [id, fields] of kept) rebuild.xadd(keys.messages(threadId), id, ...fields);
  await rebuild.exec();
}

/** A hub node's chat fan-out with one socket in the thread's room, which joined having read `page`. */
async function fakeNode(threadId: string, page: ChatMessage[]) {
  const room = chatRooms.thread(C, threadId);
  const subscriber = Object.assign(new EventEmitter(), { ssubscribe: async () => 1 });
  const sent: ChatMessage[] = [];
  const closed: string[] = [];
  const emitter = (to: string | string[]) => ({
    emit: (event: string, payload: unknown) => void (event === 'chat:message' && to === room && sent.push(payload as ChatMessage)),
    except: () => ({ emit: () => true }),
  });
  const socket = { rooms: new Set([room]), conn: { close: () => closed.push(room) } };
  const nsp = {
    adapter: Object.assign(new EventEmitter(), { rooms: new Map([[room, new Set(['s1'])]]) }),
    local: { to: emitter },
    sockets: new Map([['s1', socket]]),
  } as unknown as Namespace;
  const fanout = await startChatFanout(subscriber as unknown as Redis, nsp, {
    store: chat.store,
    clinicIds: [C],
    metrics: new HubMetrics('chat-rewind'),
    logger: pino({ level: 'silent' }),
  });
  fanout.noteJoined(C, threadId, page.at(-1)?.seq ?? 0, page);
  const live = (message: ChatMessage) => subscriber.emit('smessage', chatKeys(C).channel, JSON.stringify({ t: 'message', kind: 'staff', message }));
  const reconnected = () => subscriber.emit('ready');
  const told = (raw: string) => subscriber.emit('smessage', chatKeys(C).channel, raw);
  return { sent, closed, live, reconnected, told, fanout };
}

async function thread(id: string, messages: number) {
  const threadId = (await createStaffChannel(redis, C, { id, title: id, members: [writer.sub], createdBy: writer.sub })).id;
  const page: ChatMessage[] = [];
  for (let i = 1; i <= messages; i++) page.push(await send(threadId, `before ${i}`));
  return { threadId, page };
}

const mark = (threadId: string) => redis.get(chatKeys(C).rewound(threadId));
const history = async (threadId: string, query: { after: string; afterAt?: number }) =>
  ok(await chat.history(C, writer, ChatPayloads['chat:history'].parse({ threadId, ...query }) as never));
const read = async (threadId: string, upTo: ChatMessage) =>
  ok(await chat.markRead(C, writer, ChatPayloads['chat:read'].parse({ threadId, upToId: upTo.id, upToAt: upTo.at }) as never));
const resume = async (threadId: string, afterId: string) => ok(await chat.join(C, writer, ChatPayloads['chat:join'].parse({ threadId, afterId }) as never));

describe('chat fan-out across a failover that lost messages it had sent', () => {
  it('finds a seq come back live as another message: marks the thread rewound, closes its room, and a resume past the mark starts over', async () => {
    const { threadId, page } = await thread('rewind-live', 3);
    const node = await fakeNode(threadId, page);
    const lost = await send(threadId, 'published, then lost with the master');
    node.live(lost);
    await loseFrom(threadId, 4);
    const real = await send(threadId, 'the real 4');
    expect(real.seq).toBe(4);
    node.live(real);
    await waitFor('the room closed', () => node.closed.length === 1);
    expect(await mark(threadId)).toBe('4');
    // Sent on as any message: the readers it reaches are on their way to start over.
    expect(node.sent.map((m) => m.text)).toEqual([lost.text, real.text]);

    // A reader that had the lost 4 resumes after it: the latest page, rewound.
    const past = await resume(threadId, '4-0');
    expect(past).toMatchObject({ rewound: true, hasNewer: false, thread: { lastSeq: 4 } });
    expect(past.messages).toEqual([...page, real]);
    const history = ok(await chat.history(C, writer, ChatPayloads['chat:history'].parse({ threadId, after: '4-0' }) as never));
    expect(history).toMatchObject({ rewound: true, messages: [...page, real] });
    // One that stopped before the mark had nothing lost: its resume is as always.
    expect(await resume(threadId, '3-0')).toMatchObject({ rewound: false, messages: [real] });
    // The next message is news, not another rewind.
    node.live(await send(threadId, 'then 5'));
    await sleep(50);
    expect(node.closed).toHaveLength(1);
  });

  it('after a subscription loss, finds the thread behind what it sent, or a seq it sent given to another message', async () => {
    const behind = await thread('rewind-behind', 2);
    const nodeA = await fakeNode(behind.threadId, behind.page);
    nodeA.live(await send(behind.threadId, 'lost 3'));
    nodeA.live(await send(behind.threadId, 'lost 4'));
    await loseFrom(behind.threadId, 3);
    nodeA.reconnected();
    await waitFor('the room closed', () => nodeA.closed.length === 1);
    expect(await mark(behind.threadId)).toBe('3');

    const reused = await thread('rewind-reused', 2);
    const nodeB = await fakeNode(reused.threadId, reused.page);
    nodeB.live(await send(reused.threadId, 'lost 3'));
    nodeB.live(await send(reused.threadId, 'lost 4'));
    await loseFrom(reused.threadId, 3);
    // Committed on the new master while this node's subscription was down: the catch-up reads them, and sends them.
    await send(reused.threadId, 'real 3');
    await send(reused.threadId, 'real 4');
    nodeB.reconnected();
    await waitFor('the room closed', () => nodeB.closed.length === 1);
    expect(await mark(reused.threadId)).toBe('3');
    expect(nodeB.sent.map((m) => m.text)).toEqual(['lost 3', 'lost 4', 'real 3', 'real 4']);
  });

  it('finds a rewind in what a joining socket read: a page with another message at a seq this node sent', async () => {
    const { threadId, page } = await thread('rewind-joined', 1);
    const node = await fakeNode(threadId, page);
    node.live(await send(threadId, 'lost 2'));
    await loseFrom(threadId, 2);
    const real = await send(threadId, 'the real 2');
    // Its live message has not reached this node yet; a socket joins and reads it.
    node.fanout.noteJoined(C, threadId, 2, [...page, real]);
    await waitFor('the room closed', () => node.closed.length === 1);
    expect(await mark(threadId)).toBe('2');
  });

  it('finds a rewind in what a socket read through chat:history: a page with another message at a seq this node sent', async () => {
    const { threadId, page } = await thread('rewind-history', 1);
    const node = await fakeNode(threadId, page);
    node.live(await send(threadId, 'lost 2'));
    await loseFrom(threadId, 2);
    const real = await send(threadId, 'the real 2');
    node.fanout.noteRead(C, threadId, [real]);
    await waitFor('the room closed', () => node.closed.length === 1);
    expect(await mark(threadId)).toBe('2');
  });

  it('marks nothing and closes nothing when a failover lost nothing it had sent', async () => {
    const { threadId, page } = await thread('no-rewind', 3);
    const node = await fakeNode(threadId, page);
    const four = await send(threadId, 'four');
    node.live(four);
    node.reconnected();
    const five = await send(threadId, 'five');
    node.live(five);
    await sleep(200);
    node.fanout.noteJoined(C, threadId, 5, [...page, four, five]);
    await sleep(50);
    expect(node.closed).toEqual([]);
    expect(await mark(threadId)).toBeNull();
    expect(node.sent).toEqual([four, five]);
    expect(await resume(threadId, '5-0')).toMatchObject({ rewound: false, messages: [] });
  });
});

describe('a reader naming the message it stands on (afterAt, upToAt), with no hub node knowing of the loss', () => {
  it('resumes and reads as always while the thread holds its message; is answered rewound, and records no receipt, once it does not', async () => {
    const { threadId, page } = await thread('named', 3);
    // Read through chat:history, then lost with the master: no node sent it live, nothing is marked.
    const lost = await send(threadId, 'read, then lost');
    expect((await history(threadId, { after: '3-0', afterAt: page[2]!.at })).messages).toEqual([lost]);
    expect(await read(threadId, page[2]!)).toMatchObject({ rewound: false, receipt: { readSeq: 3 } });
    await loseFrom(threadId, 4);

    // Its seq not given again yet: past the thread's latest message.
    expect(await history(threadId, { after: '4-0', afterAt: lost.at })).toMatchObject({ rewound: true, messages: page });
    expect(await read(threadId, lost)).toMatchObject({ rewound: true, receipt: { readSeq: 3 } });
    // Given to another message: the `at` tells them apart.
    const real = await send(threadId, 'the real 4');
    expect(real.seq).toBe(4);
    expect(await history(threadId, { after: '4-0', afterAt: lost.at })).toMatchObject({ rewound: true, messages: [...page, real] });
    expect(await resume(threadId, '4-0')).toMatchObject({ rewound: false, messages: [] });
    expect(ok(await chat.join(C, writer, ChatPayloads['chat:join'].parse({ threadId, afterId: '4-0', afterAt: lost.at }) as never))).toMatchObject({ rewound: true });
    expect(await read(threadId, lost)).toMatchObject({ rewound: true, receipt: { readSeq: 3 } });
    expect(await redis.hget(chatKeys(C).reads(threadId), writer.sub)).toContain('"readSeq":3');
    // The reader that started over holds the real 4: as always.
    expect(await history(threadId, { after: '4-0', afterAt: real.at })).toMatchObject({ rewound: false, messages: [] });
    expect(await read(threadId, real)).toMatchObject({ rewound: false, receipt: { readSeq: 4 } });
    expect(await mark(threadId)).toBeNull();
  });

  it('a thread marked rewound by one node moves the readers every node holds', async () => {
    const { threadId, page } = await thread('told', 2);
    const node = await fakeNode(threadId, page);
    const told: string[] = [];
    const listener = new Redis(redisServer.url);
    listener.on('smessage', (_channel: string, raw: string) => void told.push(raw));
    await listener.ssubscribe(chatKeys(C).channel);
    try {
      await chat.store.markRewound(C, threadId, 3);
      await waitFor('the rewind told on the channel', () => told.some((raw) => raw.includes('"rewound"')));
      const event = told.find((raw) => raw.includes('"rewound"'))!;
      expect(JSON.parse(event)).toEqual({ t: 'rewound', threadId, fromSeq: 3 });
      // What another node published reaches this one's subscription: its room is closed, though it found nothing itself.
      node.told(event);
      await waitFor('the room closed', () => node.closed.length === 1);
    } finally {
      listener.disconnect();
    }
  });
});
