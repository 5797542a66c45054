/**
 * `npm run bench:chat`: chat fan-out and notification latency, measured end to end.
 *
 * Chat: a private redis-server, a staff channel with `--members` members made
 * directly in Redis (createStaffChannel), two hub nodes as separate
 * processes, every member connected as a lean client (half on each node,
 * spread over the generator processes) and joined to the channel
 * (`chat:join`). `--senders` of the members post `--rate` messages a second
 * between them for `--seconds`. Reports the send → ack round trip, send →
 * delivery over every member (and per node), whether every member got every
 * message exactly once and in order, and the CPU and memory of each hub node
 * and of the load generator.
 *
 * Notifications: a notification worker process (hub/src/notify/worker-main.ts)
 * delivering SMS to the local Twilio-style provider of
 * hub/src/notify/test-support over HTTP; `--notifications` appointment
 * reminders enqueued at `--notify-rate` a second (NotificationService.enqueue,
 * as the hub does); reports enqueue → provider received.
 *
 * Writes load-tests/results/chat.json.
 *
 *   npm run bench:chat                                      (500 members, 20 messages/s for 10 s, 200 notifications)
 *   npm run bench:chat -- --members 50 --seconds 2 --notifications 20
 *   npm run bench:chat -- --profile var/profiles            (--cpu-prof on every hub node and generator process)
 */
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CHAT_NAMESPACE,
  NotifyContact,
  type ChatClientToServer,
  type ChatPayload,
  type ChatSendResult,
  type ChatThread,
  type ChatServerToClient,
  type Ack,
} from '@clinic-hub/protocol';
import { TokenIssuer } from '@clinic-hub/platform/token-issuer';
import { createStaffChannel } from '@clinic-hub/hub';
import { ClinicRegistry } from '@clinic-hub/hub';
import { NotificationService, loadNotifyConfig } from '@clinic-hub/hub';
import { providerKeyOf } from '@clinic-hub/hub';
import { LocalSmsApi } from '@clinic-hub/test-kit/providers/local-sms-api';
import { connectRedis } from '@clinic-hub/platform/redis';
import { benchCommandLine, reportedOptions, runBenchCli } from './bench-cli.js';
import { connectClients, redisCounters, startHubNodes, withBenchContext, type BenchContext, type BenchSetup, type WindowReadings } from './bench-setup.js';
import { BENCH_CLINICS_DIR, scrapeMetrics, startNotificationWorkerProcess } from './hub-process.js';
import { ProcessWatcher } from './proc-stats.js';
import { bucketFigures, busyWarning, cell, errorsCell, figures, firstErrors, machine, machineLine, pair, renderTable, round, verdict, type LatencyFigures, type MachineInfo } from './report.js';
import { SERVER_KINDS, cpuPercent, machineLoad, resourceFigures, type HubFigures, type ResourceFigures, type ServerKind } from './resource-figures.js';
import { Resources } from './resources.js';
import { histogramDelta, summarize } from './stats.js';
import { now, sleep } from './time.js';
import { placeClient } from './worker-pool.js';
import type { ScheduledEmit } from './worker-protocol.js';

/** The bench measures fan-out: no per-user, thread or clinic message quota may stop its senders. */
const UNLIMITED_CHAT_QUOTAS = {
  HUB_CHAT_QUOTA_MESSAGES_PER_MINUTE_USER: '0',
  HUB_CHAT_QUOTA_MESSAGES_PER_MINUTE_THREAD: '0',
  HUB_CHAT_QUOTA_MESSAGES_PER_MINUTE_CLINIC: '0',
};

export type { HubFigures, ServerKind };

export const CHAT_OPTIONS = benchCommandLine({
  name: 'bench:chat',
  report: 'load-tests/results/chat.json',
  profiles: 'every hub node, generator process and the notification worker',
  options: {
    members: { kind: 'integer', default: 500, min: 1, max: 20_000, help: 'members of the staff channel, each connected and joined' },
    /** The first members: spread over both nodes and every generator process. */
    senders: { kind: 'integer', default: 10, min: 1, max: 1000, help: 'members who post, spread over nodes and generator processes' },
    rate: { kind: 'number', arg: 'R', default: 20, min: 0.1, max: 1000, help: 'messages per second over all senders' },
    seconds: { kind: 'number', arg: 'S', default: 10, min: 0.5, max: 120, help: 'measured seconds of messages' },
    /** Messages before the measurement (JIT, connection pools); checked for delivery, left out of latency. */
    warmupSeconds: { flag: 'warmup', kind: 'number', arg: 'S', default: 2, min: 0, max: 60, help: 'unmeasured messages first' },
    nodes: { kind: 'integer', default: 2, min: 1, max: 4, help: 'hub node processes' },
    workers: { kind: 'integer', default: 2, min: 1, max: 16, help: 'generator processes' },
    server: { kind: 'choice', choices: SERVER_KINDS, default: 'uws', help: "the hub nodes' server" },
    rampConcurrency: { flag: 'ramp', kind: 'integer', default: 16, min: 1, max: 500, help: 'handshakes in flight per generator process' },
    settleSeconds: { flag: 'settle', kind: 'number', arg: 'S', default: 5, min: 0, max: 120, help: 'wait for late deliveries after the last message' },
    notifications: { kind: 'integer', default: 200, min: 0, max: 100_000, help: 'appointment reminders by SMS, measured; 0: no notification part' },
    notifyRate: { kind: 'number', arg: 'R', default: 50, min: 0.1, max: 5000, help: 'notifications enqueued per second' },
    /** Checked for delivery, left out of latency. */
    notifyWarmup: { kind: 'integer', default: 10, min: 0, max: 10_000, help: 'unmeasured notifications first' },
    targetP99Ms: { flag: 'target', kind: 'number', arg: 'MS', default: 100, min: 1, max: 60_000, help: 'chat delivery p99 budget checked in the report' },
  },
  finish(options) {
    if (options.rate * options.seconds < 1) throw new Error('--rate × --seconds must make at least one message');
    return options;
  },
});

export type ChatBenchOptions = typeof CHAT_OPTIONS.defaults;

const CLINIC_ID = 'bench';
const CHANNEL_ID = 'bench';
const JOIN: keyof ChatClientToServer = 'chat:join';
const SEND: keyof ChatClientToServer = 'chat:send';
const MESSAGE: keyof ChatServerToClient = 'chat:message';
/** The local SMS provider's account (hub/src/notify/test-support/local-sms-api.ts checks it). */
const SMS_ACCOUNT_SID = 'ACbench0000000000000000000000000001';
const SMS_AUTH_TOKEN = 'bench-sms-auth-token';
const SMS_FROM = '+81300000000';

const memberSub = (i: number) => `staff:${CLINIC_ID}:member-${String(i).padStart(4, '0')}`;

/** A hand-over note as staff write them: Japanese and English, no patient data. */
function messageText(k: number): string {
  return `申し送り ${k}: 第${(k % 20) + 1}診察室の準備ができました。Room ${(k % 20) + 1} is ready for the next patient.`;
}


export interface ChatReport extends ResourceFigures {
  server: ServerKind;
  /** What each node really ran on (uWS falls back to node when it cannot load). */
  server_actual: ServerKind[];
  nodes: number;
  thread: string;
  members: number;
  members_connected: number;
  connect_failed: number;
  connect_seconds: number | null;
  /** WebSocket open → namespace connected → chat:join acked, per member. */
  connect_and_join: LatencyFigures;
  senders: number;
  rate_per_second: number;
  seconds: number;
  messages: number;
  warmup_messages: number;
  /** Sends that were not stored: error codes of their acks, ACK_LOST, NOT_SENT. */
  send_errors: Record<string, number>;
  deliveries_expected: number;
  deliveries_received: number;
  missing: number;
  duplicates: number;
  /** Deliveries that reached a member after a later message of the thread had. */
  out_of_order: number;
  /** chat:message deliveries of a seq no send was acked with. */
  unexpected_messages: number;
  disconnects: number;
  malformed: number;
  /** chat:send → its ack, at the sender; measured messages. */
  send_to_ack: LatencyFigures;
  /** chat:send → chat:message at each member (the sender included); measured messages. */
  send_to_delivery: LatencyFigures & { mean_ms: number | null };
  /** The same, by the hub node the receiving member is connected to. */
  delivery_by_node: (LatencyFigures & { node: string; members: number })[];
  /**
   * Where the time goes, split at the commit (the message's Redis timestamp,
   * 1 ms resolution): send → committed in Redis, committed → at a member.
   */
  breakdown: {
    send_to_commit: LatencyFigures;
    commit_to_delivery: LatencyFigures;
    /**
     * send → the first member of each generator process to get it: the gap to
     * send→delivery is the time a generator process (and the hub writing to
     * it) takes to work through its members' copies of one message.
     */
    first_member_per_process: LatencyFigures;
  };
  /** clinic_hub_action_duration_seconds{action="chat:send",outcome="ok"} over the measured window, from buckets. */
  send_server: LatencyFigures;
  /** clinic_hub_chat_delivery_latency_seconds (Redis commit → emitted by a node) over the measured window, from buckets. */
  hub_commit_to_emit: LatencyFigures;
  /** chat:message deliveries per second at all members over the measured window. */
  deliveries_per_second: number | null;
  /** Every server → client event the members received during the run, by name. */
  events_by_name: Record<string, number>;
  /** One entry per measured message: when it was sent (s from the first), its ack and how long it took to reach the median and the last member. */
  timeline: { t_s: number; ack_ms: number | null; p50_ms: number | null; max_ms: number | null }[];
  window_seconds: number;
  errors: string[];
  ok: boolean;
}

export interface NotifyReport {
  channel: 'sms';
  provider: string;
  kind: string;
  worker_concurrency: number;
  notifications: number;
  warmup_notifications: number;
  rate_per_second: number;
  /** Measured and warm-up notifications the provider accepted (one per notification expected). */
  received: number;
  missing: number;
  /** Provider requests beyond the first for one notification. */
  duplicates: number;
  enqueue_errors: Record<string, number>;
  /** NotificationService.enqueue called → the provider received the request (both Date.now(), 1 ms resolution). */
  enqueue_to_provider: LatencyFigures;
  /** The enqueue call itself (the BullMQ add), at the caller. */
  enqueue_call: LatencyFigures;
  worker: { pid: number; cpu_percent: number | null; peak_rss_mb: number | null };
  redis_cpu_percent: number | null;
  machine_busy_percent: number | null;
  other_cpu_percent: number | null;
  window_seconds: number;
  errors: string[];
  ok: boolean;
}

export interface ChatBenchReport {
  chat: ChatReport;
  notifications: NotifyReport | null;
  target: { delivery_p99_ms: number; met: boolean | null };
  options: Omit<ChatBenchOptions, 'out' | 'profileDir'>;
  machine: MachineInfo;
  date: string;
  ok: boolean;
}

interface Context extends BenchContext {
  /** Random, per run: client message ids and notification keys never collide with an earlier run's. */
  runId: string;
}

interface SendRecord {
  k: number;
  measured: boolean;
  sentAt: number;
  ackAt: number;
  /** From the ack: the stored message's seq and Redis commit time. */
  seq: number | null;
  committedAt: number | null;
  error: string | null;
}

/** The chat part: channel, hub nodes, members, messages. Stops what it started before returning. */
async function runChat(options: ChatBenchOptions, context: Context): Promise<ChatReport> {
  const setup = await setUpChat(options, context);
  const driven = await driveMessages(setup, options, context);
  const report = chatReport(setup, driven, options);
  context.log(
    `${setup.tag} send→delivery p50 ${report.send_to_delivery.p50_ms} ms, p99 ${report.send_to_delivery.p99_ms} ms; deliveries ${report.deliveries_received}/${report.deliveries_expected}, missing ${report.missing}, duplicates ${report.duplicates}`,
  );
  return report;
}

/** What the chat part set up: the channel, hub nodes, its members connected and joined in the generator processes. */
interface ChatSetup extends BenchSetup {
  thread: ChatThread;
}

async function setUpChat(options: ChatBenchOptions, context: Context): Promise<ChatSetup> {
  const { log, redis } = context;
  const tag = '[chat]';
  const members = Array.from({ length: options.members }, (_, i) => memberSub(i));

  const setup = connectRedis(redis.url, 'bench-chat:setup');
  const thread = await createStaffChannel(setup, CLINIC_ID, {
    id: CHANNEL_ID,
    title: 'ベンチマーク / Benchmark',
    members,
    createdBy: members[0]!,
  }).finally(() => setup.quit());
  log(`${tag} staff channel ${thread.id} with ${thread.memberCount} members`);

  const secret = randomBytes(32).toString('base64url');
  // No per-connection send limit: the senders post faster than a person would.
  const { hubs, stop: stopHubs, warnings } = await startHubNodes(
    {
      count: options.nodes,
      idPrefix: 'bench-chat',
      server: options.server,
      redisEnv: context.redisEnv,
      secret,
      profileDir: options.profileDir,
      env: { HUB_CHAT_MESSAGES_PER_SECOND: '0', ...UNLIMITED_CHAT_QUOTAS },
    },
    context,
    tag,
  );

  const issuer = new TokenIssuer(secret);
  const joinPayload: ChatPayload<'chat:join'> = { threadId: thread.id };
  const clients = await connectClients(
    { workers: options.workers, profileDir: options.profileDir, label: 'chat', count: options.members, who: 'member' },
    hubs,
    (i) => issuer.issueSync({ sub: members[i]!, role: 'staff', clinic: CLINIC_ID }, 3600).token,
    { nsp: CHAT_NAMESPACE, join: { event: JOIN, payload: joinPayload }, track: { event: MESSAGE, keyField: 'seq' }, concurrency: options.rampConcurrency },
    context,
    tag,
  );
  return { tag, thread, hubs, stopHubs, ...clients, errors: [...warnings] };
}

/** What the chat part measured: every message sent, the window, and the counters around it. */
interface DrivenMessages extends WindowReadings {
  records: Map<string, SendRecord>;
  senders: number;
  total: number;
  windowStart: number;
  windowEnd: number;
}

/** Warm-up, then messages at the rate from the senders over the window; waits for acks and deliveries, then stops the generators and hub nodes. */
async function driveMessages(setup: ChatSetup, options: ChatBenchOptions, context: Context): Promise<DrivenMessages> {
  const { log, redis } = context;
  const { tag, pool, hubs, thread, connected, watcher } = setup;
  const period = 1000 / options.rate;
  const senders = Math.min(options.senders, options.members);
  const records = new Map<string, SendRecord>();
  let nextK = 0;
  /** Schedules `count` messages at the rate from `start`; returns when the last one is due. */
  const post = (count: number, measured: boolean, start: number): number => {
    const perWorker: ScheduledEmit[][] = Array.from({ length: pool.size }, () => []);
    for (let j = 0; j < count; j++) {
      const k = nextK++;
      const place = placeClient(k % senders, pool.size, hubs.length);
      const id = `m${k}`;
      records.set(id, { k, measured, sentAt: NaN, ackAt: NaN, seq: null, committedAt: null, error: null });
      const payload: ChatPayload<'chat:send'> = {
        threadId: thread.id,
        clientMessageId: `${context.runId}-${String(k).padStart(6, '0')}`,
        text: messageText(k),
      };
      perWorker[place.worker]!.push({ id, client: place.local, at: start + j * period, event: SEND, payload });
    }
    pool.emit(perWorker);
    return start + count * period;
  };
  /** Waits for every ack (up to 15 s), then for every delivery (up to the settle time). */
  const settle = async (settleSeconds: number) => {
    const ackDeadline = now() + 15_000;
    while (pool.sum((p) => p.acked) < records.size && now() < ackDeadline) {
      await Promise.race([sleep(50), context.fatal]);
      pool.checkFatal();
    }
    const deadline = now() + settleSeconds * 1000;
    while (pool.sum((p) => p.tracked) < connected * pool.sum((p) => p.acked) && now() < deadline) {
      await Promise.race([sleep(50), context.fatal]);
      pool.checkFatal();
    }
  };

  const warmupCount = Math.round(options.rate * options.warmupSeconds);
  if (warmupCount > 0) {
    log(`${tag} warm-up: ${warmupCount} messages over ${options.warmupSeconds} s`);
    const end = post(warmupCount, false, now() + 200);
    await sleep(Math.max(0, end - now()));
    await settle(5);
  }

  const metricsBefore = await scrapeMetrics(hubs);
  const redisBefore = await redisCounters(redis.port);
  const total = Math.round(options.rate * options.seconds);
  log(`${tag} measuring: ${total} messages at ${options.rate}/s from ${senders} senders over ${options.seconds} s to ${connected} members`);
  // A little lead so every generator process has its schedule before the first message is due.
  const windowStart = now() + 300;
  const windowEnd = post(total, true, windowStart);
  await sleep(Math.max(0, windowStart - now()));
  const markStart = watcher.mark();
  while (now() < windowEnd) {
    await Promise.race([sleep(Math.min(2000, Math.max(0, windowEnd - now()))), context.fatal]);
    pool.checkFatal();
    log(`${tag} messages acked ${pool.sum((p) => p.acked)}/${records.size}, deliveries so far ${pool.sum((p) => p.tracked)}`);
  }
  const markEnd = watcher.mark();
  const redisAfter = await redisCounters(redis.port);
  await settle(options.settleSeconds);
  await sleep(300); // late duplicates, progress messages in flight
  const metricsAfter = await scrapeMetrics(hubs);
  const results = await pool.results();
  await setup.stopWatcher();
  log(`${tag} done; stopping generator processes and hub nodes`);
  await setup.stopWorkers();
  await setup.stopHubs();
  return { records, senders, total, windowStart, windowEnd, markStart, markEnd, metricsBefore, metricsAfter, redisBefore, redisAfter, results };
}

/** Fills each record from its ack; returns the count of each send error. */
function readAcks(records: Map<string, SendRecord>, results: DrivenMessages['results']): Record<string, number> {
  const sendErrors: Record<string, number> = {};
  for (const result of results) {
    for (const emit of result.emits) {
      const record = records.get(emit.id);
      if (!record) continue;
      record.sentAt = emit.sentAt;
      record.ackAt = emit.ackAt;
      const ack = emit.ack as Ack<ChatSendResult> | null;
      if (Number.isNaN(emit.sentAt)) record.error = 'NOT_SENT';
      else if (!ack) record.error = 'ACK_LOST';
      else if (!ack.ok) record.error = ack.error.code;
      else if (ack.duplicate) record.error = 'STORED_TWICE_ACK';
      else {
        record.seq = ack.message.seq;
        record.committedAt = ack.message.at;
      }
      if (record.error) sendErrors[record.error] = (sendErrors[record.error] ?? 0) + 1;
    }
  }
  return sendErrors;
}

/** The chat part's figures: sends and acks, every member's deliveries and their latency, CPU and memory. */
function chatReport(setup: ChatSetup, driven: DrivenMessages, options: ChatBenchOptions): ChatReport {
  const { hubs, pool, connected, connectFailed, errors } = setup;
  const { records, results, windowStart, windowEnd, markStart, markEnd, metricsBefore, metricsAfter } = driven;
  const sendErrors = readAcks(records, results);
  const stored = [...records.values()].filter((r) => r.seq !== null).sort((a, b) => a.k - b.k);
  const measured = stored.filter((r) => r.measured);
  const bySeq = new Map(stored.map((r) => [r.seq!, r]));

  // Deliveries and latency.
  const latencies = new Float64Array(measured.length * connected);
  const fromCommit = new Float64Array(measured.length * connected);
  const byNode: number[][] = hubs.map(() => []);
  const membersByNode = hubs.map(() => 0);
  const perMessage = new Map<SendRecord, number[]>(measured.map((r) => [r, []]));
  const firstPerProcess: number[] = [];
  const handshakes: number[] = [];
  const events: Record<string, number> = {};
  let count = 0;
  let received = 0;
  let missing = 0;
  let duplicates = 0;
  let unexpected = 0;
  let outOfOrder = 0;
  let delivered = 0;
  let malformed = 0;
  let disconnects = 0;
  results.forEach((result, w) => {
    const nodes = pool.nodesOf(w);
    const index = new Map<number, number>();
    result.keys.forEach((seq, i) => {
      index.set(seq, i);
      if (!bySeq.has(seq)) unexpected++;
    });
    for (const n of result.duplicates) duplicates += n;
    for (let d = 0; d < result.clients; d++) if (result.joined[d] === 1) membersByNode[nodes[d]!]! += 1;
    for (const record of stored) {
      const i = index.get(record.seq!);
      const times = i === undefined ? null : result.times[i]!;
      let first = Infinity;
      for (let d = 0; d < result.clients; d++) {
        if (result.joined[d] !== 1) continue;
        const at = times ? times[d]! : NaN;
        if (Number.isNaN(at)) {
          missing++;
          continue;
        }
        received++;
        if (!record.measured) continue;
        if (at < first) first = at;
        const latency = at - record.sentAt;
        latencies[count] = latency;
        fromCommit[count++] = at - record.committedAt!;
        byNode[nodes[d]!]!.push(latency);
        perMessage.get(record)!.push(latency);
      }
      if (record.measured && first !== Infinity) firstPerProcess.push(first - record.sentAt);
    }
    for (let d = 0; d < result.clients; d++) if (result.joined[d] === 1) handshakes.push(result.connectMs[d]!);
    for (const [name, n] of Object.entries(result.events)) events[name] = (events[name] ?? 0) + n;
    for (const [bucket, n] of result.buckets) {
      const at = bucket * result.bucketMs;
      if (at >= windowStart && at < windowEnd) delivered += n;
    }
    outOfOrder += result.outOfOrder;
    malformed += result.malformed;
    disconnects += result.disconnects;
    for (const e of result.errors) if (errors.length < 30) errors.push(e);
  });
  const latency = summarize(latencies.subarray(0, count));
  const windowSeconds = (markEnd.at - markStart.at) / 1000;
  const report: ChatReport = {
    server: options.server,
    server_actual: hubs.map((h) => h.server),
    nodes: hubs.length,
    thread: setup.thread.id,
    members: options.members,
    members_connected: connected,
    connect_failed: connectFailed,
    connect_seconds: round(setup.connectSeconds, 2),
    connect_and_join: figures(summarize(handshakes)),
    senders: driven.senders,
    rate_per_second: options.rate,
    seconds: options.seconds,
    messages: measured.length,
    warmup_messages: stored.length - measured.length,
    send_errors: sendErrors,
    deliveries_expected: connected * stored.length,
    deliveries_received: received,
    missing,
    duplicates,
    out_of_order: outOfOrder,
    unexpected_messages: unexpected,
    disconnects,
    malformed,
    send_to_ack: figures(summarize(measured.map((r) => r.ackAt - r.sentAt)), 2),
    send_to_delivery: { ...figures(latency), mean_ms: round(latency.mean) },
    delivery_by_node: hubs.map((h, n) => ({ node: h.nodeId, members: membersByNode[n]!, ...figures(summarize(byNode[n]!)) })),
    breakdown: {
      send_to_commit: figures(summarize(measured.map((r) => r.committedAt! - r.sentAt))),
      commit_to_delivery: figures(summarize(fromCommit.subarray(0, count))),
      first_member_per_process: figures(summarize(firstPerProcess)),
    },
    send_server: bucketFigures(histogramDelta(metricsBefore, metricsAfter, 'clinic_hub_action_duration_seconds', { action: 'chat:send', outcome: 'ok' })),
    hub_commit_to_emit: bucketFigures(histogramDelta(metricsBefore, metricsAfter, 'clinic_hub_chat_delivery_latency_seconds')),
    deliveries_per_second: round(delivered / ((windowEnd - windowStart) / 1000), 0),
    events_by_name: events,
    timeline: measured.map((r) => {
      const summary = summarize(perMessage.get(r)!);
      return { t_s: round((r.sentAt - windowStart) / 1000, 2)!, ack_ms: round(r.ackAt - r.sentAt), p50_ms: round(summary.p50), max_ms: round(summary.max) };
    }),
    ...resourceFigures({
      watcher: setup.watcher,
      from: markStart,
      to: markEnd,
      hubs,
      generatorPids: results.map((r) => r.pid),
      redisPid: setup.redisPid,
      redisBefore: driven.redisBefore,
      redisAfter: driven.redisAfter,
      windowSeconds,
    }),
    window_seconds: round(windowSeconds, 2)!,
    errors,
    ok: false,
  };
  report.ok =
    missing === 0 &&
    duplicates === 0 &&
    outOfOrder === 0 &&
    unexpected === 0 &&
    connectFailed === 0 &&
    disconnects === 0 &&
    malformed === 0 &&
    Object.keys(sendErrors).length === 0 &&
    measured.length === driven.total &&
    report.server_actual.every((s) => s === options.server);
  return report;
}

interface NoticeRecord {
  i: number;
  measured: boolean;
  /** The provider idempotency key the worker sends with this notification. */
  providerKey: string;
  /** Date.now() when enqueue was called: the provider's clock. */
  enqueuedAt: number;
  enqueueMs: number;
  error: string | null;
}

/** The notification part: a worker process, the local SMS provider, reminders enqueued at a steady rate. */
async function runNotifications(options: ChatBenchOptions, context: Context): Promise<NotifyReport> {
  const { log, resources, redis } = context;
  const tag = '[notify]';
  const errors: string[] = [];
  const sms = await new LocalSmsApi(SMS_ACCOUNT_SID, SMS_AUTH_TOKEN).start();
  resources.add('local SMS provider', () => sms.stop());
  const env = {
    REDIS_URL: redis.url,
    CLINICS_DIR: BENCH_CLINICS_DIR,
    NOTIFY_NODE_ID: 'bench-notify',
    NOTIFY_QUIET_HOURS: 'off',
    NOTIFY_SMS_API_BASE_URL: sms.url,
    NOTIFY_SMS_ACCOUNT_SID: SMS_ACCOUNT_SID,
    NOTIFY_SMS_AUTH_TOKEN: SMS_AUTH_TOKEN,
    NOTIFY_SMS_FROM: SMS_FROM,
  };
  const config = loadNotifyConfig({ ...env, LOG_LEVEL: 'silent' });
  const nodeArgs = options.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${join(options.profileDir, 'notify-worker')}`] : [];
  const worker = await startNotificationWorkerProcess({ env, nodeArgs });
  const stopWorker = resources.add('notification worker', () => worker.stop());
  log(`${tag} notification worker pid ${worker.pid} (concurrency ${config.concurrency}), local Twilio-style SMS provider on ${sms.url}`);
  const notifications = new NotificationService({ config, clinics: ClinicRegistry.fromDirectory(BENCH_CLINICS_DIR) });
  const closeService = resources.add('notification service', () => notifications.close());
  const watcher = new ProcessWatcher([worker.pid, redis.process.pid!, process.pid]);
  const stopWatcher = resources.add('process watcher', async () => watcher.stop());

  // One appointment per notification, with its patient's SMS contact (as scheduleAppointmentReminders stores it).
  const count = options.notifyWarmup + options.notifications;
  const startsAt = Date.now() + 3600_000;
  const contacts: NotifyContact[] = [];
  for (let i = 0; i < count; i++) {
    const contact = NotifyContact.parse({ channel: 'sms', address: `+8190${String(i).padStart(8, '0')}`, locale: i % 2 === 0 ? 'ja' : 'en', quietHours: null });
    contacts.push(contact);
    await notifications.contacts.setAppointment(CLINIC_ID, appointmentId(context.runId, i), { contact, startsAt, jobIds: [] }, startsAt + 86_400_000);
  }

  const records: NoticeRecord[] = [];
  const errorCounts: Record<string, number> = {};
  const pending = new Set<Promise<void>>();
  const enqueueOne = (i: number, measured: boolean) => {
    const idempotencyKey = `bench.${context.runId}.${i}`;
    const record: NoticeRecord = {
      i,
      measured,
      providerKey: providerKeyOf(NotificationService.jobId(CLINIC_ID, idempotencyKey)),
      enqueuedAt: Date.now(),
      enqueueMs: NaN,
      error: null,
    };
    records.push(record);
    const called = now();
    const p = notifications
      .enqueue(
        {
          clinic: CLINIC_ID,
          kind: 'reminder_1h',
          recipient: { type: 'appointment', appointmentId: appointmentId(context.runId, i), startsAt },
          vars: { startsAt },
          idempotencyKey,
        },
        contacts[i],
      )
      .then(
        (result) => {
          record.enqueueMs = now() - called;
          if (!result.ok) record.error = result.error.code;
        },
        (error: Error) => {
          record.error = 'ENQUEUE_FAILED';
          if (errors.length < 30) errors.push(`notification ${i}: ${error.message}`);
        },
      )
      .then(() => {
        if (record.error) errorCounts[record.error] = (errorCounts[record.error] ?? 0) + 1;
      });
    pending.add(p);
    void p.finally(() => pending.delete(p));
  };
  const receivedKeys = () => new Set(sms.requests.map((r) => r.headers['idempotency-key']));
  /** Enqueues `n` at the rate, on an absolute schedule; waits until the provider has them all or `waitSeconds` passed. */
  const run = async (from: number, n: number, measured: boolean, waitSeconds: number) => {
    const period = 1000 / options.notifyRate;
    const start = now();
    let lastLine = now();
    for (let j = 0; j < n; j++) {
      const wait = start + j * period - now();
      if (wait > 0) await sleep(wait);
      enqueueOne(from + j, measured);
      if (measured && now() - lastLine >= 1000) {
        lastLine = now();
        log(`${tag} enqueued ${j + 1}/${n}, received by the provider ${sms.accepted.length - options.notifyWarmup}`);
      }
    }
    while (pending.size > 0) await Promise.all([...pending]);
    const deadline = now() + waitSeconds * 1000;
    const keys = records.map((r) => r.providerKey);
    while (now() < deadline) {
      const got = receivedKeys();
      if (keys.every((k) => got.has(k))) break;
      await Promise.race([sleep(20), context.fatal]);
    }
  };

  if (options.notifyWarmup > 0) {
    log(`${tag} warm-up: ${options.notifyWarmup} notifications`);
    await run(0, options.notifyWarmup, false, 10);
  }
  log(`${tag} measuring: ${options.notifications} appointment reminders by SMS at ${options.notifyRate}/s`);
  const markStart = watcher.mark();
  await run(options.notifyWarmup, options.notifications, true, options.settleSeconds + 5);
  const markEnd = watcher.mark();
  await sleep(200); // a late second request for one notification
  await stopWatcher();
  await closeService();
  await stopWorker();

  const firstAt = new Map<string, number>();
  const requestsPerKey = new Map<string, number>();
  for (const request of sms.requests) {
    const key = request.headers['idempotency-key'] as string | undefined;
    if (!key) continue;
    requestsPerKey.set(key, (requestsPerKey.get(key) ?? 0) + 1);
    if (!firstAt.has(key)) firstAt.set(key, request.at);
  }
  let received = 0;
  let duplicates = 0;
  const latencies: number[] = [];
  for (const record of records) {
    const at = firstAt.get(record.providerKey);
    if (at === undefined) continue;
    received++;
    duplicates += requestsPerKey.get(record.providerKey)! - 1;
    if (record.measured) latencies.push(at - record.enqueuedAt);
  }
  const cpu = (pid: number) => cpuPercent(pid, markStart, markEnd);
  const report: NotifyReport = {
    channel: 'sms',
    provider: 'local Twilio-style SMS API (hub/src/notify/test-support/local-sms-api.ts), HTTP on 127.0.0.1',
    kind: 'reminder_1h',
    worker_concurrency: config.concurrency,
    notifications: records.filter((r) => r.measured).length,
    warmup_notifications: records.filter((r) => !r.measured).length,
    rate_per_second: options.notifyRate,
    received,
    missing: records.length - received,
    duplicates,
    enqueue_errors: errorCounts,
    enqueue_to_provider: figures(summarize(latencies), 0),
    enqueue_call: figures(summarize(records.filter((r) => r.measured).map((r) => r.enqueueMs)), 2),
    worker: { pid: worker.pid, cpu_percent: cpu(worker.pid), peak_rss_mb: round(watcher.peakRssMb(worker.pid)) },
    redis_cpu_percent: cpu(redis.process.pid!),
    ...machineLoad(markStart, markEnd, [worker.pid, redis.process.pid!, process.pid]),
    window_seconds: round((markEnd.at - markStart.at) / 1000, 2)!,
    errors,
    ok: false,
  };
  report.ok = report.missing === 0 && duplicates === 0 && Object.keys(errorCounts).length === 0;
  log(`${tag} enqueue→provider p50 ${report.enqueue_to_provider.p50_ms} ms, p99 ${report.enqueue_to_provider.p99_ms} ms; received ${received}/${records.length}`);
  return report;
}

const appointmentId = (runId: string, i: number) => `bench-${runId}-${i}`;

/** Runs the chat part, then the notification part, and returns the report. Stops everything it started, whatever happens. */
export async function runChatBench(
  options: ChatBenchOptions,
  log: (line: string) => void = (l) => process.stdout.write(`${l}\n`),
  resources = new Resources(),
): Promise<ChatBenchReport> {
  return withBenchContext('bench-chat', options, log, resources, async (bench) => {
    const context: Context = { ...bench, runId: randomBytes(6).toString('base64url') };
    const chat = await runChat(options, context);
    const notifications = options.notifications > 0 ? await runNotifications(options, context) : null;
    const p99 = chat.send_to_delivery.p99_ms;
    return {
      chat,
      notifications,
      target: { delivery_p99_ms: options.targetP99Ms, met: p99 === null ? null : p99 < options.targetP99Ms },
      options: reportedOptions(options),
      machine: machine(),
      date: new Date().toISOString(),
      ok: chat.ok && (notifications?.ok ?? true),
    };
  });
}

/** The table printed at the end of a run. */
export function formatTable(report: ChatBenchReport): string {
  const c = report.chat;
  const all = (f: LatencyFigures) => `${cell(f.p50_ms)} / ${cell(f.p95_ms)} / ${cell(f.p99_ms)} / ${cell(f.max_ms)}`;
  const chatRows: [string, unknown][] = [
    ['hub nodes (server)', `${c.nodes} × ${[...new Set(c.server_actual)].join('/')}`],
    ['members connected and joined', `${c.members_connected}/${c.members}`],
    ['connect + join all (s)', c.connect_seconds],
    ['connect + join p50 / p99 (ms)', pair(c.connect_and_join)],
    ['messages measured (+ warm-up)', `${c.messages} (+${c.warmup_messages}) at ${c.rate_per_second}/s from ${c.senders} senders`],
    ['deliveries expected', c.deliveries_expected],
    ['deliveries received', c.deliveries_received],
    ['missing / duplicates / out of order', `${c.missing} / ${c.duplicates} / ${c.out_of_order}`],
    ['send→ack p50 / p95 / p99 / max (ms)', all(c.send_to_ack)],
    ['send→ack server p50 / p99 (ms, buckets)', pair(c.send_server)],
    ['send→delivery p50 (ms)', c.send_to_delivery.p50_ms],
    ['send→delivery p95 (ms)', c.send_to_delivery.p95_ms],
    ['send→delivery p99 (ms)', c.send_to_delivery.p99_ms],
    ['send→delivery max (ms)', c.send_to_delivery.max_ms],
    ...c.delivery_by_node.map((n): [string, unknown] => [`  members on ${n.node} (${n.members}) p50 / p99`, pair(n)]),
    ['  send→commit p50 / p99 (ms)', pair(c.breakdown.send_to_commit)],
    ['  commit→delivery p50 / p99 (ms)', pair(c.breakdown.commit_to_delivery)],
    ['  first member per gen. process p50 / p99', pair(c.breakdown.first_member_per_process)],
    ['hub commit→emit p50 / p99 (ms, buckets)', pair(c.hub_commit_to_emit)],
    ['deliveries / s', c.deliveries_per_second],
    ...c.hubs.map((h, i): [string, unknown] => [`hub node ${i + 1} CPU % / peak RSS MB`, `${cell(h.cpu_percent)} / ${cell(h.peak_rss_mb)}`]),
    ['generator CPU % / peak RSS MB', `${cell(c.generator.cpu_percent)} / ${cell(c.generator.peak_rss_mb)} (${c.generator.processes} procs)`],
    ['coordinator CPU %', c.coordinator.cpu_percent],
    ['redis-server CPU %', c.redis.cpu_percent],
    ['redis commands / s, AOF KB / s', `${cell(c.redis.commands_per_second)}, ${cell(c.redis.aof_bytes_per_second === null ? null : c.redis.aof_bytes_per_second / 1024)}`],
    ['machine busy % (all cores)', c.machine_busy_percent],
    ['other programs CPU % (not ours)', c.other_cpu_percent],
    ['errors', errorsCell(c.ok, c.send_errors, c.errors)],
  ];
  const lines = renderTable(
    [`chat: staff channel of ${c.members}`, ''],
    chatRows.map(([label, value]) => [label, cell(value)]),
  );
  lines.push(...firstErrors('chat', c.errors));
  const n = report.notifications;
  if (n) {
    const notifyRows: [string, unknown][] = [
      ['channel (provider)', `SMS (local Twilio-style API over HTTP)`],
      ['notifications measured (+ warm-up)', `${n.notifications} (+${n.warmup_notifications}) ${n.kind} at ${n.rate_per_second}/s`],
      ['received by the provider / missing / duplicates', `${n.received} / ${n.missing} / ${n.duplicates}`],
      ['enqueue→provider p50 (ms)', n.enqueue_to_provider.p50_ms],
      ['enqueue→provider p95 (ms)', n.enqueue_to_provider.p95_ms],
      ['enqueue→provider p99 (ms)', n.enqueue_to_provider.p99_ms],
      ['enqueue→provider max (ms)', n.enqueue_to_provider.max_ms],
      ['enqueue call p50 / p99 (ms)', pair(n.enqueue_call)],
      ['worker CPU % / peak RSS MB', `${cell(n.worker.cpu_percent)} / ${cell(n.worker.peak_rss_mb)} (concurrency ${n.worker_concurrency})`],
      ['redis-server CPU %', n.redis_cpu_percent],
      ['other programs CPU % (not ours)', n.other_cpu_percent],
      ['errors', errorsCell(n.ok, n.enqueue_errors, n.errors)],
    ];
    lines.push('', ...renderTable(['notifications', ''], notifyRows.map(([label, value]) => [label, cell(value)])));
    lines.push(...firstErrors('notification', n.errors));
  }
  lines.push(...busyWarning([{ during: 'chat', other_cpu_percent: c.other_cpu_percent }, ...(n ? [{ during: 'notifications', other_cpu_percent: n.other_cpu_percent }] : [])]));
  const target = report.target;
  lines.push(
    '',
    `target: chat send→delivery p99 < ${target.delivery_p99_ms} ms to ${c.members} members on ${c.nodes} nodes: ${verdict(target.met)}`,
    machineLine(report.machine),
  );
  return lines.join('\n');
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  void runBenchCli({ commandLine: CHAT_OPTIONS, run: runChatBench, format: formatTable });
}
