/**
 * `npm run bench`: every scenario of the Node harness in one run, on this
 * machine, against a stack it starts (a private redis-server, two hub nodes
 * per phase), 127.0.0.1 only.
 *
 * 1. Display fan-out (bench-queue's phase runner) over a ramp of connection
 *    counts (`--steps`, default 500,1000,2000): at each step the hub on
 *    uWebSockets.js and then the baseline (Node HTTP + ws), side by side.
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
import { parseArgs } from 'node:util';
import { DEFAULTS as CHAT_DEFAULTS, runChatBench, type ChatBenchReport } from './bench-chat.js';
import { numberOption, runBenchCli } from './bench-cli.js';
import { DEFAULTS as QUEUE_DEFAULTS, runPhase, withPhaseContext, type BenchOptions, type PhaseReport, type ServerKind } from './bench-queue.js';
import { renderLineChartSvg, type ChartSeries } from './chart.js';
import type { HubFigures } from './resource-figures.js';
import { REPO_ROOT } from './hub-process.js';
import { cell, machine, renderTable, round, type LatencyFigures, type MachineInfo } from './report.js';
import { Resources } from './resources.js';

export interface BenchAllOptions {
  /** Display connection counts of the fan-out ramp, ascending. */
  steps: number[];
  servers: ServerKind[];
  /** call-next per second at every step. */
  rate: number;
  /** Measured seconds per step (and of chat). */
  seconds: number;
  warmupSeconds: number;
  workers: number;
  rampConcurrency: number;
  settleSeconds: number;
  /** Chat members; 0: no chat scenario. */
  chatMembers: number;
  chatRate: number;
  /** Notifications measured after chat (0: none). */
  notifications: number;
  out: string | null;
  /** The chart; null: none. */
  svg: string | null;
  profileDir: string | null;
  targetP99Ms: number;
}

export const DEFAULTS: BenchAllOptions = {
  steps: [500, 1000, 2000],
  servers: ['uws', 'node'],
  rate: 10,
  seconds: 5,
  warmupSeconds: 1,
  workers: QUEUE_DEFAULTS.workers,
  rampConcurrency: QUEUE_DEFAULTS.rampConcurrency,
  settleSeconds: 5,
  chatMembers: CHAT_DEFAULTS.members,
  chatRate: CHAT_DEFAULTS.rate,
  notifications: 100,
  out: resolve(REPO_ROOT, 'load-tests/results/bench.json'),
  svg: resolve(REPO_ROOT, 'load-tests/results/bench-latency.svg'),
  profileDir: null,
  targetP99Ms: 100,
};

/** One server kind at one step of the ramp: the figures the issue asks for, and where the time went. */
export interface StepSide {
  server: ServerKind;
  server_actual: ServerKind[];
  clients: number;
  clients_connected: number;
  calls: number;
  deliveries_expected: number;
  deliveries_received: number;
  missing: number;
  duplicates: number;
  /** call-next sent → ticket.called on a display, every display, measured calls. */
  p50_ms: number | null;
  p95_ms: number | null;
  p99_ms: number | null;
  max_ms: number | null;
  send_to_commit: LatencyFigures | null;
  commit_to_display: LatencyFigures | null;
  /** call-next ack round trip at the staff client. */
  queue_op: LatencyFigures | null;
  /** queue:event messages received by all displays per second. */
  messages_per_second: number | null;
  hubs: HubFigures[];
  generator: { processes: number; cpu_percent: number | null; peak_rss_mb: number | null };
  redis_cpu_percent: number | null;
  machine_busy_percent: number | null;
  other_cpu_percent: number | null;
  connect_seconds: number | null;
  /** Connection failures, call errors, delivery errors, or why the phase could not run. */
  errors: string[];
  ok: boolean;
}

export interface RampStep {
  clients: number;
  uws: StepSide | null;
  node: StepSide | null;
  /** node p99 / uws p99 at this step. */
  p99_ratio_node_over_uws: number | null;
}

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

export function stepSide(p: PhaseReport): StepSide {
  const errors = [
    ...p.errors,
    ...Object.entries(p.call_errors).map(([code, n]) => `${code} ×${n}`),
    ...(p.connect_failed > 0 ? [`${p.connect_failed} displays could not connect`] : []),
    ...(p.missing > 0 ? [`${p.missing} deliveries missing`] : []),
    ...(p.duplicates > 0 ? [`${p.duplicates} deliveries duplicated`] : []),
  ];
  return {
    server: p.server,
    server_actual: p.server_actual,
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
    send_to_commit: p.breakdown.send_to_commit,
    commit_to_display: p.breakdown.commit_to_display,
    queue_op: p.queue_op,
    messages_per_second: p.messages_per_second,
    hubs: p.hubs.map((h) => ({ node: h.node, server: h.server, pid: h.pid, cpu_percent: h.cpu_percent, peak_rss_mb: h.peak_rss_mb })),
    generator: { processes: p.generator.processes, cpu_percent: p.generator.cpu_percent, peak_rss_mb: p.generator.peak_rss_mb },
    redis_cpu_percent: p.redis.cpu_percent,
    machine_busy_percent: p.machine_busy_percent,
    other_cpu_percent: p.other_cpu_percent,
    connect_seconds: p.connect_seconds,
    errors: [...new Set(errors)],
    ok: p.ok,
  };
}

function failedSide(server: ServerKind, clients: number, error: unknown): StepSide {
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
    generator: { processes: 0, cpu_percent: null, peak_rss_mb: null },
    redis_cpu_percent: null,
    machine_busy_percent: null,
    other_cpu_percent: null,
    connect_seconds: null,
    errors: [`could not run: ${error instanceof Error ? error.message.slice(0, 500) : String(error)}`],
    ok: false,
  };
}

const SERIES_STYLE: Record<ServerKind, { color: string; label: string }> = {
  uws: { color: '#1565c0', label: 'uWebSockets.js' },
  node: { color: '#ef6c00', label: 'Node HTTP + ws' },
};

/** The chart of the ramp: p99 (solid) and p50 (dashed) per server kind. */
export function latencyChartSvg(steps: RampStep[], targetP99Ms: number | null = null, title = 'Display fan-out: call → display latency, 2 hub nodes'): string {
  const series: ChartSeries[] = [];
  for (const server of ['uws', 'node'] as const) {
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
  const steps: RampStep[] = options.steps.map((clients) => ({ clients, uws: null, node: null, p99_ratio_node_over_uws: null }));
  const phaseOptions = (clients: number): BenchOptions => ({
    ...QUEUE_DEFAULTS,
    clients,
    rate: options.rate,
    seconds: options.seconds,
    warmupSeconds: options.warmupSeconds,
    workers: options.workers,
    rampConcurrency: options.rampConcurrency,
    settleSeconds: options.settleSeconds,
    servers: options.servers,
    out: null,
    profileDir: options.profileDir,
    targetP99Ms: options.targetP99Ms,
  });

  // The ramp: one redis-server for every phase; uws and node alternate at each step so that both see the same machine.
  await withPhaseContext({ profileDir: options.profileDir }, log, resources, async (context) => {
    for (const [i, step] of steps.entries()) {
      for (const server of options.servers) {
        log(`\n== fan-out step ${i + 1}/${steps.length}: ${step.clients} displays, ${server} ==`);
        // A phase's own processes, stopped when it fails, so that the ramp can go on; Ctrl-C still reaches them.
        const phaseResources = new Resources();
        const stopPhase = resources.add(`${server} phase at ${step.clients}`, () => phaseResources.stopAll(log));
        try {
          step[server] = stepSide(await runPhase(server, phaseOptions(step.clients), { ...context, resources: phaseResources }));
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
    }
  });

  let chat: BenchAllReport['chat'] = null;
  if (options.chatMembers > 0) {
    log(`\n== chat: ${options.chatMembers} members, ${options.chatRate} messages/s, uws ==`);
    try {
      const report = await runChatBench(
        {
          ...CHAT_DEFAULTS,
          members: options.chatMembers,
          senders: Math.min(CHAT_DEFAULTS.senders, options.chatMembers),
          rate: options.chatRate,
          seconds: options.seconds,
          warmupSeconds: options.warmupSeconds,
          notifications: options.notifications,
          notifyWarmup: Math.min(CHAT_DEFAULTS.notifyWarmup, options.notifications),
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
  const { out: _out, svg: _svg, profileDir: _profileDir, ...shown } = options;
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
  const header = ['displays', 'server', 'p50', 'p95', 'p99', 'max (ms)', 'msgs/s', 'hub CPU % (per node)', 'hub RSS MB', 'gen. CPU %', 'delivered', 'errors'];
  const body: string[][] = [];
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
        s.hubs.map((h) => cell(h.cpu_percent)).join(' / ') || '–',
        s.hubs.map((h) => cell(h.peak_rss_mb)).join(' / ') || '–',
        cell(s.generator.cpu_percent),
        `${s.deliveries_received}/${s.deliveries_expected}`,
        s.errors.length === 0 ? 'none' : String(s.errors.length),
      ]);
    }
    if (servers.length > 1) body.push(['', 'node/uws p99', '', '', step.p99_ratio_node_over_uws === null ? '–' : `${step.p99_ratio_node_over_uws.toFixed(2)}×`, '', '', '', '', '', '', '']);
  }
  const lines = [`display fan-out: ${report.fanout.rate_per_second} calls/s for ${report.fanout.seconds} s per step, 2 hub nodes`, ...renderTable(header, body)];
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
  const t = report.target;
  lines.push(
    '',
    `target: call→display p99 < ${t.display_p99_ms} ms at ${report.fanout.steps.at(-1)?.clients ?? 0} displays: uws ${t.largest_step_met.uws === null ? 'not measured' : t.largest_step_met.uws ? 'met' : 'MISSED'}, node ${t.largest_step_met.node === null ? 'not measured' : t.largest_step_met.node ? 'met' : 'MISSED'}`,
    `machine: ${report.machine.cpus} × ${report.machine.model}, Node ${report.machine.node}, ${report.machine.os}`,
  );
  return lines.join('\n');
}

export function parseBenchAllOptions(argv: string[]): BenchAllOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      steps: { type: 'string' },
      servers: { type: 'string' },
      rate: { type: 'string' },
      seconds: { type: 'string' },
      warmup: { type: 'string' },
      workers: { type: 'string' },
      ramp: { type: 'string' },
      settle: { type: 'string' },
      'chat-members': { type: 'string' },
      'chat-rate': { type: 'string' },
      'no-chat': { type: 'boolean' },
      notifications: { type: 'string' },
      out: { type: 'string' },
      'no-out': { type: 'boolean' },
      svg: { type: 'string' },
      profile: { type: 'string' },
      target: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(
      [
        'npm run bench -- [options]',
        '  --steps LIST        display counts of the fan-out ramp (default 500,1000,2000; at most 20,000 each)',
        '  --servers LIST      server kinds at each step (default uws,node: node is the baseline)',
        '  --rate R            call-next per second at each step (default 10)',
        '  --seconds S         measured seconds per step and of chat (default 5)',
        '  --warmup S          unmeasured seconds first (default 1)',
        '  --workers N         generator processes for the displays (default 4)',
        '  --ramp N            handshakes in flight per generator process (default 16)',
        '  --settle S          wait for late deliveries after the last call (default 5)',
        '  --chat-members N    chat channel members (default 500); --no-chat: no chat scenario',
        '  --chat-rate R       chat messages per second (default 20)',
        '  --notifications N   SMS reminders measured after chat (default 100; 0: none)',
        '  --out FILE          JSON report (default load-tests/results/bench.json); --no-out: none',
        '  --svg FILE          chart (default bench-latency.svg next to --out)',
        '  --profile DIR       --cpu-prof every hub node and generator process into DIR',
        '  --target MS         call→display p99 budget (default 100)',
        '',
      ].join('\n'),
    );
    process.exit(0);
  }
  const num = numberOption;
  const steps = (values.steps ?? DEFAULTS.steps.join(',')).split(',').map((s) => s.trim());
  const stepCounts = steps.map((s) => Math.round(num('steps', s, 0, 1, 20_000)));
  if (stepCounts.length === 0 || stepCounts.length > 12) throw new Error('--steps takes 1 to 12 display counts');
  const servers = (values.servers ?? DEFAULTS.servers.join(',')).split(',').map((s) => s.trim());
  for (const s of servers) if (s !== 'uws' && s !== 'node') throw new Error(`--servers takes uws and/or node (got "${s}")`);
  const out = values['no-out'] ? null : values.out ? resolve(values.out) : DEFAULTS.out;
  const options: BenchAllOptions = {
    steps: [...new Set(stepCounts)].sort((a, b) => a - b),
    servers: [...new Set(servers)] as ServerKind[],
    rate: num('rate', values.rate, DEFAULTS.rate, 0.1, 200),
    seconds: num('seconds', values.seconds, DEFAULTS.seconds, 0.5, 60),
    warmupSeconds: num('warmup', values.warmup, DEFAULTS.warmupSeconds, 0, 30),
    workers: Math.round(num('workers', values.workers, DEFAULTS.workers, 1, 16)),
    rampConcurrency: Math.round(num('ramp', values.ramp, DEFAULTS.rampConcurrency, 1, 500)),
    settleSeconds: num('settle', values.settle, DEFAULTS.settleSeconds, 0, 60),
    chatMembers: values['no-chat'] ? 0 : Math.round(num('chat-members', values['chat-members'], DEFAULTS.chatMembers, 2, 10_000)),
    chatRate: num('chat-rate', values['chat-rate'], DEFAULTS.chatRate, 0.1, 1000),
    notifications: Math.round(num('notifications', values.notifications, DEFAULTS.notifications, 0, 10_000)),
    out,
    svg: values.svg ? resolve(values.svg) : out ? join(dirname(out), 'bench-latency.svg') : null,
    profileDir: values.profile ? resolve(values.profile) : null,
    targetP99Ms: num('target', values.target, DEFAULTS.targetP99Ms, 1, 60_000),
  };
  if (options.rate * options.seconds < 1) throw new Error('--rate × --seconds must make at least one call');
  return options;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  void runBenchCli({ name: 'bench', parse: parseBenchAllOptions, run: runBenchAll, format: formatBenchAll });
}
