/**
 * `npm run bench:queue`: waiting-room fan-out, measured end to end.
 *
 * Starts a private redis-server, then for each server kind (uWebSockets.js,
 * then Node HTTP + ws as the baseline) two hub nodes as separate processes,
 * N lean display clients spread over both nodes and over 4 generator
 * processes, and one staff client that checks in and calls patients at a
 * steady rate. Reports how long each call takes to reach every display
 * (p50/p95/p99/max), whether every display got every call exactly once, the
 * queue operation's own latency, and the CPU and memory of each hub node and
 * of the load generator itself. Writes load-tests/results/queue.json.
 *
 *   npm run bench:queue -- --clients 2000 --rate 10 --seconds 10
 *   npm run bench:queue -- --clients 200 --seconds 3 --servers uws
 *   npm run bench:queue -- --profile var/profiles      (--cpu-prof on every hub node)
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClinicConfig, QUEUE_NAMESPACE, type ActionResult, type Ack, type CheckinResult, type QueueServerToClient } from '@clinic-hub/protocol';
import { TokenIssuer } from '@clinic-hub/platform/token-issuer';
import { startRedisServer, type RedisProcess } from '@clinic-hub/platform/redis-server';
import { benchCommandLine, reportedOptions, runBenchCli } from './bench-cli.js';
import { BENCH_CLINICS_DIR, scrapeMetrics, startHubNode } from './hub-process.js';
import { LeanSocket } from './lean-socket.js';
import { ProcessWatcher } from './proc-stats.js';
import { redisCommand, redisInfoNumber } from './redis-command.js';
import { bucketFigures, busyWarning, cell, errorsCell, figures, firstErrors, machine, machineLine, renderTable, round, verdict, type LatencyFigures, type MachineInfo } from './report.js';
import { SERVER_KINDS, resourceFigures, type ResourceFigures, type ServerKind } from './resource-figures.js';
import { Resources } from './resources.js';
import { histogramDelta, summarize } from './stats.js';
import { now, sleep } from './time.js';
import { WorkerPool, generatorProfileDir } from './worker-pool.js';

export type { LatencyFigures } from './report.js';

export type { ServerKind };

export const QUEUE_OPTIONS = benchCommandLine({
  name: 'bench:queue',
  report: 'load-tests/results/queue.json',
  profiles: 'every hub node and generator process',
  options: {
    clients: { kind: 'integer', default: 2000, min: 1, max: 20_000, help: 'display clients, spread over the nodes and generator processes' },
    rate: { kind: 'number', arg: 'R', default: 10, min: 0.1, max: 200, help: 'call-next per second' },
    seconds: { kind: 'number', arg: 'S', default: 10, min: 0.5, max: 120, help: 'measured seconds of calls' },
    /** Calls before the measurement (JIT, connection pools); checked for delivery, left out of latency. */
    warmupSeconds: { flag: 'warmup', kind: 'number', arg: 'S', default: 2, min: 0, max: 60, help: 'unmeasured calls first' },
    nodes: { kind: 'integer', default: 2, min: 1, max: 4, help: 'hub node processes per phase' },
    workers: { kind: 'integer', default: 4, min: 1, max: 16, help: 'generator processes' },
    servers: { kind: 'choice', list: true, choices: SERVER_KINDS, default: SERVER_KINDS, help: 'phases, in order: the first is reported, the second is the baseline' },
    rampConcurrency: { flag: 'ramp', kind: 'integer', default: 16, min: 1, max: 500, help: 'handshakes in flight per generator process' },
    settleSeconds: { flag: 'settle', kind: 'number', arg: 'S', default: 5, min: 0, max: 120, help: 'wait for late deliveries after the last call' },
    targetP99Ms: { flag: 'target', kind: 'number', arg: 'MS', default: 100, min: 1, max: 60_000, help: 'p99 budget checked in the report' },
  },
  finish(options) {
    if (options.rate * options.seconds < 1) throw new Error('--rate × --seconds must make at least one call');
    return options;
  },
});

export type BenchOptions = typeof QUEUE_OPTIONS.defaults;

const CLINIC_ID = 'bench';
/** The broadcast every display receives; ticket.called events are the ones timed. */
const QUEUE_EVENT: keyof QueueServerToClient = 'queue:event';

export interface PhaseReport extends ResourceFigures {
  server: ServerKind;
  /** What each node really ran on (uWS falls back to node when it cannot load). */
  server_actual: ServerKind[];
  nodes: number;
  clients: number;
  clients_connected: number;
  connect_failed: number;
  connect_seconds: number | null;
  connect_handshake: LatencyFigures;
  rate_per_second: number;
  seconds: number;
  calls: number;
  warmup_calls: number;
  call_errors: Record<string, number>;
  deliveries_expected: number;
  deliveries_received: number;
  missing: number;
  duplicates: number;
  unexpected_called_events: number;
  disconnects: number;
  malformed: number;
  /** call-next sent by staff → ticket.called received by a display; measured calls only. */
  p50_ms: number | null;
  p95_ms: number | null;
  p99_ms: number | null;
  max_ms: number | null;
  mean_ms: number | null;
  /**
   * Where the time goes, split at the commit (the event's Redis timestamp, 1 ms
   * resolution): staff send → committed in Redis, and committed → on a display
   * (Redis publish, hub fan-out, network, generator).
   */
  breakdown: {
    send_to_commit: LatencyFigures;
    commit_to_display: LatencyFigures;
    /**
     * call → the first display of each generator process to get it. The gap
     * to call→display is the time a generator process takes to work through
     * its displays' copies of one broadcast (and the hub to write them).
     */
    first_display_per_process: LatencyFigures;
  };
  /**
   * One entry per measured call, in order: when it was sent (s from the first
   * measured call), its ack round trip and how long it took to reach the
   * median and the last display. Periodic stalls show up here.
   */
  timeline: { t_s: number; ack_ms: number | null; p50_ms: number | null; max_ms: number | null }[];
  /** call-next ack round trip at the staff client. */
  queue_op: LatencyFigures;
  /** checkin ack round trip at the staff client. */
  checkin_op: LatencyFigures;
  /** clinic_hub_action_duration_seconds{action="queue:call-next"} over the measured window, estimated from buckets. */
  queue_op_server: LatencyFigures;
  /** The same for checkin (which also signs the patient's ticket token). */
  checkin_op_server: LatencyFigures;
  /** clinic_hub_event_latency_seconds (Redis commit → emit on a node) over the measured window, from buckets. */
  hub_commit_to_emit: LatencyFigures;
  /** queue:event messages (all types) received by all displays per second over the measured window. */
  messages_per_second: number | null;
  events_by_type: Record<string, number>;
  window_seconds: number;
  errors: string[];
  ok: boolean;
}

export interface BenchReport extends Partial<PhaseReport> {
  baseline?: PhaseReport;
  /** Every phase in order (not written to the JSON file: the top level is the first, `baseline` the second). */
  phases: PhaseReport[];
  /** baseline p99 / uws p99. */
  p99_ratio_baseline_over_uws?: number | null;
  target: { p99_ms: number; met: boolean | null };
  options: Omit<BenchOptions, 'out' | 'profileDir'>;
  machine: MachineInfo;
  date: string;
  ok: boolean;
}

interface CallRecord {
  index: number;
  requestId: string;
  measured: boolean;
  sentAt: number;
  ackAt: number | null;
  seq: number | null;
  /** Redis clock of the commit (event.at, ms). */
  committedAt: number | null;
  error: string | null;
}

/** The staff side: one lean socket that checks in, calls next and starts, at a steady rate. */
class Staff {
  readonly calls: CallRecord[] = [];
  readonly checkinMs: number[] = [];
  readonly errors = new Map<string, number>();
  private readonly pending = new Set<Promise<unknown>>();
  private callIndex = 0;
  /** Rooms whose last patient has started (call-next there finishes them): least recently used first. */
  private readonly freeRooms: string[];

  constructor(
    private readonly socket: LeanSocket,
    private readonly phase: string,
    private readonly dept: string,
    rooms: string[],
  ) {
    this.freeRooms = [...rooms];
  }

  private count(code: string): void {
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
  }

  private track<T>(promise: Promise<T>): void {
    const p = promise.catch((error: Error) => this.count(error.message.startsWith('no ack') ? 'ACK_TIMEOUT' : 'SOCKET_ERROR'));
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  /** Checks in one patient; its ack round trip is kept when `measured`. */
  async checkin(measured = false): Promise<void> {
    const sent = now();
    const ack = await this.socket.emitWithAck<Ack<CheckinResult>>('queue:checkin', { dept: this.dept });
    if (!ack.ok) this.count(`checkin:${ack.error.code}`);
    else if (measured) this.checkinMs.push(now() - sent);
  }

  /** One press of "next patient": call-next (timed), then start the called ticket, and check in one more. */
  private cycle(measured: boolean): void {
    const room = this.freeRooms.shift();
    if (room === undefined) {
      // Every room still waits for its start ack: the hub is far behind; this call is not made.
      this.count('staff:NO_FREE_ROOM');
      return;
    }
    const index = this.callIndex++;
    const record: CallRecord = {
      index,
      requestId: `bench-${this.phase}-${String(index).padStart(6, '0')}`,
      measured,
      sentAt: now(),
      ackAt: null,
      seq: null,
      committedAt: null,
      error: null,
    };
    this.calls.push(record);
    this.track(
      this.socket.emitWithAck<Ack<ActionResult>>('queue:call-next', { dept: this.dept, room, requestId: record.requestId }).then((ack) => {
        record.ackAt = now();
        if (!ack.ok) {
          record.error = ack.error.code;
          this.count(`call-next:${ack.error.code}`);
          this.freeRooms.push(room);
          return;
        }
        record.seq = ack.event.seq;
        record.committedAt = ack.event.at;
        // The patient comes in; the next call to this room finishes the consultation.
        this.track(
          this.socket
            .emitWithAck<Ack<ActionResult>>('queue:start', { ticketId: ack.event.ticket.id })
            .then((started) => {
              if (!started.ok) this.count(`start:${started.error.code}`);
            })
            .finally(() => this.freeRooms.push(room)),
        );
      }),
    );
    this.track(this.checkin(measured));
  }

  /** Calls at `rate` per second for `seconds`, on an absolute schedule (no drift). */
  async run(rate: number, seconds: number, measured: boolean, onTick?: (done: number, total: number) => void): Promise<{ start: number; end: number }> {
    const total = Math.round(rate * seconds);
    const period = 1000 / rate;
    const start = now();
    for (let k = 0; k < total; k++) {
      const due = start + k * period;
      const wait = due - now();
      if (wait > 0) await sleep(wait);
      this.cycle(measured);
      onTick?.(k + 1, total);
    }
    const end = start + total * period;
    const wait = end - now();
    if (wait > 0) await sleep(wait);
    return { start, end };
  }

  async settle(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }
}

/** What the phases of one run share: one redis-server, one token secret, what to stop. */
export interface PhaseContext {
  redis: RedisProcess;
  secret: string;
  resources: Resources;
  log: (line: string) => void;
  /** Rejects when something the run depends on (redis-server) dies. */
  fatal: Promise<never>;
}

/**
 * One phase: two (`options.nodes`) hub nodes on `server`, `options.clients`
 * displays, calls at `options.rate` for `options.seconds`; Redis is flushed
 * first and the hub nodes and generator processes are stopped at the end.
 */
export async function runPhase(server: ServerKind, options: BenchOptions, context: PhaseContext): Promise<PhaseReport> {
  const { log, resources } = context;
  const tag = `[${server}]`;
  const clinic = ClinicConfig.parse(JSON.parse(readFileSync(join(BENCH_CLINICS_DIR, `${CLINIC_ID}.json`), 'utf8')));
  const dept = clinic.departments[0]!;
  const rooms = dept.rooms.map((r) => r.id);
  const errors: string[] = [];

  log(`${tag} phase: ${options.nodes} hub nodes with HUB_SERVER=${server}, ${options.clients} displays over ${options.workers} generator processes`);
  await redisCommand(context.redis.port, ['FLUSHALL']);

  const started = await Promise.allSettled(
    Array.from({ length: options.nodes }, (_, n) => {
      const nodeId = `bench-${server}-${n + 1}`;
      // One directory per node: the module loader's thread writes a profile too (the largest file is the main thread).
      const nodeArgs = options.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${join(options.profileDir, nodeId)}`] : [];
      return startHubNode({ nodeId, server, redisUrl: context.redis.url, tokenSecret: context.secret, nodeArgs });
    }),
  );
  const hubs = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const stopHubs = resources.add(`${server} hub nodes`, async () => {
    await Promise.all(hubs.map((h) => h.stop()));
  });
  const failedStart = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failedStart) throw failedStart.reason;
  for (const hub of hubs) {
    if (hub.server !== server) {
      const warning = `${hub.nodeId} runs on ${hub.server}, not ${server} (uWebSockets.js did not load): this phase does not measure ${server}`;
      errors.push(warning);
      log(`${tag} WARNING: ${warning}`);
    }
  }
  log(`${tag} hub nodes up: ${hubs.map((h) => `${h.nodeId} pid ${h.pid} ${h.url}`).join(', ')}`);

  const issuer = new TokenIssuer(context.secret);
  const staffToken = (await issuer.issue({ sub: `staff:${CLINIC_ID}:bench`, role: 'staff', clinic: CLINIC_ID }, 3600)).token;
  const socket = await LeanSocket.connect(hubs[0]!.url, QUEUE_NAMESPACE, { token: staffToken });
  resources.add(`${server} staff socket`, async () => socket.close());
  let staffDisconnected = false;
  socket.on('disconnect', () => (staffDisconnected = true));
  const staff = new Staff(socket, server, dept.id, rooms);
  // A few patients already waiting, checked in before any display is there; one more per call keeps the line steady.
  for (let i = 0; i < Math.min(rooms.length, 10); i++) await staff.checkin();

  const pool = new WorkerPool(options.workers, generatorProfileDir(options.profileDir, server));
  const stopWorkers = resources.add(`${server} generator processes`, () => pool.stop());
  const redisPid = context.redis.process.pid!;
  const watcher = new ProcessWatcher([...hubs.map((h) => h.pid), ...pool.pids, process.pid, redisPid]);
  resources.add('process watcher', async () => watcher.stop());
  const sum: WorkerPool['sum'] = (pick) => pool.sum(pick);

  // Displays, spread over the nodes and the generator processes; each process keeps `rampConcurrency` handshakes in flight.
  const connectSeconds = await pool.connect(
    options.clients,
    hubs,
    (i) => issuer.issueSync({ sub: `display:${CLINIC_ID}:bench-${i}`, role: 'display', clinic: CLINIC_ID }, 3600).token,
    { nsp: QUEUE_NAMESPACE, track: { event: QUEUE_EVENT, keyField: 'seq', typeField: 'type', timedType: 'ticket.called', requireField: 'number' }, concurrency: options.rampConcurrency },
    { log, tag, fatal: context.fatal },
  );
  const connected = sum((p) => p.connected);
  const connectFailed = sum((p) => p.failed);
  if (connected === 0) throw new Error(`no display could connect: see the errors above`);
  await sleep(500);

  if (options.warmupSeconds > 0) {
    log(`${tag} warm-up: ${Math.round(options.rate * options.warmupSeconds)} calls over ${options.warmupSeconds} s`);
    await staff.run(options.rate, options.warmupSeconds, false);
    await Promise.race([staff.settle(), sleep(15_000)]);
    pool.checkFatal();
  }

  const metricsBefore = await scrapeMetrics(hubs);
  const redisStats = async () => ({
    commands: await redisInfoNumber(context.redis.port, 'stats', 'total_commands_processed').catch(() => NaN),
    aof: await redisInfoNumber(context.redis.port, 'persistence', 'aof_current_size').catch(() => NaN),
  });
  const redisBefore = await redisStats();
  log(`${tag} measuring: ${Math.round(options.rate * options.seconds)} calls at ${options.rate}/s over ${options.seconds} s to ${connected} displays`);
  const markStart = watcher.mark();
  let lastProgress = now();
  const window = await staff.run(options.rate, options.seconds, true, (done, total) => {
    if (now() - lastProgress >= 2000 || done === total) {
      lastProgress = now();
      log(`${tag} calls ${done}/${total}, ticket.called deliveries so far ${sum((p) => p.tracked)}`);
    }
  });
  const markEnd = watcher.mark();
  const redisAfter = await redisStats();
  pool.checkFatal();

  // Acks, then deliveries still on their way.
  await Promise.race([staff.settle(), sleep(15_000)]);
  const known = staff.calls.filter((c) => c.seq !== null);
  const expected = connected * known.length;
  const settleDeadline = now() + options.settleSeconds * 1000;
  while (sum((p) => p.tracked) < expected && now() < settleDeadline) {
    await Promise.race([sleep(100), context.fatal]);
    pool.checkFatal();
  }
  await sleep(300); // late duplicates, progress messages in flight
  const metricsAfter = await scrapeMetrics(hubs);
  const results = await pool.results();
  watcher.stop();
  const staffLost = staffDisconnected;
  log(`${tag} done; stopping generator processes and hub nodes`);
  await stopWorkers();
  socket.close();
  await stopHubs();

  // Deliveries and latency.
  const bySeq = new Map<number, CallRecord>();
  for (const call of known) bySeq.set(call.seq!, call);
  const measuredCalls = known.filter((c) => c.measured);
  const latencies = new Float64Array(measuredCalls.length * connected);
  const fromCommit = new Float64Array(measuredCalls.length * connected);
  const perCall = new Map<CallRecord, number[]>(measuredCalls.map((c) => [c, []]));
  const firstPerProcess: number[] = [];
  let latencyCount = 0;
  let received = 0;
  let missing = 0;
  let duplicates = 0;
  let unexpected = 0;
  const handshakes: number[] = [];
  const byType: Record<string, number> = {};
  let messagesInWindow = 0;
  let malformed = 0;
  let disconnects = 0;
  for (const result of results) {
    const index = new Map<number, number>();
    result.keys.forEach((seq, i) => index.set(seq, i));
    for (const seq of result.keys) if (!bySeq.has(seq)) unexpected++;
    for (const call of known) {
      const i = index.get(call.seq!);
      const times = i === undefined ? null : result.times[i]!;
      if (i !== undefined) duplicates += result.duplicates[i]!;
      let first = Infinity;
      for (let d = 0; d < result.clients; d++) {
        if (result.joined[d] !== 1) continue;
        const at = times ? times[d]! : NaN;
        if (at < first) first = at;
        if (Number.isNaN(at)) {
          missing++;
          continue;
        }
        received++;
        if (call.measured) {
          fromCommit[latencyCount] = at - call.committedAt!;
          latencies[latencyCount++] = at - call.sentAt;
          perCall.get(call)!.push(at - call.sentAt);
        }
      }
      if (call.measured && first !== Infinity) firstPerProcess.push(first - call.sentAt);
    }
    for (let d = 0; d < result.clients; d++) if (result.joined[d] === 1) handshakes.push(result.connectMs[d]!);
    for (const [type, n] of Object.entries(result.byType)) byType[type] = (byType[type] ?? 0) + n;
    for (const [bucket, n] of result.buckets) {
      const at = bucket * result.bucketMs;
      if (at >= window.start && at < window.end) messagesInWindow += n;
    }
    malformed += result.malformed;
    disconnects += result.disconnects;
    for (const e of result.errors) if (errors.length < 30) errors.push(e);
  }
  const latency = summarize(latencies.subarray(0, latencyCount));
  const windowSeconds = (window.end - window.start) / 1000;

  const callErrors = Object.fromEntries(staff.errors);
  if (staffLost) errors.push('the staff socket was disconnected');
  const report: PhaseReport = {
    server,
    server_actual: hubs.map((h) => h.server),
    nodes: hubs.length,
    clients: options.clients,
    clients_connected: connected,
    connect_failed: connectFailed,
    connect_seconds: round(connectSeconds, 2),
    connect_handshake: figures(summarize(handshakes)),
    rate_per_second: options.rate,
    seconds: options.seconds,
    calls: measuredCalls.length,
    warmup_calls: known.length - measuredCalls.length,
    call_errors: callErrors,
    deliveries_expected: expected,
    deliveries_received: received,
    missing,
    duplicates,
    unexpected_called_events: unexpected,
    disconnects,
    malformed,
    p50_ms: round(latency.p50),
    p95_ms: round(latency.p95),
    p99_ms: round(latency.p99),
    max_ms: round(latency.max),
    mean_ms: round(latency.mean),
    breakdown: {
      send_to_commit: figures(summarize(measuredCalls.map((c) => c.committedAt! - c.sentAt))),
      commit_to_display: figures(summarize(fromCommit.subarray(0, latencyCount))),
      first_display_per_process: figures(summarize(firstPerProcess)),
    },
    queue_op: figures(summarize(measuredCalls.map((c) => c.ackAt! - c.sentAt)), 2),
    timeline: measuredCalls.map((c) => {
      const summary = summarize(perCall.get(c)!);
      return { t_s: round((c.sentAt - window.start) / 1000, 2)!, ack_ms: round(c.ackAt! - c.sentAt), p50_ms: round(summary.p50), max_ms: round(summary.max) };
    }),
    checkin_op: figures(summarize(staff.checkinMs), 2),
    queue_op_server: bucketFigures(histogramDelta(metricsBefore, metricsAfter, 'clinic_hub_action_duration_seconds', { action: 'queue:call-next', outcome: 'ok' })),
    checkin_op_server: bucketFigures(histogramDelta(metricsBefore, metricsAfter, 'clinic_hub_action_duration_seconds', { action: 'queue:checkin', outcome: 'ok' })),
    hub_commit_to_emit: bucketFigures(histogramDelta(metricsBefore, metricsAfter, 'clinic_hub_event_latency_seconds', {})),
    messages_per_second: round(messagesInWindow / windowSeconds, 0),
    events_by_type: byType,
    ...resourceFigures({
      watcher,
      from: markStart,
      to: markEnd,
      hubs,
      generatorPids: results.map((r) => r.pid),
      redisPid,
      redisBefore,
      redisAfter,
      windowSeconds,
    }),
    window_seconds: round(windowSeconds, 2)!,
    errors,
    ok: false,
  };
  report.ok =
    missing === 0 &&
    duplicates === 0 &&
    unexpected === 0 &&
    connectFailed === 0 &&
    disconnects === 0 &&
    malformed === 0 &&
    !staffLost &&
    Object.keys(callErrors).length === 0 &&
    measuredCalls.length === Math.round(options.rate * options.seconds) &&
    report.server_actual.every((s) => s === server);
  log(
    `${tag} call→display p50 ${report.p50_ms} ms, p99 ${report.p99_ms} ms; deliveries ${received}/${expected}, missing ${missing}, duplicates ${duplicates}`,
  );
  return report;
}

/**
 * Starts a private redis-server (and a token secret) for a run of phases, hands
 * it to `body`, and stops everything registered on `resources` at the end,
 * whatever happens. `npm run bench` runs its connection ramp through this.
 */
export async function withPhaseContext<T>(
  options: Pick<BenchOptions, 'profileDir'>,
  log: (line: string) => void,
  resources: Resources,
  body: (context: PhaseContext) => Promise<T>,
): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'clinic-hub-bench-'));
  resources.add('temporary directory', async () => rmSync(dir, { recursive: true, force: true }));
  let rejectFatal!: (error: Error) => void;
  const fatal = new Promise<never>((_, reject) => (rejectFatal = reject));
  fatal.catch(() => undefined);
  try {
    if (options.profileDir) mkdirSync(options.profileDir, { recursive: true });
    const redis = await startRedisServer({ dir: join(dir, 'redis') });
    resources.add('redis-server', () => redis.stop());
    redis.process.once('exit', () => rejectFatal(new Error('redis-server exited during the benchmark')));
    log(`redis-server pid ${redis.process.pid} on ${redis.url} (private, ${dir})`);
    const secret = randomBytes(32).toString('base64url');
    return await body({ redis, secret, resources, log, fatal });
  } finally {
    await resources.stopAll(log);
  }
}

/** Runs every phase and returns the report. Stops everything it started, whatever happens. */
export async function runQueueBench(options: BenchOptions, log: (line: string) => void = (l) => process.stdout.write(`${l}\n`), resources = new Resources()): Promise<BenchReport> {
  return withPhaseContext(options, log, resources, async (context) => {
    const phases: PhaseReport[] = [];
    for (const server of options.servers) phases.push(await runPhase(server, options, context));
    const [main, baseline] = phases;
    const p99Ratio = main && baseline && main.p99_ms && baseline.p99_ms ? round(baseline.p99_ms / main.p99_ms, 2) : null;
    const report: BenchReport = {
      ...main,
      ...(baseline ? { baseline, p99_ratio_baseline_over_uws: p99Ratio } : {}),
      phases,
      target: { p99_ms: options.targetP99Ms, met: main?.p99_ms == null ? null : main.p99_ms < options.targetP99Ms },
      options: reportedOptions(options),
      machine: machine(),
      date: new Date().toISOString(),
      ok: phases.every((p) => p.ok),
    };
    return report;
  });
}

/** The comparison table printed at the end of a run. */
export function formatTable(report: BenchReport): string {
  const phases = report.phases;
  const ratio = (pick: (p: PhaseReport) => number | null | undefined) => {
    if (phases.length < 2) return '';
    const a = pick(phases[0]!);
    const b = pick(phases[1]!);
    return a && b ? `${(b / a).toFixed(2)}×` : '–';
  };
  const rows: [string, (p: PhaseReport) => unknown, ((p: PhaseReport) => number | null | undefined)?][] = [
    ['hub nodes (server)', (p) => `${p.nodes} × ${[...new Set(p.server_actual)].join('/')}`],
    ['displays connected', (p) => `${p.clients_connected}/${p.clients}`],
    ['connect all displays (s)', (p) => p.connect_seconds, (p) => p.connect_seconds],
    ['handshake p50 / p99 (ms)', (p) => `${cell(p.connect_handshake.p50_ms)} / ${cell(p.connect_handshake.p99_ms)}`],
    ['calls measured (+ warm-up)', (p) => `${p.calls} (+${p.warmup_calls})`],
    ['deliveries expected', (p) => p.deliveries_expected],
    ['deliveries received', (p) => p.deliveries_received],
    ['missing / duplicates', (p) => `${p.missing} / ${p.duplicates}`],
    ['call→display p50 (ms)', (p) => p.p50_ms, (p) => p.p50_ms],
    ['call→display p95 (ms)', (p) => p.p95_ms, (p) => p.p95_ms],
    ['call→display p99 (ms)', (p) => p.p99_ms, (p) => p.p99_ms],
    ['call→display max (ms)', (p) => p.max_ms, (p) => p.max_ms],
    ['  send→commit p50 / p99 (ms)', (p) => `${cell(p.breakdown.send_to_commit.p50_ms)} / ${cell(p.breakdown.send_to_commit.p99_ms)}`],
    ['  commit→display p50 / p99 (ms)', (p) => `${cell(p.breakdown.commit_to_display.p50_ms)} / ${cell(p.breakdown.commit_to_display.p99_ms)}`],
    ['  first display per gen. process p50 / p99', (p) => `${cell(p.breakdown.first_display_per_process.p50_ms)} / ${cell(p.breakdown.first_display_per_process.p99_ms)}`],
    ['call-next ack p50 (ms)', (p) => p.queue_op.p50_ms, (p) => p.queue_op.p50_ms],
    ['call-next ack p95 (ms)', (p) => p.queue_op.p95_ms, (p) => p.queue_op.p95_ms],
    ['call-next ack p99 (ms)', (p) => p.queue_op.p99_ms, (p) => p.queue_op.p99_ms],
    ['call-next server p50 / p99 (ms, buckets)', (p) => `${cell(p.queue_op_server.p50_ms)} / ${cell(p.queue_op_server.p99_ms)}`],
    ['check-in ack p50 / p99 (ms)', (p) => `${cell(p.checkin_op.p50_ms)} / ${cell(p.checkin_op.p99_ms)}`],
    ['check-in server p50 / p99 (ms, buckets)', (p) => `${cell(p.checkin_op_server.p50_ms)} / ${cell(p.checkin_op_server.p99_ms)}`],
    ['hub commit→emit p50 / p99 (ms, buckets)', (p) => `${cell(p.hub_commit_to_emit.p50_ms)} / ${cell(p.hub_commit_to_emit.p99_ms)}`],
    ['messages delivered / s', (p) => p.messages_per_second, (p) => p.messages_per_second],
    ...[0, 1, 2, 3]
      .filter((i) => phases.some((p) => p.hubs[i]))
      .map(
        (i) =>
          [
            `hub node ${i + 1} CPU % / peak RSS MB`,
            (p: PhaseReport) => (p.hubs[i] ? `${cell(p.hubs[i]!.cpu_percent)} / ${cell(p.hubs[i]!.peak_rss_mb)}` : '–'),
            (p: PhaseReport) => p.hubs[i]?.cpu_percent,
          ] as [string, (p: PhaseReport) => unknown, (p: PhaseReport) => number | null | undefined],
      ),
    ['generator CPU % / peak RSS MB', (p) => `${cell(p.generator.cpu_percent)} / ${cell(p.generator.peak_rss_mb)} (${p.generator.processes} procs)`],
    ['coordinator + staff CPU %', (p) => p.coordinator.cpu_percent],
    ['redis-server CPU %', (p) => p.redis.cpu_percent],
    ['redis commands / s, AOF KB / s', (p) => `${cell(p.redis.commands_per_second)}, ${cell(p.redis.aof_bytes_per_second === null ? null : p.redis.aof_bytes_per_second / 1024)}`],
    ['machine busy % (all cores)', (p) => p.machine_busy_percent],
    ['other programs CPU % (not ours)', (p) => p.other_cpu_percent],
    ['errors', (p) => errorsCell(p.ok, p.call_errors, p.errors)],
  ];
  const header = ['', ...phases.map((p) => (p === phases[0] ? p.server : `${p.server} (baseline)`)), ...(phases.length > 1 ? [`${phases[1]!.server}/${phases[0]!.server}`] : [])];
  const body = rows.map(([label, pick, r]) => [label, ...phases.map((p) => cell(pick(p))), ...(phases.length > 1 ? [r ? ratio(r) : ''] : [])]);
  const lines = renderTable(header, body);
  for (const p of phases) lines.push(...firstErrors(p.server, p.errors));
  lines.push(...busyWarning(phases.map((p) => ({ during: p.server, other_cpu_percent: p.other_cpu_percent }))));
  const target = report.target;
  lines.push(
    '',
    `target: call→display p99 < ${target.p99_ms} ms at ${phases[0]?.clients ?? 0} displays on ${phases[0]?.nodes ?? 0} nodes: ${verdict(target.met)}`,
    machineLine(report.machine),
  );
  return lines.join('\n');
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  void runBenchCli({
    commandLine: QUEUE_OPTIONS,
    run: runQueueBench,
    format: formatTable,
    // `phases` repeats the top level (first phase) and `baseline`: left out of the file.
    written: ({ phases: _phases, ...written }) => written,
  });
}
