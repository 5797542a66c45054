/**
 * Redis restarts under two hub nodes while a member keeps sending: every
 * message acknowledged before, during and after the restart is in the
 * history afterwards, once; retries with the same clientMessageId added
 * nothing; a member on the other node followed it all, once each, in order.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import type { ChatMessage } from '@clinic-hub/protocol';
import { chatKeys } from '../src/chat/chat-keys.js';
import { startRedisServer, type RedisProcess } from '@clinic-hub/platform/redis-server';
import { startTestHubs, tokenFor, type HubNodeProcess, healthStatus } from '@clinic-hub/test-kit/hub-node';
import { chatRequest, connectChat, followThread, newClientMessageId, type ChatSocket } from '@clinic-hub/test-kit/chat-client';
import { expectOk } from '@clinic-hub/test-kit/queue-client';
import type { TestRedis } from '@clinic-hub/test-kit/redis';
import { sleep, waitFor } from '@clinic-hub/test-kit/wait';

const CLINIC = 'testclinic';

let redis: TestRedis;
let restarted: RedisProcess | null = null;
let nodeA: HubNodeProcess;
let nodeB: HubNodeProcess;
const sockets: ChatSocket[] = [];

beforeAll(async () => {
  ({ redis, nodes: [nodeA, nodeB] } = await startTestHubs(['chat-restart-a', 'chat-restart-b'], { env: { HUB_CHAT_MESSAGES_PER_SECOND: '0', HUB_CHAT_QUOTA_MESSAGES_PER_MINUTE_USER: '1000000', HUB_CHAT_QUOTA_MESSAGES_PER_MINUTE_THREAD: '1000000' } }));
});

afterAll(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  await Promise.all([nodeA?.stop(), nodeB?.stop()]);
  await restarted?.stop();
  await redis?.cleanup();
});

const seen = { storeUnavailable: 0, timeouts: 0, duplicates: 0 };

/** Sends one message until it is acknowledged, resending with the same clientMessageId: what a well-behaved client does. */
async function untilAcknowledged(socket: ChatSocket, threadId: string, text: string): Promise<ChatMessage> {
  const clientMessageId = newClientMessageId('restart');
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (Date.now() > deadline) throw new Error(`"${text}" never acknowledged`);
    let ack;
    try {
      ack = await chatRequest(socket, 'chat:send', { threadId, clientMessageId, text }, 3000);
    } catch {
      seen.timeouts++;
      await sleep(100);
      continue;
    }
    if (ack.ok) {
      if (ack.duplicate) seen.duplicates++;
      return ack.message;
    }
    if (ack.error.code !== 'STORE_UNAVAILABLE') throw new Error(`"${text}": ${ack.error.code}`);
    seen.storeUnavailable++;
    await sleep(100);
  }
}

describe('chat while Redis restarts', () => {
  it('keeps every acknowledged message, once, and the other node\'s member gets each once', { timeout: 90_000 }, async () => {
    const creator = await connectChat(nodeA.url, await tokenFor('staff', CLINIC, { sub: 'staff:creator' }));
    sockets.push(creator);
    const threadId = expectOk(await chatRequest(creator, 'chat:create', { kind: 'staff', id: 'restart', title: 'restart', members: ['staff:writer', 'staff:reader'] })).thread.id;
    const writer = await connectChat(nodeA.url, await tokenFor('staff', CLINIC, { sub: 'staff:writer' }), { reconnection: true });
    const reader = await connectChat(nodeB.url, await tokenFor('staff', CLINIC, { sub: 'staff:reader' }), { reconnection: true });
    sockets.push(writer, reader);
    const follower = followThread(reader, threadId);
    await follower.resync();

    const acknowledged: ChatMessage[] = [];
    let n = 0;
    const step = async (tag: string) => acknowledged.push(await untilAcknowledged(writer, threadId, `${tag} ${n++}`));

    for (let i = 0; i < 5; i++) await step('before');
    expect(seen).toEqual({ storeUnavailable: 0, timeouts: 0, duplicates: 0 });

    let keepSending = true;
    const sending = (async () => {
      while (keepSending) await step('during');
    })();
    await sleep(200);
    await redis.stop();
    await waitFor('both nodes to see Redis down', async () => (await healthStatus(nodeA)) === 503 && (await healthStatus(nodeB)) === 503, 15_000);
    await sleep(500);
    expect(nodeA.process.exitCode).toBeNull();
    expect(nodeB.process.exitCode).toBeNull();
    restarted = await startRedisServer({ dir: redis.dir, port: redis.port });
    const sentAtRestart = n;
    await waitFor('sending to go on after the restart', () => n >= sentAtRestart + 5, 40_000);
    keepSending = false;
    await sending;
    expect(seen.storeUnavailable + seen.timeouts).toBeGreaterThan(0);

    for (let i = 0; i < 3; i++) await step('after');
    await waitFor('both nodes healthy', async () => (await healthStatus(nodeA)) === 200 && (await healthStatus(nodeB)) === 200, 20_000);

    const client = new Redis(restarted.url);
    try {
      const stored = (await client.xrange(chatKeys(CLINIC).messages(threadId), '-', '+')).map(([, fields]) => JSON.parse(fields[1]!) as ChatMessage);
      // Exactly what was acknowledged: nothing lost, nothing twice, numbered without gaps.
      expect(stored).toEqual(acknowledged);
      expect(stored.map((m) => m.seq)).toEqual(stored.map((_, i) => i + 1));
      expect(new Set(stored.map((m) => m.clientMessageId)).size).toBe(stored.length);
    } finally {
      client.disconnect();
    }
    // Read the history as a client does, page by page until hasNewer is false: how many messages were
    // acknowledged around the restart depends on the machine, so no single page is known to hold them all.
    const history: ChatMessage[] = [];
    for (let after = '0-0'; ;) {
      const page = expectOk(await chatRequest(writer, 'chat:history', { threadId, after, limit: 100 }));
      history.push(...page.messages);
      if (!page.hasNewer) break;
      after = page.messages.at(-1)!.id;
    }
    expect(history).toEqual(acknowledged);

    // The member on node B followed everything once, in order (live, or by resuming).
    await waitFor('the reader to have everything', () => follower.lastSeq === acknowledged.length, 20_000);
    await sleep(300);
    expect(follower.applied).toEqual(acknowledged.map((m) => m.seq));
    expect(follower.messages).toEqual(acknowledged);
  });
});
