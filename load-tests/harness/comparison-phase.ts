/**
 * One comparison phase of `npm run bench:queue`: the same displays, the same
 * generator processes and the same calls as a hub phase, served by the
 * bare-uWebSockets.js limit, Mosquitto or NATS instead of the hub. The
 * calls are the hub's own queue events (call-feed.ts), published at the
 * same rate by the benchmark itself, so the figures compare the fan-out
 * alone: the hub's figures include its Redis commit, these start at the
 * publisher's write.
 */
import { join } from 'node:path';
import { QUEUE_NAMESPACE } from '@clinic-hub/protocol';
import type { BenchOptions, PhaseContext } from './bench-queue.js';
import { BENCH_CLINIC_ID, DISPLAY_TRACK, recordCallFeed } from './call-feed.js';
import { startLimitServers, startMosquitto, startNatsServer, type ComparisonKind, type ComparisonServer } from './comparison-servers.js';
import { deliveredEverything, fanoutFigures, fanoutOutcomeLine, joinDeliveries, type FanoutFigures, type TimedCall } from './fanout-figures.js';
import { FeedPublisher, type FeedTarget } from './feed-publisher.js';
import { BENCH_CLINICS_DIR } from './hub-process.js';
import { cpuPercent } from './resource-figures.js';
import { ProcessWatcher } from './proc-stats.js';
import { round } from './report.js';
import { now, sleep, atRate } from './time.js';
import { WorkerPool, generatorProfileDir } from './worker-pool.js';
import type { ClientWire } from './worker-protocol.js';

/** MQTT topic and NATS subject of the bench clinic's queue events. */
const TOPIC = `clinic/${BENCH_CLINIC_ID}/queue`;
const SUBJECT = `clinic.${BENCH_CLINIC_ID}.queue`;

export interface ComparisonPhaseReport extends FanoutFigures {
  server: ComparisonKind;
  /** The program and version that served the displays, and the wire they spoke. */
  software: string;
  wire: string;
  /** Each server process: the limit has one per hub node, a broker one. */
  servers: { name: string; pid: number; cpu_percent: number | null; peak_rss_mb: number | null }[];
}

const WIRE_WORDS: Record<ComparisonKind, (options: BenchOptions) => string> = {
  limit: () => 'Engine.IO v4 + Socket.IO v5 frames (the hub\u2019s bytes) over WebSocket, published to one uWS topic',
  mosquitto: (o) => `MQTT ${o.mqttVersion} over WebSocket, QoS 0, topic ${TOPIC}`,
  nats: () => `NATS over WebSocket, subject ${SUBJECT}`,
};

export async function runComparisonPhase(kind: ComparisonKind, options: BenchOptions, context: PhaseContext): Promise<ComparisonPhaseReport> {
  const { log, resources } = context;
  const tag = `[${kind}]`;
  const warmupCalls = Math.round(options.rate * options.warmupSeconds);
  const measuredCalls = Math.round(options.rate * options.seconds);
  const feed = await recordCallFeed({ port: context.redis.port, clinicsDir: BENCH_CLINICS_DIR, clinicId: BENCH_CLINIC_ID, calls: warmupCalls + measuredCalls });
  log(`${tag} phase: ${feed.length} calls of the hub's queue events recorded; ${options.clients} displays over ${options.workers} generator processes`);

  let servers: ComparisonServer[] = [];
  const stopServers = resources.add(`${kind} servers`, async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });
  if (kind === 'limit') {
    const profile = (i: number) => (options.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${join(options.profileDir, `limit-${i + 1}`)}`] : []);
    servers = await startLimitServers(options.nodes, { namespace: QUEUE_NAMESPACE, nodeArgs: profile });
  } else {
    servers = [kind === 'mosquitto' ? await startMosquitto(join(context.dir, 'mosquitto')) : await startNatsServer(join(context.dir, 'nats-server'))];
  }
  log(`${tag} servers up: ${servers.map((s) => `${s.name} pid ${s.pid} ${s.displayUrl}`).join(', ')} (${servers[0]!.version})`);

  const wire: ClientWire | undefined =
    kind === 'mosquitto' ? { kind: 'mqtt', topic: TOPIC, version: options.mqttVersion === '5' ? 5 : 4 } : kind === 'nats' ? { kind: 'nats', subject: SUBJECT } : undefined;
  const pool = new WorkerPool(options.workers, generatorProfileDir(options.profileDir, kind));
  const stopWorkers = resources.add(`${kind} generator processes`, () => pool.stop());
  const redisPid = context.redis.process.pid!;
  const watcher = new ProcessWatcher([...servers.map((s) => s.pid), ...pool.pids, process.pid, redisPid]);
  resources.add('process watcher', async () => watcher.stop());
  const sum: WorkerPool['sum'] = (pick) => pool.sum(pick);

  const connectSeconds = await pool.connect(options.clients, servers.map((s) => ({ url: s.displayUrl })), () => '', {
    nsp: QUEUE_NAMESPACE,
    ...(wire ? { wire } : {}),
    track: DISPLAY_TRACK,
    concurrency: options.rampConcurrency,
  }, { log, tag, fatal: context.fatal });
  const connected = sum((p) => p.connected);
  const connectFailed = sum((p) => p.failed);
  if (connected === 0) throw new Error(`no display could connect to ${kind}: see the errors above`);
  await sleep(500);

  const target: FeedTarget = { namespace: QUEUE_NAMESPACE, event: DISPLAY_TRACK.event, topic: TOPIC, subject: SUBJECT, mqttVersion: options.mqttVersion === '5' ? 5 : 4 };
  const publisher = await FeedPublisher.connect(kind, servers, feed, target);
  resources.add(`${kind} publisher`, async () => publisher.close());
  const calls: TimedCall[] = feed.map((call, k) => ({ seq: call.calledSeq, sentAt: NaN, measured: k >= warmupCalls }));
  const publish = (k: number) => {
    calls[k]!.sentAt = now();
    publisher.publish(k);
  };
  /** Waits until every display has the calls published so far, or `maxMs`. */
  const settle = async (published: number, maxMs: number) => {
    const deadline = now() + maxMs;
    while (sum((p) => p.tracked) < connected * published && now() < deadline) {
      await Promise.race([sleep(100), context.fatal]);
      pool.checkFatal();
    }
  };

  if (warmupCalls > 0) {
    log(`${tag} warm-up: ${warmupCalls} calls over ${options.warmupSeconds} s`);
    await atRate(warmupCalls, options.rate, publish);
    await publisher.drain();
    await settle(warmupCalls, 15_000);
    pool.checkFatal();
  }

  log(`${tag} measuring: ${measuredCalls} calls at ${options.rate}/s over ${options.seconds} s to ${connected} displays`);
  const markStart = watcher.mark();
  let lastProgress = now();
  const window = await atRate(measuredCalls, options.rate, (k) => {
    publish(warmupCalls + k);
    if (now() - lastProgress >= 2000 || k + 1 === measuredCalls) {
      lastProgress = now();
      log(`${tag} calls ${k + 1}/${measuredCalls}, ticket.called deliveries so far ${sum((p) => p.tracked)}`);
    }
  });
  const markEnd = watcher.mark();
  pool.checkFatal();
  await publisher.drain().catch((error: Error) => publisher.errors.push(`publisher: ${error.message}`));
  await settle(feed.length, options.settleSeconds * 1000);
  await sleep(300); // late duplicates, progress messages in flight
  const results = await pool.results();
  watcher.stop();
  log(`${tag} done; stopping generator processes and servers`);
  await stopWorkers();
  publisher.close();
  await stopServers();

  const joined = joinDeliveries(calls, results, window);
  const common = fanoutFigures({
    joined,
    calls,
    clients: options.clients,
    connected,
    connectFailed,
    connectSeconds,
    rate: options.rate,
    seconds: options.seconds,
    window,
    watcher,
    from: markStart,
    to: markEnd,
    serverPids: servers.map((s) => s.pid),
    generatorPids: results.map((r) => r.pid),
    otherOwnPids: [process.pid, redisPid],
    errors: [...publisher.errors],
  });
  const report: ComparisonPhaseReport = {
    server: kind,
    software: servers[0]!.version,
    wire: WIRE_WORDS[kind](options),
    ...common,
    servers: servers.map((s) => ({ name: s.name, pid: s.pid, cpu_percent: cpuPercent(s.pid, markStart, markEnd), peak_rss_mb: round(watcher.peakRssMb(s.pid)) })),
    ok: deliveredEverything(common, measuredCalls) && publisher.errors.length === 0,
  };
  log(fanoutOutcomeLine(tag, report));
  return report;
}
