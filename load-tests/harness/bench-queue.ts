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
 * Then the same displays and generator processes receive the same calls
 * from what the hub is measured against (comparison-phase.ts): the limit (a
 * bare uWebSockets.js server publishing pre-built frames), Mosquitto and
 * NATS; `--rate` with several rates runs every server at each.
 *
 *   npm run bench:queue -- --clients 2000 --rate 10 --seconds 10
 *   npm run bench:queue -- --clients 200 --seconds 3 --servers uws
 *   npm run bench:queue -- --clients 5000 --rate 2.5,5,10      (the sweep)
 *   npm run bench:queue -- --profile var/profiles      (--cpu-prof on every hub node)
 *   npm run bench:queue -- --redis sentinel --servers uws   (a Sentinel group: master, replica, 3 sentinels)
 *   npm run bench:queue -- --redis cluster --servers uws    (a Redis Cluster: 3 masters, 3 replicas)
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClinicConfig, QUEUE_NAMESPACE, type ActionResult, type Ack, type CheckinResult } from '@clinic-hub/protocol';
import { TokenIssuer } from '@clinic-hub/platform/token-issuer';
import { benchCommandLine, reportedOptions, runBenchCli } from './bench-cli.js';
import { REDIS_MODES, connectClients, redisCounters, startHubNodes, withBenchContext, type BenchContext, type BenchSetup, type RedisCounters, type RedisMode, type WindowReadings } from './bench-setup.js';
import { BENCH_CLINIC_ID, DISPLAY_TRACK } from './call-feed.js';
import { runComparisonPhase, type ComparisonPhaseReport } from './comparison-phase.js';
import { COMPARISON_KINDS, type ComparisonKind } from './comparison-servers.js';
import { BENCH_CLINICS_DIR, scrapeMetrics } from './hub-process.js';
import { LeanSocket } from './lean-socket.js';
import { redisCommand } from './redis-command.js';
import { bucketFigures, busyWarning, cell, errorsCell, figures, firstErrors, machine, machineLine, renderTable, round, verdict, type LatencyFigures, type MachineInfo } from './report.js';
import { SERVER_KINDS, resourceFigures, type ResourceFigures, type ServerKind } from './resource-figures.js';
import { Resources } from './resources.js';
import { cpuMsPer1000, deliveredEverything, fanoutFigures, fanoutOutcomeLine, joinDeliveries, type FanoutFigures, type ServerCpu } from './fanout-figures.js';
import { histogramDelta, summarize } from './stats.js';
import { atRate, now, sleep } from './time.js';
import type { WorkerPool } from './worker-pool.js';

export type { LatencyFigures } from './report.js';

export type { ServerKind };

/** Every kind of phase: the hub's two servers, then what it is measured against. */
export const FANOUT_KINDS = [...SERVER_KINDS, ...COMPARISON_KINDS] as const;
export type FanoutKind = (typeof FANOUT_KINDS)[number];
export type AnyPhaseReport = PhaseReport | ComparisonPhaseReport;

/** The aim of the comparison at the largest display count: the hub's p99 and CPU per delivery against the limit's. */
export const AIM = { p99OverLimit: 1.5, cpuOverLimit: 2 } as const;

export const QUEUE_OPTIONS = benchCommandLine({
  name: 'bench:queue',
  report: 'load-tests/results/queue.json',
  profiles: 'every hub node and generator process',
  options: {
    clients: { kind: 'integer', default: 2000, min: 1, max: 20_000, help: 'display clients, spread over the nodes and generator processes' },
    rate: { kind: 'number', list: true, arg: 'R', default: [10], min: 0.1, max: 200, help: 'call-next per second; several (2.5,5,10): every server at each rate' },
    seconds: { kind: 'number', arg: 'S', default: 10, min: 0.5, max: 120, help: 'measured seconds of calls' },
    /** Calls before the measurement (JIT, connection pools); checked for delivery, left out of latency. */
    warmupSeconds: { flag: 'warmup', kind: 'number', arg: 'S', default: 2, min: 0, max: 60, help: 'unmeasured calls first' },
    nodes: { kind: 'integer', default: 2, min: 1, max: 4, help: 'hub node processes per phase' },
    workers: { kind: 'integer', default: 4, min: 1, max: 16, help: 'generator processes' },
    servers: {
      kind: 'choice',
      list: true,
      choices: FANOUT_KINDS,
      default: FANOUT_KINDS,
      help: 'phases, in order: the hub on uws (reported) and node (baseline), the bare-uWebSockets.js limit, the peers',
    },
    mqttVersion: { flag: 'mqtt', kind: 'choice', choices: ['3.1.1', '5'], default: '3.1.1', help: 'MQTT version the displays and publisher speak to mosquitto' },
    rampConcurrency: { flag: 'ramp', kind: 'integer', default: 16, min: 1, max: 500, help: 'handshakes in flight per generator process' },
    settleSeconds: { flag: 'settle', kind: 'number', arg: 'S', default: 5, min: 0, max: 120, help: 'wait for late deliveries after the last call' },
    targetP99Ms: { flag: 'target', kind: 'number', arg: 'MS', default: 100, min: 1, max: 60_000, help: 'p99 budget checked in the report' },
    redis: {
      kind: 'choice',
      choices: REDIS_MODES,
      default: 'single',
      help: 'the hubs\' Redis: one redis-server, a Sentinel group on loopback (master, replica, 3 sentinels; each change waits for the replica), or a Redis Cluster on loopback (3 masters, 3 replicas; each change waits for its shard\'s replica)',
    },
  },
  finish({ rate, servers, ...options }) {
    if (rate.length === 0 || rate.length > 8) throw new Error('--rate takes 1 to 8 rates');
    if (Math.min(...rate) * options.seconds < 1) throw new Error('--rate × --seconds must make at least one call');
    return {
      ...options,
      servers: [...new Set(servers)],
      /** The sweep: every server at each of these, in order. */
      rates: [...new Set(rate)],
      /** A phase's rate (the first of the sweep until a phase is given its own). */
      rate: rate[0]!,
    };
  },
});

export type BenchOptions = typeof QUEUE_OPTIONS.defaults;

const CLINIC_ID = BENCH_CLINIC_ID;

const REDIS_MODE_LABEL: Record<RedisMode, string> = {
  single: 'one redis-server',
  sentinel: 'Sentinel: master + replica (WAIT 1)',
  cluster: 'Cluster: 3 masters + 3 replicas (WAIT 1 on the shard)',
};

/** One phase of the hub: its nodes on one server kind, the staff's calls through Redis, and the hub's own figures. */
export interface PhaseReport extends FanoutFigures, Pick<ResourceFigures, 'hubs' | 'redis'> {
  server: ServerKind;
  /** What each node really ran on (uWS falls back to node when it cannot load). */
  server_actual: ServerKind[];
  /** `--redis`: one redis-server, Sentinel (a master and a replica the hubs wait for, HUB_REDIS_ACK_REPLICAS 1), or a Cluster (3 masters, 3 replicas; the clinic's shard's replica waited for). */
  redis_mode: RedisMode;
  nodes: number;
  call_errors: Record<string, number>;
  breakdown: FanoutFigures['breakdown'] & {
    /**
     * Where the time goes, split at the commit (the event's Redis timestamp, 1 ms
     * resolution): staff send → committed in Redis, and committed → on a display
     * (Redis publish, hub fan-out, network, generator).
     */
    send_to_commit: LatencyFigures;
    commit_to_display: LatencyFigures;
  };
  /** The hub nodes' CPU, and with Redis's (which the brokers and the limit do without). */
  server_cpu: ServerCpu & { with_redis_ms_per_1000_deliveries: number | null };
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
}

/** How each server compares with the limit at one rate, and whether the hub met the aim (AIM). */
export interface Comparison {
  /** The phase the aim is about: the hub on uWebSockets.js. */
  hub: ServerKind | null;
  /** Per server: its p50, p99 and server CPU per 1,000 deliveries over the limit's (1 = as good as the limit). */
  over_limit: Partial<Record<FanoutKind, { p50: number | null; p99: number | null; cpu_per_1000_deliveries: number | null }>>;
  aim: {
    /** hub p99 ≤ AIM.p99OverLimit × the limit's. */
    p99_within_limit_factor: boolean | null;
    /** hub p99 below every peer's p99 of the same run. */
    p99_below_peers: boolean | null;
    /** hub CPU per 1,000 deliveries ≤ AIM.cpuOverLimit × the limit server's. */
    cpu_within_limit_factor: boolean | null;
    met: boolean | null;
  };
}

/** Every phase at one rate of the sweep. */
export interface RateResult {
  rate_per_second: number;
  phases: AnyPhaseReport[];
  comparison: Comparison;
}

export interface BenchReport extends Partial<PhaseReport> {
  baseline?: PhaseReport;
  /** The bare-uWebSockets.js server: the floor of this machine and generator. */
  limit?: ComparisonPhaseReport;
  peers?: { mosquitto?: ComparisonPhaseReport; nats?: ComparisonPhaseReport };
  comparison?: Comparison;
  /** baseline p99 / uws p99. */
  p99_ratio_baseline_over_uws?: number | null;
  /**
   * With several --rate: every rate's phases (without their timelines),
   * keyed by server, and its comparison. The top level is the first rate.
   */
  sweep?: { rate_per_second: number; phases: Partial<Record<FanoutKind, Omit<AnyPhaseReport, 'timeline'>>>; comparison: Comparison }[];
  /** Every phase of the first rate in order (not written to the JSON file: the top level, `baseline`, `limit` and `peers` hold them). */
  phases: AnyPhaseReport[];
  /** Every rate (not written: `sweep` holds them). */
  rates: RateResult[];
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
  run(rate: number, seconds: number, measured: boolean, onTick?: (done: number, total: number) => void): Promise<{ start: number; end: number }> {
    const total = Math.round(rate * seconds);
    return atRate(total, rate, (k) => {
      this.cycle(measured);
      onTick?.(k + 1, total);
    });
  }

  async settle(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }
}

/** What the phases of one run share: one redis-server, one token secret, a temporary directory, what to stop. */
export interface PhaseContext extends BenchContext {
  secret: string;
}

/**
 * One phase: two (`options.nodes`) hub nodes on `server`, `options.clients`
 * displays, calls at `options.rate` for `options.seconds`; Redis is flushed
 * first and the hub nodes and generator processes are stopped at the end.
 */
export async function runPhase(server: ServerKind, options: BenchOptions, context: PhaseContext): Promise<PhaseReport> {
  const setup = await setUpPhase(server, options, context);
  const driven = await driveCalls(setup, options, context);
  const report = phaseReport(setup, driven, options);
  context.log(fanoutOutcomeLine(setup.tag, report));
  return report;
}

/** What a phase set up: hub nodes, the staff socket, the displays in their generator processes. */
interface PhaseSetup extends BenchSetup {
  server: ServerKind;
  socket: LeanSocket;
  staff: Staff;
  staffLost: () => boolean;
  redisMode: RedisMode;
}

async function setUpPhase(server: ServerKind, options: BenchOptions, context: PhaseContext): Promise<PhaseSetup> {
  const { log, resources } = context;
  const tag = `[${server}]`;
  const clinic = ClinicConfig.parse(JSON.parse(readFileSync(join(BENCH_CLINICS_DIR, `${CLINIC_ID}.json`), 'utf8')));
  const dept = clinic.departments[0]!;
  const rooms = dept.rooms.map((r) => r.id);

  log(`${tag} phase: ${options.nodes} hub nodes with HUB_SERVER=${server}, ${options.clients} displays over ${options.workers} generator processes`);
  for (const port of context.redisMasterPorts) await redisCommand(port, ['FLUSHALL']);
  const { hubs, stop: stopHubs, warnings } = await startHubNodes(
    { count: options.nodes, idPrefix: `bench-${server}`, server, redisEnv: context.redisEnv, secret: context.secret, profileDir: options.profileDir },
    context,
    tag,
  );

  const issuer = new TokenIssuer(context.secret);
  const staffToken = (await issuer.issue({ sub: `staff:${CLINIC_ID}:bench`, role: 'staff', clinic: CLINIC_ID }, 3600)).token;
  const socket = await LeanSocket.connect(hubs[0]!.url, QUEUE_NAMESPACE, { token: staffToken });
  resources.add(`${server} staff socket`, async () => socket.close());
  let staffDisconnected = false;
  socket.on('disconnect', () => (staffDisconnected = true));
  const staff = new Staff(socket, server, dept.id, rooms);
  // A few patients already waiting, checked in before any display is there; one more per call keeps the line steady.
  for (let i = 0; i < Math.min(rooms.length, 10); i++) await staff.checkin();

  // Displays, spread over the nodes and the generator processes; each process keeps `rampConcurrency` handshakes in flight.
  const clients = await connectClients(
    { workers: options.workers, profileDir: options.profileDir, label: server, count: options.clients, who: 'display' },
    hubs,
    (i) => issuer.issueSync({ sub: `display:${CLINIC_ID}:bench-${i}`, role: 'display', clinic: CLINIC_ID }, 3600).token,
    { nsp: QUEUE_NAMESPACE, track: DISPLAY_TRACK, concurrency: options.rampConcurrency },
    context,
    tag,
  );
  return { server, tag, hubs, stopHubs, socket, staff, staffLost: () => staffDisconnected, ...clients, redisMode: context.redisMode, errors: [...warnings] };
}

/** What a phase measured: the window, the hubs' metrics and Redis's counters around it, each generator's results. */
interface DrivenCalls extends WindowReadings {
  window: { start: number; end: number };
  staffLost: boolean;
}

/** Warm-up, then calls at the rate over the window; waits for acks and deliveries, then stops the generators and the hub nodes. */
async function driveCalls(setup: PhaseSetup, options: BenchOptions, context: PhaseContext): Promise<DrivenCalls> {
  const { log } = context;
  const { tag, staff, pool, hubs, watcher, connected } = setup;
  const sum: WorkerPool['sum'] = (pick) => pool.sum(pick);
  if (options.warmupSeconds > 0) {
    log(`${tag} warm-up: ${Math.round(options.rate * options.warmupSeconds)} calls over ${options.warmupSeconds} s`);
    await staff.run(options.rate, options.warmupSeconds, false);
    await Promise.race([staff.settle(), sleep(15_000)]);
    pool.checkFatal();
  }

  const metricsBefore = await scrapeMetrics(hubs);
  const redisBefore = await redisCounters(...context.redisMasterPorts);
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
  const redisAfter = await redisCounters(...context.redisMasterPorts);
  pool.checkFatal();

  // Acks, then deliveries still on their way.
  await Promise.race([staff.settle(), sleep(15_000)]);
  const expected = connected * staff.calls.filter((c) => c.seq !== null).length;
  const settleDeadline = now() + options.settleSeconds * 1000;
  while (sum((p) => p.tracked) < expected && now() < settleDeadline) {
    await Promise.race([sleep(100), context.fatal]);
    pool.checkFatal();
  }
  await sleep(300); // late duplicates, progress messages in flight
  const metricsAfter = await scrapeMetrics(hubs);
  const results = await pool.results();
  watcher.stop();
  const staffLost = setup.staffLost();
  log(`${tag} done; stopping generator processes and hub nodes`);
  await setup.stopWorkers();
  setup.socket.close();
  await setup.stopHubs();
  return { window, markStart, markEnd, metricsBefore, metricsAfter, redisBefore, redisAfter, results, staffLost };
}

/** The phase's figures: deliveries and latency, the queue operation, CPU and memory of each process. */
function phaseReport(setup: PhaseSetup, driven: DrivenCalls, options: BenchOptions): PhaseReport {
  const { server, staff, hubs, watcher, redisPid } = setup;
  const { window, markStart, markEnd, metricsBefore, metricsAfter, results } = driven;
  const measuredCalls = staff.calls.filter((c) => c.seq !== null && c.measured);
  const joined = joinDeliveries(staff.calls, results, window);
  const common = fanoutFigures({
    joined,
    calls: staff.calls,
    clients: options.clients,
    connected: setup.connected,
    connectFailed: setup.connectFailed,
    connectSeconds: setup.connectSeconds,
    rate: options.rate,
    seconds: options.seconds,
    window,
    watcher,
    from: markStart,
    to: markEnd,
    serverPids: hubs.map((h) => h.pid),
    generatorPids: results.map((r) => r.pid),
    otherOwnPids: [process.pid, redisPid, ...setup.redisReplicaPids],
    errors: setup.errors,
  });
  const windowSeconds = (window.end - window.start) / 1000;
  const hubResources = resourceFigures({
    watcher,
    from: markStart,
    to: markEnd,
    hubs,
    generatorPids: results.map((r) => r.pid),
    redisPid,
    redisReplicaPids: setup.redisReplicaPids,
    redisBefore: driven.redisBefore,
    redisAfter: driven.redisAfter,
    windowSeconds,
  });
  const callErrors = Object.fromEntries(staff.errors);
  if (driven.staffLost) common.errors.push('the staff socket was disconnected');
  const actionTime = (action: string) => bucketFigures(histogramDelta(metricsBefore, metricsAfter, 'clinic_hub_action_duration_seconds', { action, outcome: 'ok' }));
  const report: PhaseReport = {
    server,
    server_actual: hubs.map((h) => h.server),
    redis_mode: setup.redisMode,
    nodes: hubs.length,
    ...common,
    call_errors: callErrors,
    breakdown: {
      send_to_commit: figures(summarize(measuredCalls.map((c) => c.committedAt! - c.sentAt))),
      commit_to_display: figures(summarize(joined.fromCommit)),
      ...common.breakdown,
    },
    server_cpu: {
      ...common.server_cpu,
      with_redis_ms_per_1000_deliveries: cpuMsPer1000((common.server_cpu.cpu_percent ?? 0) + (hubResources.redis.total_cpu_percent ?? 0), windowSeconds, joined.messagesInWindow),
    },
    queue_op: figures(summarize(measuredCalls.map((c) => c.ackAt! - c.sentAt)), 2),
    checkin_op: figures(summarize(staff.checkinMs), 2),
    queue_op_server: actionTime('queue:call-next'),
    checkin_op_server: actionTime('queue:checkin'),
    hub_commit_to_emit: bucketFigures(histogramDelta(metricsBefore, metricsAfter, 'clinic_hub_event_latency_seconds', {})),
    hubs: hubResources.hubs,
    redis: hubResources.redis,
    ok: false,
  };
  report.ok =
    deliveredEverything(common, Math.round(options.rate * options.seconds)) &&
    !driven.staffLost &&
    Object.keys(callErrors).length === 0 &&
    report.server_actual.every((s) => s === server);
  return report;
}

/**
 * Starts a private redis-server (and a token secret) for a run of phases, hands
 * it to `body`, and stops everything registered on `resources` at the end,
 * whatever happens. `npm run bench` runs its connection ramp through this.
 */
export function withPhaseContext<T>(
  options: Pick<BenchOptions, 'profileDir'> & { redis?: RedisMode },
  log: (line: string) => void,
  resources: Resources,
  body: (context: PhaseContext) => Promise<T>,
): Promise<T> {
  const secret = randomBytes(32).toString('base64url');
  return withBenchContext('bench', options, log, resources, (context) => body({ ...context, secret }));
}

/** One phase of any kind: the hub (runPhase) or what it is compared with (runComparisonPhase). */
export function runFanoutPhase(kind: FanoutKind, options: BenchOptions, context: PhaseContext): Promise<AnyPhaseReport> {
  return isHubKind(kind) ? runPhase(kind, options, context) : runComparisonPhase(kind, options, context);
}

export const isHubKind = (kind: FanoutKind): kind is ServerKind => (SERVER_KINDS as readonly string[]).includes(kind);

const ratio = (a: number | null | undefined, b: number | null | undefined) => (a != null && b != null && b > 0 ? round(a / b, 2) : null);

/** Each server against the limit at one rate, and the hub's aim (AIM). */
export function compareWithLimit(phases: AnyPhaseReport[]): Comparison {
  const by = (kind: FanoutKind) => phases.find((p) => p.server === kind);
  const limit = by('limit');
  const hubPhase = phases.find((p) => p.server === 'uws') ?? phases.find((p) => isHubKind(p.server));
  const overLimit: Comparison['over_limit'] = {};
  for (const p of phases) {
    if (p.server === 'limit') continue;
    overLimit[p.server] = {
      p50: ratio(p.p50_ms, limit?.p50_ms),
      p99: ratio(p.p99_ms, limit?.p99_ms),
      cpu_per_1000_deliveries: ratio(p.server_cpu.ms_per_1000_deliveries, limit?.server_cpu.ms_per_1000_deliveries),
    };
  }
  const hub = hubPhase ? overLimit[hubPhase.server] : undefined;
  const peers = phases.filter((p) => p.server === 'mosquitto' || p.server === 'nats');
  const p99Within = hub?.p99 == null ? null : hub.p99 <= AIM.p99OverLimit;
  const cpuWithin = hub?.cpu_per_1000_deliveries == null ? null : hub.cpu_per_1000_deliveries <= AIM.cpuOverLimit;
  const belowPeers = hubPhase?.p99_ms == null || peers.length === 0 || peers.some((p) => p.p99_ms == null) ? null : peers.every((p) => hubPhase.p99_ms! < p.p99_ms!);
  const verdicts = [p99Within, belowPeers, cpuWithin];
  return {
    hub: hubPhase && isHubKind(hubPhase.server) ? hubPhase.server : null,
    over_limit: overLimit,
    aim: {
      p99_within_limit_factor: p99Within,
      p99_below_peers: belowPeers,
      cpu_within_limit_factor: cpuWithin,
      met: verdicts.includes(false) ? false : verdicts.includes(null) ? null : true,
    },
  };
}

/** Runs every phase at every rate and returns the report. Stops everything it started, whatever happens. */
export async function runQueueBench(options: BenchOptions, log: (line: string) => void = (l) => process.stdout.write(`${l}\n`), resources = new Resources()): Promise<BenchReport> {
  return withPhaseContext(options, log, resources, async (context) => {
    const rates: RateResult[] = [];
    for (const rate of options.rates) {
      if (options.rates.length > 1) log(`\n== ${rate} calls/s ==`);
      const phases: AnyPhaseReport[] = [];
      for (const server of options.servers) phases.push(await runFanoutPhase(server, { ...options, rate }, context));
      rates.push({ rate_per_second: rate, phases, comparison: compareWithLimit(phases) });
    }
    const first = rates[0]!;
    const hubPhases = first.phases.filter((p): p is PhaseReport => isHubKind(p.server));
    const [main, baseline] = hubPhases;
    const of = (kind: ComparisonKind) => first.phases.find((p): p is ComparisonPhaseReport => p.server === kind);
    const limit = of('limit');
    const peers = { ...(of('mosquitto') ? { mosquitto: of('mosquitto') } : {}), ...(of('nats') ? { nats: of('nats') } : {}) };
    const report: BenchReport = {
      ...main,
      ...(baseline ? { baseline, p99_ratio_baseline_over_uws: ratio(baseline.p99_ms, main!.p99_ms) } : {}),
      ...(limit ? { limit } : {}),
      ...(Object.keys(peers).length > 0 ? { peers } : {}),
      ...(limit || Object.keys(peers).length > 0 ? { comparison: first.comparison } : {}),
      ...(rates.length > 1
        ? {
            sweep: rates.map((r) => ({
              rate_per_second: r.rate_per_second,
              phases: Object.fromEntries(r.phases.map(({ timeline: _timeline, ...p }) => [p.server, p])),
              comparison: r.comparison,
            })),
          }
        : {}),
      phases: first.phases,
      rates,
      target: { p99_ms: options.targetP99Ms, met: main?.p99_ms == null ? null : main.p99_ms < options.targetP99Ms },
      options: reportedOptions(options),
      machine: machine(),
      date: new Date().toISOString(),
      ok: rates.every((r) => r.phases.every((p) => p.ok)),
    };
    return report;
  });
}

/** How a phase is named in a table's header. */
function phaseTitle(p: AnyPhaseReport, phases: AnyPhaseReport[]): string {
  if (!isHubKind(p.server)) return p.server;
  const hubs = phases.filter((q) => isHubKind(q.server));
  return hubs.length > 1 && p === hubs[1] ? `${p.server} (baseline)` : p.server;
}

type Row = [string, (p: AnyPhaseReport) => unknown];
/** A row whose cell exists for hub phases only ('–' for the others). */
const hubRow = (label: string, pick: (p: PhaseReport) => unknown): Row => [label, (p) => (isHubKind(p.server) ? pick(p as PhaseReport) : '–')];

/** The comparison table of one rate: a column per phase. */
function phaseTable(phases: AnyPhaseReport[], comparison: Comparison): string[] {
  const over = (p: AnyPhaseReport) => (p.server === 'limit' ? null : comparison.over_limit[p.server]);
  const times = (v: number | null | undefined) => (v == null ? '–' : `${v.toFixed(2)}×`);
  const maxHubs = Math.max(0, ...phases.map((p) => ('hubs' in p ? p.hubs.length : 0)));
  const rows: Row[] = [
    ['served by', (p) => ('hubs' in p ? `${p.nodes} × hub on ${[...new Set(p.server_actual)].join('/')}` : `${p.servers.length} × ${p.software}`)],
    ['displays connected', (p) => `${p.clients_connected}/${p.clients}`],
    ['connect all displays (s)', (p) => p.connect_seconds],
    ['handshake p50 / p99 (ms)', (p) => `${cell(p.connect_handshake.p50_ms)} / ${cell(p.connect_handshake.p99_ms)}`],
    ['calls measured (+ warm-up)', (p) => `${p.calls} (+${p.warmup_calls})`],
    ['deliveries expected', (p) => p.deliveries_expected],
    ['deliveries received', (p) => p.deliveries_received],
    ['missing / duplicates', (p) => `${p.missing} / ${p.duplicates}`],
    ['call→display p50 (ms)', (p) => p.p50_ms],
    ['call→display p95 (ms)', (p) => p.p95_ms],
    ['call→display p99 (ms)', (p) => p.p99_ms],
    ['call→display max (ms)', (p) => p.max_ms],
    ['  p50 / p99 ÷ the limit\'s', (p) => (p.server === 'limit' ? '1 / 1' : `${times(over(p)?.p50)} / ${times(over(p)?.p99)}`)],
    hubRow('  send→commit p50 / p99 (ms)', (p) => `${cell(p.breakdown.send_to_commit.p50_ms)} / ${cell(p.breakdown.send_to_commit.p99_ms)}`),
    hubRow('  commit→display p50 / p99 (ms)', (p) => `${cell(p.breakdown.commit_to_display.p50_ms)} / ${cell(p.breakdown.commit_to_display.p99_ms)}`),
    ['  first display per gen. process p50 / p99', (p) => `${cell(p.breakdown.first_display_per_process.p50_ms)} / ${cell(p.breakdown.first_display_per_process.p99_ms)}`],
    hubRow('call-next ack p50 / p95 / p99 (ms)', (p) => `${cell(p.queue_op.p50_ms)} / ${cell(p.queue_op.p95_ms)} / ${cell(p.queue_op.p99_ms)}`),
    hubRow('call-next server p50 / p99 (ms, buckets)', (p) => `${cell(p.queue_op_server.p50_ms)} / ${cell(p.queue_op_server.p99_ms)}`),
    hubRow('check-in ack p50 / p99 (ms)', (p) => `${cell(p.checkin_op.p50_ms)} / ${cell(p.checkin_op.p99_ms)}`),
    hubRow('check-in server p50 / p99 (ms, buckets)', (p) => `${cell(p.checkin_op_server.p50_ms)} / ${cell(p.checkin_op_server.p99_ms)}`),
    hubRow('hub commit→emit p50 / p99 (ms, buckets)', (p) => `${cell(p.hub_commit_to_emit.p50_ms)} / ${cell(p.hub_commit_to_emit.p99_ms)}`),
    ['messages delivered / s', (p) => p.messages_per_second],
    ['bytes per call per display: events / wire', (p) => `${cell(p.bytes_per_call.payload)} / ${cell(p.bytes_per_call.wire)}`],
    ['socket reads per call per display', (p) => p.reads_per_call?.toFixed(2)],
    ['server CPU % (busiest process)', (p) => `${cell(p.server_cpu.cpu_percent)} (${cell(p.server_cpu.max_process_cpu_percent)})`],
    ['server CPU ms per 1,000 deliveries', (p) => p.server_cpu.ms_per_1000_deliveries],
    ['  ÷ the limit\'s', (p) => (p.server === 'limit' ? '1' : times(over(p)?.cpu_per_1000_deliveries))],
    hubRow('  with Redis (ms per 1,000)', (p) => p.server_cpu.with_redis_ms_per_1000_deliveries),
    ['server peak RSS MB', (p) => p.server_cpu.peak_rss_mb],
    ...Array.from({ length: maxHubs }, (_, i): Row => hubRow(`hub node ${i + 1} CPU % / peak RSS MB`, (p) => (p.hubs[i] ? `${cell(p.hubs[i]!.cpu_percent)} / ${cell(p.hubs[i]!.peak_rss_mb)}` : '–'))),
    ['generator CPU % / peak RSS MB', (p) => `${cell(p.generator.cpu_percent)} / ${cell(p.generator.peak_rss_mb)} (${p.generator.processes} procs)`],
    ['coordinator CPU %', (p) => p.coordinator.cpu_percent],
    hubRow('Redis', (p) => REDIS_MODE_LABEL[p.redis_mode]),
    hubRow('redis-server CPU % (+ the other nodes)', (p) => (p.redis.replica_cpu_percent === null ? cell(p.redis.cpu_percent) : `${cell(p.redis.cpu_percent)} (+ ${cell(p.redis.replica_cpu_percent)})`)),
    hubRow('Redis CPU % (every redis-server)', (p) => p.redis.total_cpu_percent),
    hubRow('redis commands / s, AOF KB / s', (p) => `${cell(p.redis.commands_per_second)}, ${cell(p.redis.aof_bytes_per_second === null ? null : p.redis.aof_bytes_per_second / 1024)}`),
    ['machine busy % (all cores)', (p) => p.machine_busy_percent],
    ['other programs CPU % (not ours)', (p) => p.other_cpu_percent],
    ['errors', (p) => errorsCell(p.ok, 'call_errors' in p ? p.call_errors : {}, p.errors)],
  ];
  const header = ['', ...phases.map((p) => phaseTitle(p, phases))];
  return renderTable(
    header,
    rows.map(([label, pick]) => [label, ...phases.map((p) => cell(pick(p)))]),
  );
}

/** The hub against the aim, in words. */
function aimLines(rate: RateResult): string[] {
  const { comparison } = rate;
  const hub = rate.phases.find((p) => p.server === comparison.hub);
  const limit = rate.phases.find((p) => p.server === 'limit');
  if (!hub || !limit) return [];
  const over = comparison.over_limit[hub.server];
  const peers = rate.phases.filter((p) => p.server === 'mosquitto' || p.server === 'nats');
  return [
    `aim at ${rate.rate_per_second} calls/s: hub (${hub.server}) p99 ${cell(hub.p99_ms)} ms = ${cell(over?.p99)}× the limit's ${cell(limit.p99_ms)} ms (≤ ${AIM.p99OverLimit}×: ${verdict(comparison.aim.p99_within_limit_factor)})` +
      (peers.length > 0 ? `; below ${peers.map((p) => `${p.server} ${cell(p.p99_ms)} ms`).join(' and ')}: ${verdict(comparison.aim.p99_below_peers)}` : '') +
      `; CPU per 1,000 deliveries ${cell(hub.server_cpu.ms_per_1000_deliveries)} ms = ${cell(over?.cpu_per_1000_deliveries)}× the limit server's ${cell(limit.server_cpu.ms_per_1000_deliveries)} ms (≤ ${AIM.cpuOverLimit}×: ${verdict(comparison.aim.cpu_within_limit_factor)})`,
  ];
}

/** The sweep: a row per rate and server, where each saturates. */
function sweepTable(rates: RateResult[]): string[] {
  const header = ['calls/s', 'server', 'p50', 'p99', 'max (ms)', 'msgs/s', 'server CPU %', 'busiest %', 'ms / 1,000', 'gen. CPU %', 'other %', 'delivered'];
  const body = rates.flatMap((r) =>
    r.phases.map((p) => [
      cell(r.rate_per_second),
      p.server,
      cell(p.p50_ms),
      cell(p.p99_ms),
      cell(p.max_ms),
      cell(p.messages_per_second),
      cell(p.server_cpu.cpu_percent),
      cell(p.server_cpu.max_process_cpu_percent),
      cell(p.server_cpu.ms_per_1000_deliveries),
      cell(p.generator.cpu_percent),
      cell(p.other_cpu_percent),
      `${p.deliveries_received}/${p.deliveries_expected}${p.ok ? '' : ' !'}`,
    ]),
  );
  return ['', `sweep: ${rates[0]?.phases[0]?.clients ?? 0} displays`, ...renderTable(header, body)];
}

/** The tables printed at the end of a run. */
export function formatTable(report: BenchReport): string {
  const lines: string[] = [];
  for (const rate of report.rates) {
    if (report.rates.length > 1) lines.push('', `${rate.rate_per_second} calls/s:`);
    lines.push(...phaseTable(rate.phases, rate.comparison));
    for (const p of rate.phases) lines.push(...firstErrors(p.server, p.errors));
  }
  if (report.rates.length > 1) lines.push(...sweepTable(report.rates));
  const aims = report.rates.flatMap(aimLines);
  if (aims.length > 0) lines.push('', ...aims);
  lines.push(...busyWarning(report.rates.flatMap((r) => r.phases.map((p) => ({ during: `${p.server} at ${r.rate_per_second}/s`, other_cpu_percent: p.other_cpu_percent })))));
  const target = report.target;
  const hub = report.phases.find((p) => isHubKind(p.server));
  lines.push(
    '',
    `target: call→display p99 < ${target.p99_ms} ms at ${hub?.clients ?? 0} displays on ${hub && 'nodes' in hub ? hub.nodes : 0} nodes: ${verdict(target.met)}`,
    machineLine(report.machine),
  );
  return lines.join('\n');
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  void runBenchCli({
    commandLine: QUEUE_OPTIONS,
    run: runQueueBench,
    format: formatTable,
    // `phases` and `rates` repeat the top level, `baseline`, `limit`, `peers` and `sweep`: left out of the file.
    written: ({ phases: _phases, rates: _rates, ...written }) => written,
  });
}
