import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { messageIdOf, type ChatMessage } from '@clinic-hub/protocol';
import { connectRedisClient, type RedisClient } from '@clinic-hub/platform/redis';
import { chatKeys } from '../src/chat/chat-keys.js';
import { startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { chatRequest, connectChat, newClientMessageId, type ChatSocket } from '@clinic-hub/test-kit/chat-client';
import { expectOk } from '@clinic-hub/test-kit/queue-client';
import { FAILOVER_MODES, type FailoverRedis } from '@clinic-hub/test-kit/redis-failover';
import { sleep } from '@clinic-hub/test-kit/wait';

/**
 * A chat reader that follows a thread through `chat:history` alone, on a hub
 * node that never holds the thread live (nobody joined it anywhere: no node
 * has anything to compare), across a failover that loses messages it had
 * read (issue #16). It names the message its cursor stands on by its `at`
 * (`afterAt`, `upToAt`), so the hub can tell when the thread no longer holds
 * it (docs/protocol.md, "The chat resume rule", rule 5). It must end with
 * exactly the thread's messages, and none of its read receipts may claim a
 * message it never held.
 */
const CLINIC = 'testclinic';
const LAG_MS = 800;
const WRITERS = ['staff:writer-1', 'staff:writer-2'];
const READER = 'staff:reader';
// Chat's own limits are not under test.
const CHAT_UNLIMITED = { HUB_CHAT_MESSAGES_PER_SECOND: '0', HUB_CHAT_QUOTA_MESSAGES_PER_MINUTE_USER: '1000000', HUB_CHAT_QUOTA_MESSAGES_PER_MINUTE_THREAD: '1000000' };

const signature = (m: ChatMessage) => `${m.seq}:${m.sender}/${m.clientMessageId}@${m.at}`;

/**
 * Reads the thread page after page (`chat:history { after, afterAt }`) and marks what it holds read
 * (`chat:read { upToId, upToAt }`); answered `rewound`, it takes the thread again from the latest page
 * (the threads here fit in one page).
 */
class HistoryReader {
  messages: ChatMessage[] = [];
  /** Every message it ever held, lost ones included. */
  readonly everHeld = new Set<string>();
  /** The read positions the hub recorded for it. */
  readonly receipts: number[] = [];
  startedOver = 0;

  constructor(
    private readonly socket: ChatSocket,
    private readonly threadId: string,
  ) {}

  private hold(messages: ChatMessage[]) {
    for (const m of messages) this.everHeld.add(signature(m));
  }

  /** One round: what follows its last message, then a read receipt for it. Resolves false when the hub could not answer. */
  async poll(): Promise<boolean> {
    const last = this.messages.at(-1);
    let page;
    try {
      page = await chatRequest(this.socket, 'chat:history', last ? { threadId: this.threadId, after: last.id, afterAt: last.at, limit: 200 } : { threadId: this.threadId, limit: 200 }, 3000);
    } catch {
      return false;
    }
    if (!page.ok) return false;
    if (page.rewound) {
      // The hub no longer holds the message its cursor stood on: the page is the latest, the whole thread here.
      this.startedOver++;
      this.messages = [...page.messages];
    } else {
      for (const m of page.messages) if (m.seq === (this.messages.at(-1)?.seq ?? 0) + 1) this.messages.push(m);
    }
    this.hold(this.messages);
    const newest = this.messages.at(-1);
    if (!newest) return true;
    try {
      const read = await chatRequest(this.socket, 'chat:read', { threadId: this.threadId, upToId: newest.id, upToAt: newest.at }, 3000);
      if (!read.ok) return false;
      if (read.rewound) {
        this.startedOver++;
        this.messages = [];
      } else if (!this.receipts.includes(read.receipt.readSeq)) this.receipts.push(read.receipt.readSeq);
    } catch {
      return false;
    }
    return true;
  }
}

describe.each(FAILOVER_MODES)('a chat reader that only reads history, across a $name failover that loses what it read', (mode) => {
  let failover: FailoverRedis;
  let nodeA: HubNodeProcess;
  let nodeB: HubNodeProcess;
  let redis: RedisClient;
  const sockets: ChatSocket[] = [];

  beforeAll(async () => {
    failover = await mode.start();
    redis = connectRedisClient(failover.target, 'test:chat-history-failover');
    redis.on('error', () => undefined);
    [nodeA, nodeB] = await Promise.all([
      startHubProcess({ redisEnv: failover.env, nodeId: `chat-fo-a-${mode.name}`, env: CHAT_UNLIMITED }),
      startHubProcess({ redisEnv: failover.env, nodeId: `chat-fo-b-${mode.name}`, env: CHAT_UNLIMITED }),
    ]);
  }, 180_000);

  afterAll(async () => {
    for (const socket of sockets.splice(0)) socket.close();
    await Promise.all([nodeA?.stop(), nodeB?.stop()]);
    redis?.disconnect();
    await failover?.cleanup();
  });

  it('ends with exactly the stored thread, and no receipt of it claims a message it never held', { timeout: 180_000 }, async () => {
    const writers: ChatSocket[] = [];
    for (const sub of WRITERS) writers.push(await connectChat(nodeA.url, await tokenFor('staff', CLINIC, { sub }), { reconnection: true }));
    sockets.push(...writers);
    const threadId = expectOk(
      await chatRequest(writers[0]!, 'chat:create', { kind: 'staff', id: `history-${mode.name.toLowerCase()}`, title: 'history', members: [...WRITERS, READER] }),
    ).thread.id;
    const readerSocket = await connectChat(nodeB.url, await tokenFor('staff', CLINIC, { sub: READER }), { reconnection: true });
    sockets.push(readerSocket);
    const reader = new HistoryReader(readerSocket, threadId);

    // Writers that never join the thread (a send does not): no hub node holds it live.
    let writing = true;
    let sent = 0;
    const write = async (socket: ChatSocket, sub: string) => {
      while (writing) {
        const clientMessageId = newClientMessageId(sub.replace(/\W/g, ''));
        // Resent with the same clientMessageId until acknowledged (STORE_UNAVAILABLE while the replica lags).
        for (;;) {
          const ack = await chatRequest(socket, 'chat:send', { threadId, clientMessageId, text: `${sub} ${sent}` }, 4000).catch(() => null);
          if (ack?.ok) break;
          await sleep(100);
        }
        sent++;
        await sleep(20);
      }
    };
    const writing$ = Promise.all(writers.map((socket, i) => write(socket, WRITERS[i]!)));
    let reading = true;
    const reading$ = (async () => {
      while (reading) {
        await reader.poll();
        await sleep(20);
      }
    })();

    while (sent < 10) await sleep(50);
    const { killed, promoted, failoverMs, lagged } = await failover.killMasterOf(chatKeys(CLINIC).thread(threadId), { lagMs: LAG_MS });
    // After the failover, the lost messages' seqs are given again.
    const sentAtFailover = sent;
    while (sent < sentAtFailover + 10) await sleep(50);
    writing = false;
    await writing$;
    // The reader catches up with what the writers stopped at.
    const lastSeq = Number(await redis.hget(chatKeys(CLINIC).thread(threadId), 'seq'));
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && reader.messages.at(-1)?.seq !== lastSeq) await sleep(100);
    reading = false;
    await reading$;
    await reader.poll();

    const stored = (await redis.xrange(chatKeys(CLINIC).messages(threadId), '-', '+')).map(([, fields]) => JSON.parse(fields[1]!) as ChatMessage);
    const storedSignatures = new Set(stored.map(signature));
    const lostHeld = [...reader.everHeld].filter((s) => !storedSignatures.has(s));
    process.stdout.write(
      `${mode.name}: master ${killed} → ${promoted} in ${failoverMs} ms${lagged ? ` (replica ${LAG_MS} ms behind)` : ' (no lag)'}; ${stored.length} messages stored; ` +
        `the reader held ${lostHeld.length} the failover lost, started over ${reader.startedOver} times; receipts at ${reader.receipts.join(', ')}\n`,
    );
    expect(stored.map((m) => m.seq)).toEqual(stored.map((_, i) => i + 1));
    // The run must show the case: the reader read messages the failover then lost (a cluster that cannot lag a replica loses none).
    if (lagged) expect(lostHeld.length, 'messages the reader held that the failover lost').toBeGreaterThan(0);
    // Both checked whatever the other's outcome (each is a gap of its own).
    expect.soft(reader.messages.map(signature), 'what the reader ends with').toEqual(stored.map(signature));
    // A read position up to a seq claims every message up to it: each must be one the reader held.
    for (const readSeq of reader.receipts) {
      const claimed = stored.slice(0, readSeq).filter((m) => !reader.everHeld.has(signature(m)));
      expect.soft(claimed.map(signature), `receipt up to ${messageIdOf(readSeq)} claims messages the reader never held`).toEqual([]);
    }
  });
});
