import { isDeepStrictEqual } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChatMessage } from '@clinic-hub/protocol';
import { connectRedis } from '@clinic-hub/platform/redis';
import { chatKeys } from '../src/chat/chat-keys.js';
import { ClinicRegistry } from '../src/clinics/clinic-registry.js';
import { QueueService } from '../src/queue/queue-service.js';
import { rebuildQueue } from '../src/queue/rebuild.js';
import { TEST_CLINICS_DIR, startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { chatRequest, connectChat, followThread, newClientMessageId, type ChatSocket } from '@clinic-hub/test-kit/chat-client';
import { connectQueue, deskAndDisplay, expectOk, request, untilAcknowledged, workingClinicStep, type AcknowledgedChanges, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import { startSentinelGroup, type SentinelGroup } from '@clinic-hub/test-kit/redis-sentinel';
import { sleep, waitFor } from '@clinic-hub/test-kit/wait';

/**
 * Redis Sentinel under two hub nodes: the master is killed with SIGKILL in
 * the middle of a stream of check-ins, calls and chat messages, three times.
 * Each time the sentinels promote the replica, the hubs find it by
 * themselves, the clients retry what got STORE_UNAVAILABLE with the same
 * requestId (chat: clientMessageId), and every acknowledged change is in the
 * new master exactly once: the hub waited for the replica (WAIT) before
 * acknowledging it (HUB_REDIS_ACK_REPLICAS, 1 by default with Sentinel).
 */
const CLINIC = 'testclinic';
const FAILOVERS = 3;

let group: SentinelGroup;
let nodeA: HubNodeProcess;
let nodeB: HubNodeProcess;
const sockets: (QueueSocket | ChatSocket)[] = [];
// Chat's own limits are not under test: a client resending as fast as it can would hit them.
const CHAT_UNLIMITED = { HUB_CHAT_MESSAGES_PER_SECOND: '0', HUB_CHAT_QUOTA_MESSAGES_PER_MINUTE_USER: '1000000', HUB_CHAT_QUOTA_MESSAGES_PER_MINUTE_THREAD: '1000000' };

/** How many times a node logged a queue rewind (queue-live.ts): the clinic's displays are then moved to a snapshot. */
let queueRewinds = 0;

beforeAll(async () => {
  group = await startSentinelGroup();
  [nodeA, nodeB] = await Promise.all([
    startHubProcess({ redisEnv: group.env, nodeId: 'sentinel-a', env: CHAT_UNLIMITED }),
    startHubProcess({ redisEnv: group.env, nodeId: 'sentinel-b', env: CHAT_UNLIMITED }),
  ]);
  // Counted as they come (logs() keeps only the tail): each time a node moved the clinic's clients to a snapshot.
  for (const node of [nodeA, nodeB]) {
    let partial = '';
    node.process.stdout!.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop()!;
      queueRewinds += lines.filter((line) => line.includes('queue changes published before a failover were lost with the master')).length;
    });
  }
}, 120_000);


afterAll(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  await Promise.all([nodeA?.stop(), nodeB?.stop()]);
  await group?.cleanup();
});

const seen = { storeUnavailable: 0, timeouts: 0, replayed: 0, chatDuplicates: 0 };
/** Each queue action is retried with its requestId until acknowledged (test-kit queue-client). */
const retry = { seen, deadlineMs: 60_000, ackTimeoutMs: 4000 };

/** Sends one chat message until it is acknowledged, resending with the same clientMessageId. */
async function untilSent(socket: ChatSocket, threadId: string, text: string): Promise<ChatMessage> {
  const clientMessageId = newClientMessageId('failover');
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (Date.now() > deadline) throw new Error(`chat "${text}" never acknowledged`);
    let ack;
    try {
      ack = await chatRequest(socket, 'chat:send', { threadId, clientMessageId, text }, 4000);
    } catch {
      seen.timeouts++;
      continue;
    }
    if (ack.ok) {
      if (ack.duplicate) seen.chatDuplicates++;
      return ack.message;
    }
    if (ack.error.code !== 'STORE_UNAVAILABLE') throw new Error(`chat "${text}": ${ack.error.code}`);
    seen.storeUnavailable++;
    await sleep(100);
  }
}

/** Every acknowledged chat message is in the master's thread exactly once, in order; returns what the thread holds. */
async function expectMessagesExactlyOnce(threadId: string, sent: ChatMessage[], label: string): Promise<ChatMessage[]> {
  const client = connectRedis(group.target, 'sentinel-test-chat-check');
  client.on('error', () => undefined);
  try {
    const stored = (await client.xrange(chatKeys(CLINIC).messages(threadId), '-', '+')).map(([, fields]) => JSON.parse(fields[1]!) as ChatMessage);
    expect(stored.map((m) => m.seq), label).toEqual(stored.map((_, i) => i + 1));
    expect(stored, `${label}: one message per acknowledged send`).toEqual(sent);
    return stored;
  } finally {
    client.disconnect();
  }
}

/**
 * The reader ends with exactly the messages the thread holds: none lost, none that a failover lost after it was
 * sent live (the hubs mark the thread rewound and the reader starts over: docs/protocol.md, chat resume rule 5).
 */
async function expectReaderHolds(reader: ReturnType<typeof followThread>, stored: ChatMessage[], label: string) {
  const holdsThread = async () => {
    while (await reader.loadOlder().catch(() => false));
    return isDeepStrictEqual(reader.messages, stored);
  };
  await waitFor(label, holdsThread, 30_000).catch(() => undefined);
  expect(reader.messages, label).toEqual(stored);
}

/** Every acknowledged change is in the master's event stream exactly once, and the queue is what those events make. */
async function expectAcknowledgedExactlyOnce(acknowledged: AcknowledgedChanges, label: string) {
  const client = connectRedis(group.target, 'sentinel-test-check');
  client.on('error', () => undefined);
  try {
    const queue = new QueueService(client, ClinicRegistry.fromDirectory(TEST_CLINICS_DIR));
    const events = await queue.eventsAfter(CLINIC, 0);
    expect(events.map((e) => e.seq), label).toEqual(events.map((_, i) => i + 1));
    expect(events, `${label}: one event per acknowledged action`).toHaveLength(acknowledged.size);
    for (const [requestId, { event }] of acknowledged) expect(events[event.seq - 1], `${label}: ${requestId}`).toEqual(event);
    const snapshot = await queue.snapshot(CLINIC);
    if (!snapshot.ok) throw new Error(snapshot.error.code);
    const rebuilt = rebuildQueue(events);
    expect(rebuilt.seq).toBe(snapshot.snapshot.seq);
    expect(rebuilt.tickets).toEqual(snapshot.snapshot.tickets);
    return snapshot.snapshot;
  } finally {
    client.disconnect();
  }
}

describe('Redis Sentinel failover under two hub nodes', () => {
  it('loses nothing acknowledged and duplicates nothing when the master is SIGKILLed mid-stream, three times', { timeout: 300_000 }, async () => {
    const { staff, display, follower, arrivals } = await deskAndDisplay(nodeA.url, nodeB.url, { staff: await tokenFor('staff'), display: await tokenFor('display') });
    sockets.push(staff, display);
    const chatter = await connectChat(nodeA.url, await tokenFor('staff', CLINIC, { sub: 'staff:chatter' }), { reconnection: true });
    sockets.push(chatter);
    const threadId = expectOk(await chatRequest(chatter, 'chat:create', { kind: 'staff', id: 'failover', title: 'failover', members: ['staff:chatter', 'staff:reader-a', 'staff:reader-b'] })).thread.id;
    const messages: ChatMessage[] = [];
    // A reader on each node, following the thread by the resume rule (ChatFollower), as the web pages do.
    const readers = [];
    for (const [node, sub] of [[nodeA, 'staff:reader-a'], [nodeB, 'staff:reader-b']] as const) {
      const socket = await connectChat(node.url, await tokenFor('staff', CLINIC, { sub }), { reconnection: true });
      sockets.push(socket);
      const reader = followThread(socket, threadId);
      await reader.resync();
      readers.push(reader);
    }

    const acknowledged: AcknowledgedChanges = new Map();
    let n = 0;
    const step = async (tag: string) => {
      const i = n++;
      await workingClinicStep(staff, tag, i, acknowledged, retry);
    };
    const chat = async (tag: string) => messages.push(await untilSent(chatter, threadId, `${tag} message ${messages.length + 1}`));

    for (let i = 0; i < 6; i++) {
      await step('before');
      if (i % 2 === 1) await chat('before');
    }
    expect(seen).toEqual({ storeUnavailable: 0, timeouts: 0, replayed: 0, chatDuplicates: 0 });
    const health = (await (await fetch(`${nodeA.url}/healthz`)).json()) as { redisMode: string; redisMaster: string; redisReplicas: { state: string }[] };
    expect(health).toMatchObject({ redisMode: 'sentinel', redisMaster: `127.0.0.1:${(await group.master()).port}` });
    expect(health.redisReplicas.filter((r) => r.state === 'online')).toHaveLength(1);

    for (let round = 1; round <= FAILOVERS; round++) {
      let keepWorking = true;
      const stepsAtStart = n;
      const worker = (async () => {
        while (keepWorking) await step(`round${round}`);
      })();
      // Chat on its own, so that a message is in flight whenever the master dies.
      const chatWorker = (async () => {
        while (keepWorking) {
          await chat(`round${round}`);
          await sleep(20);
        }
      })();
      // Mid-stream: actions are being sent when the master dies.
      await waitFor('a few actions before the kill', () => n >= stepsAtStart + 2, 20_000);
      await sleep(50 + Math.floor(Math.random() * 150));
      // The replica falls behind first (test-kit: 800 ms of the master's stream held back, then lost with it), as
      // asynchronous replication does under load: a SIGKILL alone loses nothing on loopback, where what the master
      // sent is already in the replica's socket buffer. So changes are lost: none acknowledged (the replica wait),
      // but published live to the displays, and their seqs given again to other changes; the hubs then move the
      // clinic's clients to a snapshot (queue-live.ts, rewound).
      const { killed, promoted, failoverMs } = await group.killMaster({ lagMs: 800 });
      const stepsAfterFailover = n;
      await waitFor(`work to go on after failover ${round}`, () => n >= stepsAfterFailover + 4, 60_000);
      keepWorking = false;
      await Promise.all([worker, chatWorker]);

      const snapshot = await expectAcknowledgedExactlyOnce(acknowledged, `after failover ${round} (${killed} → ${promoted}, ${failoverMs} ms)`);
      const stored = await expectMessagesExactlyOnce(threadId, messages, `chat after failover ${round}`);
      for (const [i, reader] of readers.entries()) await expectReaderHolds(reader, stored, `chat reader ${'AB'[i]} after failover ${round}`);
      // The hubs report the new master by themselves.
      await waitFor(
        `node A to report master ${promoted}`,
        async () => ((await (await fetch(`${nodeA.url}/healthz`)).json()) as { redisMaster: string }).redisMaster === `127.0.0.1:${promoted}`,
        20_000,
      );
      // The display on node B followed every change once, in order, and shows the queue as it is. From the snapshot it
      // started with, and from each snapshot it was moved to because a failover lost changes it had applied (a node
      // logged the rewind; the changes that took their seqs come after the snapshot): one event after the other.
      await waitFor(`the display to catch up after failover ${round}`, () => follower.seq === snapshot.seq, 30_000);
      if (follower.snapshots.length > 1) expect(queueRewinds, `display moved to a snapshot ${follower.snapshots.length - 1}× after the first: only after a rewind`).toBeGreaterThan(0);
      for (const [i, start] of follower.snapshots.entries()) {
        const run = follower.applied.slice(start.applied, follower.snapshots[i + 1]?.applied ?? follower.applied.length);
        expect(run, `display after failover ${round}, from its snapshot at seq ${start.seq}`).toEqual(run.map((_, j) => start.seq + 1 + j));
      }
      expect([...follower.tickets.values()].sort((a, b) => a.order - b.order)).toEqual(snapshot.tickets);
    }

    // The failovers were real: the client saw them and retried.
    expect(seen.storeUnavailable + seen.timeouts).toBeGreaterThan(0);
    const rewinds = [nodeA, nodeB].map((node) => node.logs().split('\n').filter((line) => line.includes('lost with the master')).length);
    const chatRewinds = [nodeA, nodeB].map((node) => node.logs().split('\n').filter((line) => line.includes('readers start over')).length);
    console.info(
      `sentinel failover: ${FAILOVERS} failovers, ${acknowledged.size} acknowledged changes, ${messages.length} chat messages, client saw ${JSON.stringify(seen)}; ` +
        `rewinds found by node A, B: queue ${rewinds.join(', ')}, chat ${chatRewinds.join(', ')}; chat readers A, B started over ${readers.map((r) => r.resets).join(', ')} times`,
    );
    // Live fan-out across nodes works on the last master: a call through A reaches the display on B as a live event.
    const liveBefore = arrivals.events.length;
    const call = await untilAcknowledged(staff, { kind: 'call-next', requestId: 'after-call' }, retry);
    await waitFor('the call, live, on the display of node B', () => arrivals.events.slice(liveBefore).some((e) => e.seq === call.seq));
    const metrics = await (await fetch(`${nodeA.url}/metrics`)).text();
    expect(metrics).toMatch(/clinic_hub_redis_replicas_online\{[^}]*\} 1/);
    expect(metrics).toMatch(/clinic_hub_redis_replica_ack_seconds_count\{[^}]*outcome="confirmed"[^}]*\} [1-9]/);
  });

  it('never acknowledges a chat message the replica does not have: STORE_UNAVAILABLE, then the same message when resent', { timeout: 60_000 }, async () => {
    const writer = await connectChat(nodeA.url, await tokenFor('staff', CLINIC, { sub: 'staff:unreplicated' }), { reconnection: true });
    sockets.push(writer);
    const threadId = expectOk(await chatRequest(writer, 'chat:create', { kind: 'staff', id: 'unreplicated', title: 'unreplicated', members: ['staff:unreplicated'] })).thread.id;
    const replica = await group.replica();
    replica.process.kill('SIGSTOP');
    let stopped = true;
    try {
      const clientMessageId = newClientMessageId('unreplicated');
      const refused = await chatRequest(writer, 'chat:send', { threadId, clientMessageId, text: 'not yet on a replica' }, 10_000);
      expect(refused).toMatchObject({ ok: false, error: { code: 'STORE_UNAVAILABLE', detail: expect.stringContaining('replica') } });
      replica.process.kill('SIGCONT');
      stopped = false;
      const resent = await waitFor('the resend to be acknowledged', async () => {
        const ack = await chatRequest(writer, 'chat:send', { threadId, clientMessageId, text: 'not yet on a replica' }, 10_000);
        return ack.ok ? ack : false;
      }, 20_000);
      // Stored once, on the first try; the resend is told so.
      expect(resent).toMatchObject({ duplicate: true, message: { seq: 1 } });
    } finally {
      if (stopped) replica.process.kill('SIGCONT');
    }
  });

  it('never acknowledges a change the replica does not have: STORE_UNAVAILABLE, then the same change when retried', { timeout: 60_000 }, async () => {
    const staff = await connectQueue(nodeA.url, await tokenFor('staff'), { reconnection: true });
    sockets.push(staff);
    const replica = await group.replica();
    replica.process.kill('SIGSTOP');
    let stopped = true;
    try {
      const refused = await request(staff, 'queue:checkin', { dept: 'gp', requestId: 'unreplicated-1' }, 10_000);
      expect(refused).toMatchObject({ ok: false, error: { code: 'STORE_UNAVAILABLE', detail: expect.stringContaining('replica') } });
      replica.process.kill('SIGCONT');
      stopped = false;
      const retried = await waitFor('the retry to be acknowledged', async () => {
        const ack = await request(staff, 'queue:checkin', { dept: 'gp', requestId: 'unreplicated-1' }, 10_000);
        return ack.ok ? ack : false;
      }, 20_000);
      // Done once, on the first try; the retry is told so.
      expect(retried.replayed).toBe(true);
      const metrics = await (await fetch(`${nodeA.url}/metrics`)).text();
      expect(metrics).toMatch(/clinic_hub_redis_replica_ack_seconds_count\{[^}]*outcome="timeout"[^}]*\} [1-9]/);
    } finally {
      if (stopped) replica.process.kill('SIGCONT');
    }
  });
});
