/**
 * What every display fan-out phase reports, whatever served the displays
 * (the hub on uWebSockets.js or Node, the bare-uWebSockets.js limit,
 * Mosquitto, NATS): the generator processes' arrivals joined with the send
 * time of each call (one clock on one machine), every delivery checked, and
 * the CPU of what served them per 1,000 deliveries.
 */
import { cpuPercent, machineLoad, type MachineLoad } from './resource-figures.js';
import { ProcessWatcher } from './proc-stats.js';
import { figures, round, type LatencyFigures } from './report.js';
import { summarize } from './stats.js';
import type { WorkerResult } from './worker-protocol.js';

type Mark = ReturnType<ProcessWatcher['mark']>;

/** One call as the coordinator made it. */
export interface TimedCall {
  /** The seq of its ticket.called event (the key displays' arrivals are recorded by); null when it failed. */
  seq: number | null;
  /** When the call was sent (the staff's call-next, the publisher's write), ms on the shared clock. */
  sentAt: number;
  /** Left out of latency (warm-up), still checked for delivery. */
  measured: boolean;
  /** Redis clock of the commit (the hub only). */
  committedAt?: number | null;
  /** When the call-next ack came back (the hub only). */
  ackAt?: number | null;
}

/** The CPU and memory of what served the displays, over the measured window. */
export interface ServerCpu {
  processes: number;
  /** All its processes together; 100 = one core. */
  cpu_percent: number | null;
  /** The busiest of its processes: a single-threaded server is saturated near 100. */
  max_process_cpu_percent: number | null;
  peak_rss_mb: number | null;
  /**
   * CPU ms the server processes spent per 1,000 queue events delivered to
   * displays in the window: what a delivery costs the server, whatever the
   * load generator could take.
   */
  ms_per_1000_deliveries: number | null;
}

export interface FanoutFigures extends MachineLoad {
  clients: number;
  clients_connected: number;
  connect_failed: number;
  connect_seconds: number | null;
  connect_handshake: LatencyFigures;
  rate_per_second: number;
  seconds: number;
  calls: number;
  warmup_calls: number;
  deliveries_expected: number;
  deliveries_received: number;
  missing: number;
  duplicates: number;
  unexpected_called_events: number;
  disconnects: number;
  malformed: number;
  /** call sent → ticket.called received by a display; measured calls only. */
  p50_ms: number | null;
  p95_ms: number | null;
  p99_ms: number | null;
  max_ms: number | null;
  mean_ms: number | null;
  breakdown: {
    /**
     * call → the first display of each generator process to get it. The gap
     * to call→display is the time a generator process takes to work through
     * its displays' copies of one broadcast (and the server to write them).
     */
    first_display_per_process: LatencyFigures;
  };
  /**
   * One entry per measured call, in order: when it was sent (s from the first
   * measured call), its ack round trip (the hub only) and how long it took to
   * reach the median and the last display. Periodic stalls show up here.
   */
  timeline: { t_s: number; ack_ms: number | null; p50_ms: number | null; max_ms: number | null }[];
  /** queue:event payloads (all types) received by all displays per second over the measured window. */
  messages_per_second: number | null;
  events_by_type: Record<string, number>;
  /**
   * Per display per call (warm-up included): the queue events' JSON it read,
   * and every byte its server sent it after the WebSocket handshake (frames,
   * each protocol's own framing, pings).
   */
  bytes_per_call: { payload: number | null; wire: number | null };
  /**
   * Socket reads per display per call (warm-up included, pings too): 1 when
   * a call's events reach a display in one write, more when the server wrote
   * them apart. Each read is a wake-up of the display and, on the server, a
   * send() of its own.
   */
  reads_per_call: number | null;
  server_cpu: ServerCpu;
  generator: { processes: number; cpu_percent: number | null; peak_rss_mb: number | null; per_process_cpu_percent: (number | null)[] };
  coordinator: { cpu_percent: number | null; peak_rss_mb: number | null };
  window_seconds: number;
  errors: string[];
  ok: boolean;
}

/** Arrivals joined with the calls: what both kinds of phase report, before their own figures. */
export interface JoinedDeliveries {
  expected: number;
  received: number;
  missing: number;
  duplicates: number;
  unexpected: number;
  malformed: number;
  disconnects: number;
  /** call → display, every display, measured calls. */
  latencies: Float64Array;
  /** commit → display, for calls with a commit time. */
  fromCommit: Float64Array;
  firstPerProcess: number[];
  perCall: Map<TimedCall, number[]>;
  handshakes: number[];
  byType: Record<string, number>;
  messagesInWindow: number;
  payloadBytes: number;
  wireBytes: number;
  wireReads: number;
  errors: string[];
}

/** Joins the generator processes' arrivals (`results`) with the calls that have a seq; counts what is missing, duplicated or unexpected. */
export function joinDeliveries(calls: TimedCall[], results: WorkerResult[], window: { start: number; end: number }): JoinedDeliveries {
  const known = calls.filter((c) => c.seq !== null);
  const seqs = new Set(known.map((c) => c.seq!));
  const measuredCount = known.filter((c) => c.measured).length;
  const connected = results.reduce((n, r) => n + r.joined.reduce((a, j) => a + j, 0), 0);
  const latencies = new Float64Array(measuredCount * connected);
  const fromCommit = new Float64Array(measuredCount * connected);
  const perCall = new Map<TimedCall, number[]>(known.filter((c) => c.measured).map((c) => [c, []]));
  const out: JoinedDeliveries = {
    expected: connected * known.length,
    received: 0,
    missing: 0,
    duplicates: 0,
    unexpected: 0,
    malformed: 0,
    disconnects: 0,
    latencies,
    fromCommit,
    firstPerProcess: [],
    perCall,
    handshakes: [],
    byType: {},
    messagesInWindow: 0,
    payloadBytes: 0,
    wireBytes: 0,
    wireReads: 0,
    errors: [],
  };
  let latencyCount = 0;
  let commitCount = 0;
  for (const result of results) {
    const index = new Map<number, number>();
    result.keys.forEach((seq, i) => index.set(seq, i));
    for (const seq of result.keys) if (!seqs.has(seq)) out.unexpected++;
    for (const call of known) {
      const i = index.get(call.seq!);
      const times = i === undefined ? null : result.times[i]!;
      if (i !== undefined) out.duplicates += result.duplicates[i]!;
      let first = Infinity;
      for (let d = 0; d < result.clients; d++) {
        if (result.joined[d] !== 1) continue;
        const at = times ? times[d]! : NaN;
        if (at < first) first = at;
        if (Number.isNaN(at)) {
          out.missing++;
          continue;
        }
        out.received++;
        if (call.measured) {
          latencies[latencyCount++] = at - call.sentAt;
          if (call.committedAt != null) fromCommit[commitCount++] = at - call.committedAt;
          perCall.get(call)!.push(at - call.sentAt);
        }
      }
      if (call.measured && first !== Infinity) out.firstPerProcess.push(first - call.sentAt);
    }
    for (let d = 0; d < result.clients; d++) if (result.joined[d] === 1) out.handshakes.push(result.connectMs[d]!);
    for (const [type, n] of Object.entries(result.byType)) out.byType[type] = (out.byType[type] ?? 0) + n;
    for (const [bucket, n] of result.buckets) {
      const at = bucket * result.bucketMs;
      if (at >= window.start && at < window.end) out.messagesInWindow += n;
    }
    out.malformed += result.malformed;
    out.disconnects += result.disconnects;
    out.payloadBytes += result.payloadBytes;
    out.wireBytes += result.wireBytes;
    out.wireReads += result.wireReads;
    for (const e of result.errors) if (out.errors.length < 30) out.errors.push(e);
  }
  out.latencies = latencies.subarray(0, latencyCount);
  out.fromCommit = fromCommit.subarray(0, commitCount);
  return out;
}

/**
 * The figures every phase reports, from its joined deliveries, its calls,
 * the processes that served the displays and the measured window.
 */
export function fanoutFigures(input: {
  joined: JoinedDeliveries;
  calls: TimedCall[];
  clients: number;
  connected: number;
  connectFailed: number;
  connectSeconds: number;
  rate: number;
  seconds: number;
  window: { start: number; end: number };
  watcher: ProcessWatcher;
  from: Mark;
  to: Mark;
  serverPids: number[];
  generatorPids: number[];
  /** Processes of the run that are neither server nor generator (the coordinator, Redis): not counted as "other programs". */
  otherOwnPids: number[];
  errors: string[];
}): Omit<FanoutFigures, 'ok'> {
  const { joined, calls, watcher, from, to, window } = input;
  const known = calls.filter((c) => c.seq !== null);
  const measured = known.filter((c) => c.measured);
  const latency = summarize(joined.latencies);
  const windowSeconds = (window.end - window.start) / 1000;
  const cpu = (pid: number) => cpuPercent(pid, from, to);
  const serverCpu = input.serverPids.map(cpu);
  const serverCpuTotal = serverCpu.reduce<number>((a, b) => a + (b ?? 0), 0);
  const generatorCpu = input.generatorPids.map(cpu);
  const perDisplayCall = (n: number, digits = 0) => (input.connected > 0 && known.length > 0 ? round(n / (input.connected * known.length), digits) : null);
  return {
    clients: input.clients,
    clients_connected: input.connected,
    connect_failed: input.connectFailed,
    connect_seconds: round(input.connectSeconds, 2),
    connect_handshake: figures(summarize(joined.handshakes)),
    rate_per_second: input.rate,
    seconds: input.seconds,
    calls: measured.length,
    warmup_calls: known.length - measured.length,
    deliveries_expected: joined.expected,
    deliveries_received: joined.received,
    missing: joined.missing,
    duplicates: joined.duplicates,
    unexpected_called_events: joined.unexpected,
    disconnects: joined.disconnects,
    malformed: joined.malformed,
    p50_ms: round(latency.p50),
    p95_ms: round(latency.p95),
    p99_ms: round(latency.p99),
    max_ms: round(latency.max),
    mean_ms: round(latency.mean),
    breakdown: { first_display_per_process: figures(summarize(joined.firstPerProcess)) },
    timeline: measured.map((c) => {
      const summary = summarize(joined.perCall.get(c) ?? []);
      return { t_s: round((c.sentAt - window.start) / 1000, 2)!, ack_ms: c.ackAt == null ? null : round(c.ackAt - c.sentAt), p50_ms: round(summary.p50), max_ms: round(summary.max) };
    }),
    messages_per_second: round(joined.messagesInWindow / windowSeconds, 0),
    events_by_type: joined.byType,
    bytes_per_call: { payload: perDisplayCall(joined.payloadBytes), wire: perDisplayCall(joined.wireBytes) },
    reads_per_call: perDisplayCall(joined.wireReads, 2),
    server_cpu: {
      processes: input.serverPids.length,
      cpu_percent: round(serverCpuTotal),
      max_process_cpu_percent: round(Math.max(0, ...serverCpu.map((c) => c ?? 0))),
      peak_rss_mb: round(input.serverPids.reduce((a, pid) => a + watcher.peakRssMb(pid), 0)),
      ms_per_1000_deliveries: cpuMsPer1000(serverCpuTotal, windowSeconds, joined.messagesInWindow),
    },
    generator: {
      processes: input.generatorPids.length,
      cpu_percent: round(generatorCpu.reduce<number>((a, b) => a + (b ?? 0), 0)),
      peak_rss_mb: round(input.generatorPids.reduce((a, pid) => a + watcher.peakRssMb(pid), 0)),
      per_process_cpu_percent: generatorCpu,
    },
    coordinator: { cpu_percent: cpu(process.pid), peak_rss_mb: round(watcher.peakRssMb(process.pid)) },
    ...machineLoad(from, to, [...input.serverPids, ...input.generatorPids, ...input.otherOwnPids]),
    window_seconds: round(windowSeconds, 2)!,
    errors: [...input.errors, ...joined.errors].slice(0, 30),
  };
}

/** CPU ms per 1,000 deliveries from a CPU % (100 = one core) held over `seconds`; null without deliveries. */
export function cpuMsPer1000(cpuPercentTotal: number, seconds: number, deliveries: number): number | null {
  if (deliveries <= 0 || seconds <= 0) return null;
  return round(((cpuPercentTotal / 100) * seconds * 1000 * 1000) / deliveries, 2);
}

/** Every delivery arrived exactly once, every display connected and stayed, nothing malformed. */
export function deliveredEverything(f: Omit<FanoutFigures, 'ok'>, expectedCalls: number): boolean {
  return (
    f.missing === 0 &&
    f.duplicates === 0 &&
    f.unexpected_called_events === 0 &&
    f.connect_failed === 0 &&
    f.disconnects === 0 &&
    f.malformed === 0 &&
    f.calls === expectedCalls
  );
}

/** The line a fan-out phase (the hub's or a compared server's) ends with. */
export function fanoutOutcomeLine(tag: string, f: Pick<FanoutFigures, 'p50_ms' | 'p99_ms' | 'deliveries_received' | 'deliveries_expected' | 'missing' | 'duplicates'>): string {
  return `${tag} call→display p50 ${f.p50_ms} ms, p99 ${f.p99_ms} ms; deliveries ${f.deliveries_received}/${f.deliveries_expected}, missing ${f.missing}, duplicates ${f.duplicates}`;
}
