import type { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ack, ChatMessage } from '@clinic-hub/protocol';
import { ReplicaAck, connectRedisCluster, hashSlot, type ClusterTarget } from '@clinic-hub/platform/redis';
import { clinicOnMaster, startRedisCluster, type RedisClusterNodes } from '@clinic-hub/test-kit/redis-cluster';
import { chatKeys } from '../src/chat/chat-keys.js';
import { NO_CHAT_QUOTAS, type QuotaLimits } from '../src/chat/chat-quotas.js';
import { ChatStore, type ChatCaller } from '../src/chat/chat-store.js';

/**
 * Chat on a real Redis Cluster (3 masters, 3 replicas) while the slot of a
 * clinic that is chatting migrates (`redis-cli --cluster reshard`). Every
 * chat script declares every key it touches, the members' thread lists and
 * each attachment's keys included (`+` scripts), so the cluster routes it by
 * them: it runs where all of them are, or is refused before it changes
 * anything, and the hub's retry with the same clientMessageId finds it done
 * or does it. Afterwards every acknowledged message is in its thread once, at
 * its seq, with its attachments; every membership is in the members set and
 * in the member's own thread list, and nothing else is.
 */
describe('chat on a Redis Cluster', () => {
  let cluster: RedisClusterNodes;
  let commands: Cluster;
  let writes: Cluster;
  let store: ChatStore;
  /** A clinic in slots 0–19, the ones `redis-cli --cluster reshard --cluster-slots 20` moves. */
  let clinic: string;

  beforeAll(async () => {
    cluster = await startRedisCluster();
    clinic = clinicOnMaster([[0, 19]], 'chat-moving');
    const target = cluster.target as ClusterTarget;
    commands = connectRedisCluster(target, 'test:cmd', { commandTimeout: 5000 });
    writes = connectRedisCluster(target, 'test:chat-writes', { commandTimeout: 5000 });
    for (const connection of [commands, writes]) connection.on('error', () => undefined);
    store = new ChatStore(commands, { ack: new ReplicaAck(writes, { replicas: 1, timeoutMs: 2000 }) });
  }, 120_000);

  afterAll(async () => {
    commands?.disconnect();
    writes?.disconnect();
    await cluster?.cleanup();
  });

  it('loses nothing acknowledged and doubles nothing while the slot of a clinic that is chatting migrates', async () => {
    const slot = hashSlot(chatKeys(clinic).prefix);
    // Many keys in the slot, so that its migration lasts long enough to meet the clinic's chat.
    const fill = commands.pipeline();
    for (let i = 0; i < 3000; i++) fill.set(`ch:{${clinic}}:fill:${i}`, 'x');
    await fill.exec();
    const from = await cluster.masterOfSlot(slot);
    const to = (await cluster.masters()).find((m) => m.port !== from.port)!;

    const work = chatting(store, clinic);
    await until(work, 10);
    const moving = { from: Date.now(), to: 0 };
    await cluster.reshard(from.port, to.port, 20);
    moving.to = Date.now();
    const afterMove = work.sent.length;
    await until(work, afterMove + 10);
    const result = await work.stop();
    expect((await cluster.masterOfSlot(slot)).port).toBe(to.port);
    expect(result.answeredAt.filter((at) => at >= moving.from && at <= moving.to).length, 'answers during the migration').toBeGreaterThan(0);
    console.info(
      `chat slot move: ${result.sent.length} messages, ${result.threads.size} threads, ${result.memberChanges} member changes acknowledged; ${result.unavailable} STORE_UNAVAILABLE answers retried; reshard ${moving.to - moving.from} ms`,
    );

    await expectChatAsSent(commands, store, clinic, result);
  }, 180_000);

  it('keeps every acknowledged change when the slot moves one key at a time, the chat acting between each', async () => {
    // Quotas on, so that their counters exist and a message's keys are split between the two nodes too.
    const stepwise = clinicOnMaster((await cluster.masters())[0]!.slots, 'chat-stepwise');
    const slot = hashSlot(chatKeys(stepwise).prefix);
    const work = chatting(store, stepwise, { user: 100_000, thread: 100_000, clinic: 100_000 });
    await until(work, 12);
    const to = (await cluster.masters()).find((m) => m.slots.every(([first, last]) => slot < first || slot > last))!;
    // After each key, one more answer from the chat (an acknowledgement, or a refusal it will retry), or a second: a
    // refused message takes ioredis's 1.6 s of TRYAGAIN retries to be answered, and the chat is refused while the
    // thread's keys are split, so the move lasts about a second per key. First
    // the keys of the thread being written that are not its hash: its messages, its receipts and the members' thread
    // lists, so that a script that ran where its thread's hash is without declaring them would write a second copy of
    // them there (the move then fails: BUSYKEY) or miss them.
    const keys = chatKeys(stepwise);
    const writing = work.sent.at(-1)!.threadId;
    const first = [keys.messages(writing), keys.reads(writing), ...['staff-bob', 'doctor-carol', ALICE.sub].map((sub) => keys.userThreads(sub))];
    const moved = await cluster.migrateSlotKeyByKey(
      slot,
      to.port,
      async () => {
        const answers = work.answers();
        const deadline = Date.now() + 1000;
        while (work.answers() === answers && Date.now() < deadline && !work.failure()) await new Promise((r) => setTimeout(r, 10));
      },
      first,
    );
    const afterMove = work.sent.length;
    await until(work, afterMove + 5);
    const result = await work.stop();
    expect((await cluster.masterOfSlot(slot)).port).toBe(to.port);
    console.info(`chat slot moved key by key: ${moved} keys; ${result.sent.length} messages, ${result.memberChanges} member changes acknowledged; ${result.unavailable} STORE_UNAVAILABLE answers retried`);
    expect(moved).toBeGreaterThan(20);
    await expectChatAsSent(commands, store, stepwise, result);
  }, 240_000);
});

/**
 * Every acknowledged message is in its thread once, at its seq, with its
 * attachments, and no other; every thread's members are in its set and in
 * their own thread lists, and a removed member in neither.
 */
async function expectChatAsSent(commands: Cluster, store: ChatStore, clinic: string, result: Awaited<ReturnType<ReturnType<typeof chatting>['stop']>>) {
    const keys = chatKeys(clinic);
    for (const [threadId, thread] of result.threads) {
      // Each acknowledged message once, at its seq, and no other (every change was retried until acknowledged).
      const stored = (await commands.xrange(keys.messages(threadId), '-', '+')).map(([, fields]) => JSON.parse(fields[1]!) as ChatMessage);
      const sent = result.sent.filter((m) => m.threadId === threadId);
      expect(stored.map((m) => m.seq), `${threadId}: gapless`).toEqual(stored.map((_, i) => i + 1));
      expect(stored.map((m) => m.clientMessageId), threadId).toEqual(sent.map((m) => m.clientMessageId));
      expect(stored.map((m) => m.id), threadId).toEqual(sent.map((m) => m.id));
      expect(Number(await commands.hget(keys.thread(threadId), 'seq')), `${threadId}: seq`).toBe(sent.length);
      // Its members, in its set and each in their own thread list; a removed member in neither.
      expect((await commands.smembers(keys.members(threadId))).sort(), `${threadId}: members`).toEqual([...thread.members].sort());
      for (const member of thread.everMember) {
        expect(await commands.sismember(keys.userThreads(member), threadId), `${member}'s thread list has ${threadId}`).toBe(thread.members.has(member) ? 1 : 0);
      }
    }
    // Each attachment is sent by the one message that carried it.
    for (const message of result.sent) {
      for (const attachment of message.attachments) {
        expect(await commands.hget(keys.attachment(attachment.id), 'message'), attachment.id).toBe(message.id);
      }
    }
    expect(result.sent.some((m) => m.attachments.length > 0)).toBe(true);
    // A resend of an acknowledged message is answered with it, not stored again.
    const last = result.sent.at(-1)!;
    const again = await store.appendMessage(clinic, ALICE, sendInput(last.threadId, last.clientMessageId, []));
    expect(again).toMatchObject({ ok: true, duplicate: true, message: { id: last.id } });
}

const ALICE: ChatCaller = { sub: 'staff-alice', role: 'staff', ticket: null, address: '127.0.0.1' };

function sendInput(threadId: string, clientMessageId: string, attachments: string[], quota: QuotaLimits = NO_CHAT_QUOTAS.messagesPerMinute) {
  return {
    threadId,
    clientMessageId,
    text: `message ${clientMessageId}`,
    attachments,
    dedupeSeconds: 600,
    quota,
    attachmentKeepSeconds: 3600,
    threadKeepSeconds: 3600,
  };
}

/**
 * Staff at work in the clinic's chat until stopped: a new staff thread every
 * ten messages, a member added (and the previous one removed) every seventh,
 * an attachment on every fourth message. Every change is retried with the
 * same ids while the store answers STORE_UNAVAILABLE, until acknowledged.
 */
function chatting(store: ChatStore, clinic: string, quota?: QuotaLimits) {
  const sent: ChatMessage[] = [];
  const threads = new Map<string, { members: Set<string>; everMember: Set<string> }>();
  const answeredAt: number[] = [];
  let unavailable = 0;
  let memberChanges = 0;
  let stopping = false;
  const acked = async <T extends object>(what: string, change: () => Promise<Ack<T>>): Promise<T> => {
    // Refused for as long as the slot takes to move, key by key: up to a minute.
    const deadline = Date.now() + 120_000;
    for (;;) {
      const result = await change();
      answeredAt.push(Date.now());
      if (result.ok) return result;
      if (result.error.code !== 'STORE_UNAVAILABLE') throw new Error(`${what}: ${result.error.code} ${result.error.message}`);
      if (Date.now() > deadline) throw new Error(`${what}: still STORE_UNAVAILABLE after 120 s`);
      unavailable++;
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  /** Upload metadata is a plain write (MULTI on one key): retried as the hub's upload is, on any Redis error. */
  const saveAttachment = async (id: string, threadId: string) => {
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        return await store.saveAttachment(clinic, { id, threadId, uploader: ALICE.sub, type: 'image/png', size: 10, name: `${id}.png`, at: Date.now(), messageId: null }, 3600);
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };
  const done = (async () => {
    let threadId = '';
    let lastAdded: string | null = null;
    for (let i = 0; !stopping; i++) {
      if (i % 10 === 0) {
        threadId = `staff.move-${i / 10}`;
        const members = ['staff-bob', 'doctor-carol'];
        const id = threadId;
        await acked(`create ${id}`, () => store.createThread(clinic, ALICE, { threadId: id, kind: 'staff', title: `Thread ${i / 10}`, members, keepSeconds: 3600 }));
        const all = new Set([...members, ALICE.sub]);
        threads.set(threadId, { members: new Set(all), everMember: new Set(all) });
        lastAdded = null;
      }
      if (i % 7 === 3) {
        const add = [`staff-guest-${i}`];
        const remove = lastAdded ? [lastAdded] : [];
        const id = threadId;
        await acked(`members ${id}`, () => store.updateMembers(clinic, ALICE, id, add, remove));
        const thread = threads.get(threadId)!;
        for (const sub of add) thread.members.add(sub), thread.everMember.add(sub);
        for (const sub of remove) thread.members.delete(sub);
        lastAdded = add[0]!;
        memberChanges++;
      }
      const attachments = i % 4 === 1 ? [`att-${i}`] : [];
      for (const attachment of attachments) await saveAttachment(attachment, threadId);
      const id = threadId;
      const reply = await acked(`message ${i}`, () => store.appendMessage(clinic, ALICE, sendInput(id, `cm-${i}`, attachments, quota)));
      sent.push(reply.message);
    }
    return { sent, threads, answeredAt, unavailable, memberChanges };
  })();
  let failure: Error | null = null;
  done.catch((error: Error) => (failure = error));
  return {
    sent,
    failure: () => failure,
    answers: () => answeredAt.length,
    stop: () => {
      stopping = true;
      return done;
    },
  };
}

async function until(work: { sent: unknown[]; failure: () => Error | null }, messages: number) {
  const deadline = Date.now() + 30_000;
  while (work.sent.length < messages) {
    const failure = work.failure();
    if (failure) throw failure;
    if (Date.now() > deadline) throw new Error(`fewer than ${messages} messages acknowledged in 30 s`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
