/**
 * `npm run bench`: every scenario of the Node harness in one run, on this
 * machine, against a stack it starts (a private redis-server, two hub nodes
 * per phase), 127.0.0.1 only.
 *
 * 1. Display fan-out (bench-queue's phase runners) over a ramp of connection
 *    counts (`--steps`, default 500,1000,2000): at each step the hub on
 *    uWebSockets.js, the baseline (Node HTTP + ws), the bare-uWebSockets.js
 *    limit, Mosquitto and NATS, side by side.
 * 2. Chat fan-out and notification latency once (bench-chat's runner).
 *
 * Writes load-tests/results/bench.json and load-tests/results/bench-latency.svg
 * (call→display p50 and p99 against connections, uws against node) and
 * prints a table.
 *
 *   npm run bench
 *   npm run bench -- --steps 500,1000,2000,5000
 *   npm run bench -- --steps 50,100 --seconds 2 --no-chat
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHAT_OPTIONS, runChatBench, type ChatBenchReport } from './bench-chat.js';
import { benchCommandLine, reportedOptions, runBenchCli } from './bench-cli.js';
import { FANOUT_KINDS, QUEUE_OPTIONS, compareWithLimit, isHubKind, runFanoutPhase, withPhaseContext, type AnyPhaseReport, type BenchOptions, type Comparison, type FanoutKind } from './bench-queue.js';
import { renderLineChartSvg, type ChartSeries } from './chart.js';
import type { ServerCpu } from './fanout-figures.js';
import type { HubFigures, ServerKind } from './resource-figures.js';
import { busyWarning, cell, machine, machineLine, renderTable, round, verdict, type LatencyFigures, type MachineInfo } from './report.js';
import { Resources } from './resources.js';

const QUEUE_OPTIONS_MQTT = { flag: 'mqtt', kind: 'choice', choices: ['3.1.1', '5'], default: '3.1.1', help: 'MQTT version spoken to mosquitto' } as const;

export const ALL_OPTIONS = benchCommandLine({
  name: 'bench',
  report: 'load-tests/results/bench.json',
  profiles: 'every hub node and generator process',
  options: {
    /** Display connection counts of the fan-out ramp (ascending once parsed). */
    steps: { kind: 'integer', list: true, default: [500, 1000, 2000], min: 1, max: 20_000, help: 'display counts of the fan-out ramp' },
    servers: { kind: 'choice', list: true, choices: FANOUT_KINDS, default: FANOUT_KINDS, help: 'servers at each step: the hub on uws, node (baseline), the limit, the peers' },
    rate: { kind: 'number', arg: 'R', default: 10, min: 0.1, max: 200, help: 'call-next per second at each step' },
    seconds: { kind: 'number', arg: 'S', default: 5, min: 0.5, max: 60, help: 'measured seconds per step and of chat' },
    warmupSeconds: { flag: 'warmup', kind: 'number', arg: 'S', default: 1, min: 0, max: 30, help: 'unmeasured seconds first' },
    workers: { kind: 'integer', default: QUEUE_OPTIONS.defaults.workers, min: 1, max: 16, help: 'generator processes for the displays' },
    rampConcurrency: { flag: 'ramp', kind: 'integer', default: QUEUE_OPTIONS.defaults.rampConcurrency, min: 1, max: 500, help: 'handshakes in flight per generator process' },
    settleSeconds: { flag: 'settle', kind: 'number', arg: 'S', default: 5, min: 0, max: 60, help: 'wait for late deliveries after the last call' },
    mqttVersion: QUEUE_OPTIONS_MQTT,
    chatMembers: { kind: 'integer', default: CHAT_OPTIONS.defaults.members, min: 2, max: 10_000, help: 'chat channel members' },
    noChat: { kind: 'boolean', help: 'no chat scenario' },
    chatRate: { kind: 'number', arg: 'R', default: CHAT_OPTIONS.defaults.rate, min: 0.1, max: 1000, help: 'chat messages per second' },
    notifications: { kind: 'integer', default: 100, min: 0, max: 10_000, help: 'SMS reminders measured after chat; 0: none' },
    svg: { kind: 'string', arg: 'FILE', defaultHelp: 'bench-latency.svg next to --out', help: 'chart' },
    targetP99Ms: { flag: 'target', kind: 'number', arg: 'MS', default: 100, min: 1, max: 60_000, help: 'call→display p99 budget' },
  },
  finish({ steps, servers, noChat, chatMembers, svg, ...options }) {
    if (steps.length === 0 || steps.length > 12) throw new Error('--steps takes 1 to 12 display counts');
    if (options.rate * options.seconds < 1) throw new Error('--rate × --seconds must make at least one call');
    return {
      steps: [...new Set(steps)].sort((a, b) => a - b),
      servers: [...new Set(servers)],
      ...options,
      /** 0: no chat scenario. */
      chatMembers: noChat ? 0 : chatMembers,
      /** The chart; null: none. */
      svg: svg ? resolve(svg) : options.out ? join(dirname(options.out), 'bench-latency.svg') : null,
    };
  },
});

export type BenchAllOptions = typeof ALL_OPTIONS.defaults;

/** One server at one step of the ramp: the figures the issue asks for, and where the time went. */
export interface StepSide {
  server: FanoutKind;
  /** The hub: what its nodes ran on; the others: empty. */
  server_actual: ServerKind[];
  clients: number;
  clients_connected: number;
  calls: number;
  deliveries_expected: number;
  deliveries_received: number;
  missing: number;
  duplicates: number;
  /** call sent → ticket.called on a display, every display, measured calls. */
  p50_ms: number | null;
  p95_ms: number | null;
  p99_ms: number | null;
  max_ms: number | null;
  /** The hub only: staff send → Redis commit, and commit → display. */
  send_to_commit: LatencyFigures | null;
  commit_to_display: LatencyFigures | null;
  /** call-next ack round trip at the staff client (the hub only). */
  queue_op: LatencyFigures | null;
  /** queue:event messages received by all displays per second. */
  messages_per_second: number | null;
  /** The hub's nodes (the others: empty; their processes are in server_cpu). */
  hubs: HubFigures[];
  server_cpu: ServerCpu | null;
  generator: { processes: number; cpu_percent: number | null; peak_rss_mb: number | null };
  redis_cpu_percent: number | null;
  machine_busy_percent: number | null;
  other_cpu_percent: number | null;
  connect_seconds: number | null;
  /** Connection failures, call errors, delivery errors, or why the phase could not run. */
  errors: string[];
  ok: boolean;
}

export type RampStep = { clients: number } & Partial<Record<FanoutKind, StepSide | null>> & {
  /** node p99 / uws p99 at this step. */
  p99_ratio_node_over_uws: number | null;
  /** Each server against the limit at this step (with the limit in the run). */
  comparison?: Comparison | null;
};

export interface BenchAllReport {
  fanout: { rate_per_second: number; seconds: number; steps: RampStep[] };
  /** bench:chat's report without its per-message timeline; null with --no-chat. */
  chat: (Omit<ChatBenchReport, 'chat'> & { chat: Omit<ChatBenchReport['chat'], 'timeline'> }) | { error: string } | null;
  target: { display_p99_ms: number; largest_step_met: { uws: boolean | null; node: boolean | null } };
  options: Omit<BenchAllOptions, 'out' | 'svg' | 'profileDir'>;
  machine: MachineInfo;
  date: string;
  ok: boolean;
}

export function stepSide(p: AnyPhaseReport): StepSide {
  const hub = isHubKind(p.server) && 'hubs' in p ? p : null;
  const errors = [
    ...p.errors,
    ...(hub ? Object.entries(hub.call_errors).map(([code, n]) => `${code} ×${n}`) : []),
    ...(p.connect_failed > 0 ? [`${p.connect_failed} displays could not connect`] : []),
    ...(p.missing > 0 ? [`${p.missing} deliveries missing`] : []),
    ...(p.duplicates > 0 ? [`${p.duplicates} deliveries duplicated`] : []),
  ];
  return {
    server: p.server,
    server_actual: hub ? hub.server_actual : [],
    clients: p.clients,
    clients_connected: p.clients_connected,
    calls: p.calls,
    deliveries_expected: p.deliveries_expected,
    deliveries_received: p.deliveries_received,
    missing: p.missing,
    duplicates: p.duplicates,
    p50_ms: p.p50_ms,
    p95_ms: p.p95_ms,
    p99_ms: p.p99_ms,
    max_ms: p.max_ms,
    send_to_commit: hub ? hub.breakdown.send_to_commit : null,
    commit_to_display: hub ? hub.breakdown.commit_to_display : null,
    queue_op: hub ? hub.queue_op : null,
    messages_per_second: p.messages_per_second,
    hubs: hub ? hub.hubs.map((h) => ({ node: h.node, server: h.server, pid: h.pid, cpu_percent: h.cpu_percent, peak_rss_mb: h.peak_rss_mb })) : [],
    server_cpu: p.server_cpu,
    generator: { processes: p.generator.processes, cpu_percent: p.generator.cpu_percent, peak_rss_mb: p.generator.peak_rss_mb },
    redis_cpu_percent: hub ? hub.redis.cpu_percent : null,
    machine_busy_percent: p.machine_busy_percent,
    other_cpu_percent: p.other_cpu_percent,
    connect_seconds: p.connect_seconds,
    errors: [...new Set(errors)],
    ok: p.ok,
  };
}

function failedSide(server: FanoutKind, clients: number, error: unknown): StepSide {
  return {
    server,
    server_actual: [],
    clients,
    clients_connected: 0,
    calls: 0,
    deliveries_expected: 0,
    deliveries_received: 0,
    missing: 0,
    duplicates: 0,
    p50_ms: null,
    p95_ms: null,
    p99_ms: null,
    max_ms: null,
    send_to_commit: null,
    commit_to_display: null,
    queue_op: null,
    messages_per_second: null,
    hubs: [],
    server_cpu: null,
    generator: { processes: 0, cpu_percent: null, peak_rss_mb: null },
    redis_cpu_percent: null,
    machine_busy_percent: null,
    other_cpu_percent: null,
    connect_seconds: null,
    errors: [`could not run: ${error instanceof Error ? error.message.slice(0, 500) : String(error)}`],
    ok: false,
  };
}

const SERIES_STYLE: Record<FanoutKind, { color: string; label: string }> = {
  uws: { color: '#1565c0', label: 'uWebSockets.js' },
  node: { color: '#ef6c00', label: 'Node HTTP + ws' },
  limit: { color: '#616161', label: 'limit (bare uWS)' },
  mosquitto: { color: '#6a1b9a', label: 'Mosquitto' },
  nats: { color: '#2e7d32', label: 'NATS' },
};

/** The chart of the ramp: p99 (solid) and p50 (dashed) per server. */
export function latencyChartSvg(steps: RampStep[], targetP99Ms: number | null = null, title = 'Display fan-out: call → display latency, 2 hub nodes'): string {
  const series: ChartSeries[] = [];
  for (const server of FANOUT_KINDS) {
    if (!steps.some((s) => s[server])) continue;
    const style = SERIES_STYLE[server];
    for (const [q, dashed] of [['p99_ms', false], ['p50_ms', true]] as const) {
      series.push({
        name: `${style.label} ${q.slice(0, 3)}`,
        color: style.color,
        dashed,
        points: steps.flatMap((s) => (s[server] ? [{ x: s.clients, y: s[server]![q] }] : [])),
      });
    }
  }
  return renderLineChartSvg(series, {
    title,
    xLabel: 'connected displays',
    yLabel: 'call → display latency (ms)',
    ...(targetP99Ms !== null ? { target: { y: targetP99Ms, label: `target p99 < ${targetP99Ms} ms` } } : {}),
  });
}

export async function runBenchAll(options: BenchAllOptions, log: (line: string) => void = (l) => process.stdout.write(`${l}\n`), resources = new Resources()): Promise<BenchAllReport> {
  const steps: RampStep[] = options.steps.map((clients) => ({ clients, p99_ratio_node_over_uws: null }));
  const phaseOptions = (clients: number): BenchOptions => ({
    ...QUEUE_OPTIONS.defaults,
    clients,
    rate: options.rate,
    rates: [options.rate],
    seconds: options.seconds,
    warmupSeconds: options.warmupSeconds,
    workers: options.workers,
    mqttVersion: options.mqttVersion,
    rampConcurrency: options.rampConcurrency,
    settleSeconds: options.settleSeconds,
    servers: options.servers,
    out: null,
    profileDir: options.profileDir,
    targetP99Ms: options.targetP99Ms,
  });

  // The ramp: one redis-server for every phase; the servers alternate at each step so that all see the same machine.
  await withPhaseContext({ profileDir: options.profileDir }, log, resources, async (context) => {
    for (const [i, step] of steps.entries()) {
      const reports: AnyPhaseReport[] = [];
      for (const server of options.servers) {
        log(`\n== fan-out step ${i + 1}/${steps.length}: ${step.clients} displays, ${server} ==`);
        // A phase's own processes, stopped when it fails, so that the ramp can go on; Ctrl-C still reaches them.
        const phaseResources = new Resources();
        const stopPhase = resources.add(`${server} phase at ${step.clients}`, () => phaseResources.stopAll(log));
        try {
          const phase = await runFanoutPhase(server, phaseOptions(step.clients), { ...context, resources: phaseResources });
          reports.push(phase);
          step[server] = stepSide(phase);
        } catch (error) {
          log(`[${server}] step at ${step.clients} displays failed: ${(error as Error).message}`);
          step[server] = failedSide(server, step.clients, error);
        } finally {
          await stopPhase();
        }
      }
      const u = step.uws?.p99_ms;
      const n = step.node?.p99_ms;
      step.p99_ratio_node_over_uws = u && n ? round(n / u, 2) : null;
      if (reports.some((r) => r.server === 'limit')) step.comparison = compareWithLimit(reports);
    }
  });

  let chat: BenchAllReport['chat'] = null;
  if (options.chatMembers > 0) {
    log(`\n== chat: ${options.chatMembers} members, ${options.chatRate} messages/s, uws ==`);
    try {
      const report = await runChatBench(
        {
          ...CHAT_OPTIONS.defaults,
          members: options.chatMembers,
          senders: Math.min(CHAT_OPTIONS.defaults.senders, options.chatMembers),
          rate: options.chatRate,
          seconds: options.seconds,
          warmupSeconds: options.warmupSeconds,
          notifications: options.notifications,
          notifyWarmup: Math.min(CHAT_OPTIONS.defaults.notifyWarmup, options.notifications),
          out: null,
          profileDir: options.profileDir,
          targetP99Ms: options.targetP99Ms,
        },
        log,
        resources,
      );
      const { timeline: _timeline, ...chatFigures } = report.chat;
      chat = { ...report, chat: chatFigures };
    } catch (error) {
      log(`chat failed: ${(error as Error).message}`);
      chat = { error: (error as Error).message.slice(0, 500) };
    }
  }

  const largest = steps[steps.length - 1];
  const met = (side: StepSide | null | undefined) => (side?.p99_ms == null ? null : side.p99_ms < options.targetP99Ms);
  const { svg: _svg, ...shown } = reportedOptions(options);
  const report: BenchAllReport = {
    fanout: { rate_per_second: options.rate, seconds: options.seconds, steps },
    chat,
    target: { display_p99_ms: options.targetP99Ms, largest_step_met: { uws: met(largest?.uws), node: met(largest?.node) } },
    options: shown,
    machine: machine(),
    date: new Date().toISOString(),
    ok: steps.every((s) => options.servers.every((server) => s[server]?.ok === true)) && (chat === null || ('ok' in chat && chat.ok)),
  };
  if (options.svg) {
    mkdirSync(dirname(options.svg), { recursive: true });
    writeFileSync(options.svg, latencyChartSvg(steps, options.targetP99Ms));
    log(`chart: ${options.svg}`);
  }
  return report;
}

/** The tables printed at the end of a run: the ramp, uws and node side by side at each step, then chat. */
export function formatBenchAll(report: BenchAllReport): string {
  const servers = report.options.servers;
  const header = ['displays', 'server', 'p50', 'p95', 'p99', 'max (ms)', 'msgs/s', 'server CPU % (per process)', 'CPU ms / 1,000', 'server RSS MB', 'gen. CPU %', 'delivered', 'errors'];
  const body: string[][] = [];
  const ratioRow = (label: string, value: number | null | undefined) => ['', label, '', '', value == null ? '–' : `${value.toFixed(2)}×`, '', '', '', '', '', '', '', ''];
  for (const step of report.fanout.steps) {
    for (const server of servers) {
      const s = step[server];
      if (!s) continue;
      body.push([
        step.clients.toLocaleString('en-US'),
        server === 'node' ? 'node (baseline)' : server,
        cell(s.p50_ms),
        cell(s.p95_ms),
        cell(s.p99_ms),
        cell(s.max_ms),
        cell(s.messages_per_second),
        s.hubs.length > 0 ? s.hubs.map((h) => cell(h.cpu_percent)).join(' / ') : cell(s.server_cpu?.cpu_percent),
        cell(s.server_cpu?.ms_per_1000_deliveries),
        cell(s.server_cpu?.peak_rss_mb),
        cell(s.generator.cpu_percent),
        `${s.deliveries_received}/${s.deliveries_expected}`,
        s.errors.length === 0 ? 'none' : String(s.errors.length),
      ]);
    }
    if (step.uws && step.node) body.push(ratioRow('node/uws p99', step.p99_ratio_node_over_uws));
    if (step.uws && step.comparison) body.push(ratioRow('uws/limit p99', step.comparison.over_limit.uws?.p99));
  }
  const lines = [`display fan-out: ${report.fanout.rate_per_second} calls/s for ${report.fanout.seconds} s per step, 2 hub nodes (the limit: 2 processes)`, ...renderTable(header, body)];
  for (const step of report.fanout.steps) {
    for (const server of servers) {
      const s = step[server];
      if (s && s.errors.length > 0) lines.push(`  ${step.clients} ${server} errors: ${s.errors.slice(0, 3).join('; ')}`);
    }
  }
  const chat = report.chat;
  if (chat && 'error' in chat) lines.push('', `chat: could not run: ${chat.error}`);
  else if (chat) {
    const c = chat.chat;
    const f = (x: LatencyFigures) => `${cell(x.p50_ms)} / ${cell(x.p95_ms)} / ${cell(x.p99_ms)} / ${cell(x.max_ms)}`;
    const rows: string[][] = [
      ['send → delivery p50 / p95 / p99 / max (ms)', f(c.send_to_delivery)],
      ['send → ack p50 / p95 / p99 / max (ms)', f(c.send_to_ack)],
      ['deliveries received / expected', `${c.deliveries_received}/${c.deliveries_expected} (missing ${c.missing}, duplicates ${c.duplicates}, out of order ${c.out_of_order})`],
      ['deliveries / s', cell(c.deliveries_per_second)],
      ['hub CPU % / peak RSS MB per node', c.hubs.map((h) => `${cell(h.cpu_percent)} / ${cell(h.peak_rss_mb)}`).join(', ')],
      ['generator CPU %', cell(c.generator.cpu_percent)],
      ...(chat.notifications
        ? [
            ['enqueue → SMS provider p50 / p95 / p99 / max (ms)', f(chat.notifications.enqueue_to_provider)],
            ['notifications received', `${chat.notifications.received} (missing ${chat.notifications.missing}, duplicates ${chat.notifications.duplicates})`],
          ]
        : []),
      ['errors', chat.ok ? 'none' : [...c.errors, ...(chat.notifications?.errors ?? [])].slice(0, 3).join('; ') || 'see the report'],
    ];
    lines.push('', `chat: ${c.members_connected}/${c.members} members on ${c.nodes} × ${[...new Set(c.server_actual)].join('/')}, ${c.rate_per_second} messages/s`, ...renderTable(['chat', 'figures'], rows));
  }
  const windows = report.fanout.steps.flatMap((step) =>
    FANOUT_KINDS.flatMap((server) => {
      const side = step[server];
      return side ? [{ during: `${step.clients} ${server}`, other_cpu_percent: side.other_cpu_percent }] : [];
    }),
  );
  if (report.chat && !('error' in report.chat)) windows.push({ during: 'chat', other_cpu_percent: report.chat.chat.other_cpu_percent });
  lines.push(...busyWarning(windows));
  const t = report.target;
  lines.push(
    '',
    `target: call→display p99 < ${t.display_p99_ms} ms at ${report.fanout.steps.at(-1)?.clients ?? 0} displays: uws ${verdict(t.largest_step_met.uws)}, node ${verdict(t.largest_step_met.node)}`,
    machineLine(report.machine),
  );
  return lines.join('\n');
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  void runBenchCli({ commandLine: ALL_OPTIONS, run: runBenchAll, format: formatBenchAll });
}
