/**
 * `npm run bench:sfu`: what the media-server costs per room and per
 * forwarded stream, on each SFU engine in the same run (`--engines`:
 * mediasoup, werift).
 *
 * A private redis-server, one media-server process per engine
 * (`MEDIA_ENGINE`), and rooms of `--size` (3) lightweight publishers in
 * `--generators` load-generator processes (sfu-peer-worker.ts) that join over
 * the real signalling, send pre-encoded VP8 + Opus (made with ffmpeg:
 * `--video` WxH at `--fps` and `--video-kbps`, Opus at 32 kbit/s) in real
 * time, and receive everyone else — so browsers do not eat the machine. On
 * werift they are werift peers answering the server's offers, with one camera
 * stream; on mediasoup they speak its client-driven signalling and send the
 * camera as three simulcast layers (¼, ½ and full size; 10%, 25% and 65% of
 * `--video-kbps`), as Chromium does (test-kit/src/mediasoup-node-peer.ts). For each step
 * of `--rooms` (1,10: one room, then ten) the rooms are filled, left to
 * settle for `--warmup` seconds, then measured for `--seconds`: CPU of the
 * media-server's Node process and its mediasoup-worker processes together,
 * per room and per forwarded stream (marginal between steps too), memory,
 * bitrates, join → first keyframe of each other publisher, packets lost on
 * the way to subscribers, whether every stream kept flowing, and the
 * machine's load average (figures from a busy machine are not release
 * figures).
 *
 * Writes load-tests/results/sfu.json (`summary`: one row per engine, server
 * and step: engine, rooms, cpu_percent_per_room, first_frame_p95_ms,
 * forwarded_streams, lost_packets, load_average).
 *
 *   npm run bench:sfu
 *   npm run bench:sfu -- --engines mediasoup --rooms 1,2,4 --seconds 30
 *   npm run bench:sfu -- --profile var/profiles      (--cpu-prof on the media-server)
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { RoomTokenIssuer } from '@clinic-hub/platform/token-issuer';
import { freePort, startRedisServer } from '@clinic-hub/platform/redis-server';
import { benchCommandLine, reportedOptions, runBenchCli } from './bench-cli.js';
import { REPO_ROOT, WATCHDOG, spawnHubScript, type HubChild } from './hub-process.js';
import { ProcessWatcher, memoryMb } from './proc-stats.js';
import { cell, figures, machine, machineLine, renderTable, round, type LatencyFigures, type MachineInfo } from './report.js';
import { cpuPercent, machineLoad, type MachineLoad } from './resource-figures.js';
import type { Resources } from './resources.js';
import type { ParentMessage, SfuJoinResult, SfuPeerSpec, SfuStreamCount, WorkerMessage } from './sfu-peer-worker.js';
import { summarize } from './stats.js';
import { sleep } from './time.js';

const run = promisify(execFile);
const TOKEN_SECRET = 'bench-sfu-media-token-secret-0123456789abcdef';
/** DESIGN.md: a 3-party call with naive forwarding, Chromium publishers, these machines. */
const DESIGN_BASELINE_3_PARTY_CPU_PERCENT = 16;

const ENGINES = ['mediasoup', 'werift'] as const;
type Engine = (typeof ENGINES)[number];
const SERVER_KINDS = ['sfu', 'media'] as const;
type ServerKind = (typeof SERVER_KINDS)[number];
const SERVER_SCRIPTS: Record<ServerKind, string> = {
  sfu: 'load-tests/harness/sfu-server.ts',
  media: 'media-server/src/main.ts',
};
const SERVER_TEXT: Record<ServerKind, string> = {
  sfu: 'SFU only (forwarding)',
  media: 'npm run media (SFU + audio tap decoding every microphone)',
};

const SFU_OPTIONS = benchCommandLine({
  name: 'bench:sfu',
  report: 'load-tests/results/sfu.json',
  profiles: 'the media-server',
  options: {
    engines: { kind: 'choice', list: true, choices: ENGINES, default: ENGINES, help: 'SFU engines to measure, one media-server each (MEDIA_ENGINE)' },
    servers: { kind: 'choice', list: true, choices: SERVER_KINDS, default: ['sfu'], help: 'sfu is the SFU alone (forwarding), media is npm run media with its audio tap' },
    rooms: { kind: 'integer', list: true, default: [1, 10], min: 1, max: 100, help: 'rooms open at each measured step, ascending' },
    size: { kind: 'integer', default: 3, min: 2, max: 6, help: 'publishers per room' },
    seconds: { kind: 'number', arg: 'S', default: 20, min: 1, max: 600, help: 'measured window per step' },
    warmup: { kind: 'number', arg: 'S', default: 5, min: 0, max: 120, help: 'seconds to settle after filling the rooms' },
    generators: { kind: 'integer', default: 2, min: 1, max: 8, help: 'load-generator processes' },
    video: { kind: 'string', arg: 'WxH', default: '640x360', help: 'publisher camera size' },
    fps: { kind: 'number', default: 30, min: 5, max: 60, help: 'publisher camera frames per second' },
    videoKbps: { kind: 'number', default: 600, min: 50, max: 5000, help: 'publisher video bitrate in kbit/s' },
    /** Extra node flags for the media-server, to try runtime settings. */
    serverNodeArgs: { kind: 'string', arg: 'FLAGS', default: '', help: 'node flags for the media-server (e.g. --server-node-args=--max-semi-space-size=32)' },
  },
  finish({ engines, servers, rooms, video, fps, videoKbps, serverNodeArgs, ...options }) {
    if (rooms.some((r, i) => i > 0 && r <= rooms[i - 1]!)) throw new Error('--rooms must be ascending (e.g. 1,3)');
    const dimensions = /^(\d+)x(\d+)$/.exec(video);
    if (!dimensions) throw new Error(`--video must be WIDTHxHEIGHT (got "${video}")`);
    return {
      engines,
      servers,
      rooms,
      ...options,
      video: { width: Number(dimensions[1]), height: Number(dimensions[2]), fps, kbps: videoKbps },
      serverNodeArgs: serverNodeArgs.split(/\s+/).filter((a) => a !== ''),
    };
  },
});

type SfuBenchOptions = typeof SFU_OPTIONS.defaults;

export interface SfuStepReport {
  rooms: number;
  participants: number;
  /** Tracks the media-server receives (audio + video per participant). */
  incoming_streams: number;
  /** Tracks it sends (each incoming one to everyone else in its room). */
  forwarded_streams: number;
  /** The media-server's Node process and its mediasoup-worker processes together (and each worker's share). */
  media_server: { cpu_percent: number | null; rss_mb: number | null; node_cpu_percent: number | null; worker_cpu_percent: number[] };
  per_room: { cpu_percent: number | null; rss_mb: number | null };
  per_forwarded_stream: { cpu_percent: number | null };
  /** Compared with the previous step: what each added room and stream cost. */
  marginal: { per_room_cpu_percent: number | null; per_forwarded_stream_cpu_percent: number | null } | null;
  forwarded_streams_per_core: number | null;
  bitrate_kbps: { in: number | null; out: number | null };
  packets_per_second: { in: number | null; out: number | null };
  keyframe_requests: { from_subscribers: number; to_publishers: number; video_packets_held_back: number };
  /**
   * For the rooms this step added: from the moment both a subscriber and a
   * publisher had started joining, to the first keyframe of that publisher's
   * camera at that subscriber.
   */
  first_frame: LatencyFigures;
  delivery: { streams_expected: number; streams_flowing: number; min_video_packets_per_second: number | null; min_audio_packets_per_second: number | null };
  /** Packets that never reached a subscriber during the window (gaps in sequence numbers, all forwarded streams). */
  lost_packets: number;
  generator: { processes: number; cpu_percent: number | null; peak_rss_mb: number | null };
  load: MachineLoad & { load_average: number[] };
}

export interface SfuServerRun {
  server: ServerKind;
  what: string;
  engine: Engine;
  media_server: { pid: number; idle_rss_mb: number | null };
  steps: SfuStepReport[];
}

export interface SfuBenchReport {
  benchmark: 'sfu';
  machine: MachineInfo;
  date: string;
  options: Omit<SfuBenchOptions, 'out' | 'profileDir'>;
  /** One row per engine, server and step: the figures issue #13 asks for. */
  summary: SfuSummaryRow[];
  runs: SfuServerRun[];
  design_baseline: { three_party_cpu_percent: number; aim_percent: number };
  errors: string[];
  ok: boolean;
}

export interface SfuSummaryRow {
  engine: Engine;
  server: ServerKind;
  rooms: number;
  cpu_percent_per_room: number | null;
  /** Of the whole media-server's CPU (% of a core, all rooms): its Node process, and its mediasoup-worker processes together. */
  node_cpu_percent: number | null;
  workers_cpu_percent: number | null;
  first_frame_p95_ms: number | null;
  forwarded_streams: number;
  lost_packets: number;
  /** The machine's 1-minute load average when the step was measured (2 cores: above 2, others were waiting). */
  load_average: number | null;
}

interface Generator {
  child: ChildProcess;
  pid: number;
  request<T extends WorkerMessage['type']>(message: ParentMessage, expect: T): Promise<Extract<WorkerMessage, { type: T }>>;
  stop(): Promise<void>;
}

/** A load-generator process; messages are answered in order, one outstanding request at a time. */
async function startGenerator(index: number, env: Record<string, string>): Promise<Generator> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--import', WATCHDOG, resolve(import.meta.dirname, 'sfu-peer-worker.ts')], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    detached: true,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const inbox: WorkerMessage[] = [];
  const waiters: (() => void)[] = [];
  child.on('message', (message: WorkerMessage) => {
    inbox.push(message);
    waiters.splice(0).forEach((wake) => wake());
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const next = async <T extends WorkerMessage['type']>(type: T, timeoutMs = 120_000): Promise<Extract<WorkerMessage, { type: T }>> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = inbox.findIndex((m) => m.type === type || m.type === 'error');
      if (i >= 0) {
        const [message] = inbox.splice(i, 1);
        if (message!.type === 'error') throw new Error(`generator ${index}: ${message!.message}`);
        return message as Extract<WorkerMessage, { type: T }>;
      }
      if (child.exitCode !== null) throw new Error(`generator ${index} exited (${child.exitCode})`);
      if (Date.now() > deadline) throw new Error(`generator ${index}: no ${type} within ${timeoutMs / 1000} s`);
      await Promise.race([new Promise<void>((r) => waiters.push(r)), sleep(500)]);
    }
  };
  await next('ready', 30_000);
  return {
    child,
    pid: child.pid!,
    async request(message, expect) {
      child.send(message);
      return next(expect);
    },
    async stop() {
      if (child.exitCode !== null) return;
      child.send({ type: 'stop' } satisfies ParentMessage);
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

interface BenchMedia {
  /** The camera as one stream at the full rate (werift). */
  videoFile: string;
  /** The camera as simulcast layers, lowest first (mediasoup). */
  layerFiles: string[];
  audioFile: string;
}

/** What Chromium sends a 640×360 camera as: ¼, ½ and full size, with about 10%, 25% and 65% of the bitrate. */
const SIMULCAST_LAYERS = [
  { scale: 4, share: 0.1 },
  { scale: 2, share: 0.25 },
  { scale: 1, share: 0.65 },
];

/**
 * Camera-like VP8 in IVF (a keyframe every 3 s, as Chrome sends about, at the
 * same frames in every layer) and Opus in Ogg, looped by the publishers.
 */
async function makeMedia(dir: string, video: SfuBenchOptions['video']): Promise<BenchMedia> {
  const seconds = '12';
  const vp8 = async (file: string, width: number, height: number, kbps: number) => {
    await run('ffmpeg', [
      '-hide_banner', '-loglevel', 'error', '-y',
      '-f', 'lavfi', '-i', `testsrc2=size=${width}x${height}:rate=${video.fps}:duration=${seconds}`,
      '-c:v', 'libvpx', '-b:v', `${kbps}k`, '-minrate', `${kbps}k`, '-maxrate', `${kbps}k`,
      '-g', String(video.fps * 3), '-keyint_min', String(video.fps * 3), '-deadline', 'realtime', '-cpu-used', '8', '-error-resilient', '1', '-f', 'ivf', file,
    ]);
    return file;
  };
  const even = (n: number) => Math.max(2, Math.round(n / 2) * 2);
  const videoFile = await vp8(join(dir, 'camera.ivf'), video.width, video.height, video.kbps);
  const layerFiles: string[] = [];
  for (const [i, layer] of SIMULCAST_LAYERS.entries()) {
    layerFiles.push(await vp8(join(dir, `camera-layer${i}.ivf`), even(video.width / layer.scale), even(video.height / layer.scale), Math.max(20, Math.round(video.kbps * layer.share))));
  }
  const audioFile = join(dir, 'voice.ogg');
  await run('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-y',
    '-f', 'lavfi', '-i', `sine=frequency=330:sample_rate=48000:duration=${seconds}`,
    '-ac', '1', '-c:a', 'libopus', '-b:a', '32k', '-frame_duration', '20', '-application', 'voip', audioFile,
  ]);
  return { videoFile, layerFiles, audioFile };
}

/** The processes a media-server started (its mediasoup-worker processes): their parent is it. */
function childPids(parent: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // After the command name in parentheses: state, then the parent's pid.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === parent) children.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return children;
}

async function scrape(url: string): Promise<Map<string, number>> {
  const values = new Map<string, number>();
  const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  for (const line of text.split('\n')) {
    const match = /^(clinic_media_[a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!match) continue;
    const direction = /direction="([^"]+)"/.exec(match[2] ?? '')?.[1];
    values.set(direction ? `${match[1]}:${direction}` : match[1]!, Number(match[3]));
  }
  return values;
}

async function runSfu(options: SfuBenchOptions, log: (line: string) => void, resources: Resources): Promise<SfuBenchReport> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-sfu-'));
  resources.add('temporary files', async () => rmSync(dir, { recursive: true, force: true }));
  const errors: string[] = [];

  const files = await makeMedia(dir, options.video);
  log(`media: VP8 ${options.video.width}x${options.video.height}@${options.video.fps} ${options.video.kbps} kbit/s (mediasoup: as three simulcast layers) + Opus 32 kbit/s (ffmpeg, looped)`);

  const redis = await startRedisServer({ dir: join(dir, 'redis'), port: await freePort() });
  resources.add('redis-server', () => redis.stop());
  log(`redis-server pid ${redis.process.pid} on ${redis.url}`);

  const runs: SfuServerRun[] = [];
  for (const engine of options.engines) {
    for (const kind of options.servers) {
      const measured = await measureServer(engine, kind, options, files, redis, errors, log, resources);
      if (measured) runs.push(measured);
    }
  }
  const summary: SfuSummaryRow[] = runs.flatMap((r) =>
    r.steps.map((step) => ({
      engine: r.engine,
      server: r.server,
      rooms: step.rooms,
      cpu_percent_per_room: step.per_room.cpu_percent,
      node_cpu_percent: step.media_server.node_cpu_percent,
      workers_cpu_percent: round(step.media_server.worker_cpu_percent.reduce((a, b) => a + b, 0)),
      first_frame_p95_ms: step.first_frame.p95_ms,
      forwarded_streams: step.forwarded_streams,
      lost_packets: step.lost_packets,
      load_average: round(step.load.load_average[0] ?? NaN, 2),
    })),
  );
  return {
    benchmark: 'sfu',
    machine: machine(),
    date: new Date().toISOString(),
    options: reportedOptions(options),
    summary,
    runs,
    design_baseline: { three_party_cpu_percent: DESIGN_BASELINE_3_PARTY_CPU_PERCENT, aim_percent: DESIGN_BASELINE_3_PARTY_CPU_PERCENT / 2 },
    errors,
    ok: errors.length === 0,
  };
}

/** One server process, fresh generators, every step of rooms; everything stopped afterwards. Null when the engine cannot run here. */
async function measureServer(
  engine: Engine,
  kind: ServerKind,
  options: SfuBenchOptions,
  { videoFile, layerFiles, audioFile }: BenchMedia,
  redis: { url: string; process: ChildProcess },
  errors: string[],
  log: (line: string) => void,
  resources: Resources,
): Promise<SfuServerRun | null> {
  log('');
  log(`== ${engine}: ${SERVER_TEXT[kind]} ==`);
  const port = await freePort();
  const nodeArgs: string[] = [...options.serverNodeArgs];
  if (options.profileDir) {
    const profileDir = resolve(options.profileDir, `media-server-${kind}`);
    mkdirSync(profileDir, { recursive: true });
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${profileDir}`);
  }
  const server: HubChild = spawnHubScript(
    SERVER_SCRIPTS[kind],
    {
      MEDIA_PORT: String(port),
      MEDIA_HOST: '127.0.0.1',
      MEDIA_NODE_ID: 'bench-media',
      MEDIA_ENGINE: engine,
      REDIS_URL: redis.url,
      MEDIA_TOKEN_SECRET: TOKEN_SECRET,
      MEDIA_UDP_PORT_MIN: '47000',
      MEDIA_UDP_PORT_MAX: '47999',
      MEDIA_DRAIN_GRACE_MS: '0',
      // A room's publishers all join from one process within a second or two.
      MEDIA_SIGNAL_RATE_PER_SECOND: '1000',
      LOG_LEVEL: 'warn',
    },
    nodeArgs,
  );
  const stopServer = resources.add('media-server', () => server.stop());
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  let running = 'unknown';
  for (;;) {
    if (server.process.exitCode !== null) throw new Error(`media-server exited: ${server.logs()}`);
    const health = await fetch(`${url}/healthz`).then((r) => (r.ok ? (r.json() as Promise<{ engine: string }>) : null), () => null);
    if (health) {
      running = health.engine;
      break;
    }
    if (Date.now() > deadline) throw new Error(`media-server not healthy in 30 s: ${server.logs()}`);
    await sleep(100);
  }
  if (running !== engine) {
    errors.push(`${engine}: the media-server ran ${running} when asked for ${engine} (MEDIA_ENGINE): not measured`);
    log(`media-server runs ${running}, not ${engine}: not measured`);
    await stopServer();
    return null;
  }
  await sleep(1000);
  const workers = childPids(server.pid);
  const rssOf = (pids: number[]) => pids.reduce((sum, pid) => sum + (memoryMb(pid)?.rss ?? 0), 0);
  const idleRss = rssOf([server.pid, ...workers]);
  log(`media-server pid ${server.pid} at ${url} (engine ${engine}${workers.length > 0 ? `, worker pids ${workers.join(', ')}` : ''}), idle RSS ${cell(round(idleRss))} MB`);

  const generators: Generator[] = [];
  const stopGenerators: (() => Promise<void>)[] = [];
  for (let i = 0; i < options.generators; i++) {
    const generator = await startGenerator(i, {
      SFU_MEDIA_URL: url,
      SFU_ENGINE: engine,
      SFU_VIDEO_FILE: engine === 'mediasoup' ? layerFiles.join(',') : videoFile,
      SFU_AUDIO_FILE: audioFile,
    });
    generators.push(generator);
    stopGenerators.push(resources.add(`generator ${i}`, () => generator.stop()));
  }
  log(`load generators: ${generators.length} processes, pids ${generators.map((g) => g.pid).join(', ')}`);

  const watcher = new ProcessWatcher([server.pid, ...workers, ...generators.map((g) => g.pid)]);
  const tokens = new RoomTokenIssuer(TOKEN_SECRET);
  const roomGenerator = new Map<string, Generator>();
  const joinStartedAt = new Map<string, number>();
  const steps: SfuStepReport[] = [];
  let roomsOpen = 0;
  const gatherCounts = async (): Promise<SfuStreamCount[]> => {
    const replies = await Promise.all(generators.map((g) => g.request({ type: 'counts' }, 'counts')));
    for (const reply of replies) errors.push(...reply.answerErrors.map((e) => `answer: ${e}`));
    return replies.flatMap((r) => r.streams);
  };

  for (const target of options.rooms) {
    // Fill up to `target` rooms: each room's publishers in one generator, rooms spread over the generators.
    const newRooms: string[] = [];
    const joins: Promise<SfuJoinResult[]>[] = [];
    const byGenerator = new Map<Generator, SfuPeerSpec[]>();
    for (let r = roomsOpen; r < target; r++) {
      const room = `bench-room-${String(r).padStart(3, '0')}`;
      newRooms.push(room);
      const generator = generators[r % generators.length]!;
      roomGenerator.set(room, generator);
      const specs = byGenerator.get(generator) ?? [];
      for (let p = 0; p < options.size; p++) {
        const sub = `${room}-p${p}`;
        specs.push({ sub, room, token: tokens.issue({ sub, clinic: 'bench', consult: room, part: p === 0 ? 'doctor' : 'patient', name: `Bench ${p}` }, 3600).token });
      }
      byGenerator.set(generator, specs);
    }
    for (const [generator, specs] of byGenerator) joins.push(generator.request({ type: 'join', peers: specs }, 'joined').then((m) => m.results));
    const joined = (await Promise.all(joins)).flat();
    for (const result of joined) {
      if (result.error) errors.push(`${result.sub}: ${result.error}`);
      joinStartedAt.set(result.sub, result.startedAt);
    }
    roomsOpen = target;
    log(`[${target} room${target === 1 ? '' : 's'}] ${joined.filter((j) => !j.error).length}/${joined.length} publishers joined; settling ${options.warmup} s`);
    await sleep(options.warmup * 1000);

    const before = await gatherCounts();
    const metricsBefore = await scrape(url);
    const from = watcher.mark();
    await sleep(options.seconds * 1000);
    const to = watcher.mark();
    const metricsAfter = await scrape(url);
    const after = await gatherCounts();
    const windowSeconds = (to.at - from.at) / 1000;

    const participants = target * options.size;
    const incoming = participants * 2;
    const forwarded = target * options.size * (options.size - 1) * 2;
    const key = (s: SfuStreamCount) => `${s.sub}<${s.from}:${s.kind}`;
    const nodeCpu = cpuPercent(server.pid, from, to);
    const workerCpu = workers.map((pid) => cpuPercent(pid, from, to) ?? 0);
    const cpu = nodeCpu === null ? null : round(nodeCpu + workerCpu.reduce((a, b) => a + b, 0));
    const rss = rssOf([server.pid, ...workers]);
    const lostAt = (counts: SfuStreamCount[]) => new Map(counts.map((c) => [key(c), c.lost]));
    const lostBefore = lostAt(before);
    const lost = after.reduce((sum, c) => sum + Math.max(0, c.lost - (lostBefore.get(key(c)) ?? 0)), 0);
    const delta = (name: string) => (metricsAfter.get(name) ?? NaN) - (metricsBefore.get(name) ?? NaN);
    const startCounts = new Map(before.map((s) => [key(s), s.packets]));
    const rates = { video: [] as number[], audio: [] as number[] };
    let flowing = 0;
    for (const stream of after) {
      const packets = stream.packets - (startCounts.get(key(stream)) ?? 0);
      rates[stream.kind].push(packets / windowSeconds);
      if (packets > 0) flowing += 1;
    }
    const firstFrames = after
      .filter((s) => s.kind === 'video' && newRooms.includes(s.room) && s.firstAt !== null)
      .map((s) => s.firstAt! - Math.max(joinStartedAt.get(s.sub) ?? 0, joinStartedAt.get(s.from) ?? 0));
    const expectedFirst = newRooms.length * options.size * (options.size - 1);
    if (firstFrames.length < expectedFirst) errors.push(`${engine} ${kind}, ${target} rooms: ${expectedFirst - firstFrames.length} of ${expectedFirst} camera streams never delivered a keyframe`);
    if (flowing < forwarded) errors.push(`${engine} ${kind}, ${target} rooms: ${forwarded - flowing} of ${forwarded} forwarded streams carried nothing in the window`);
    const previous = steps[steps.length - 1];
    const generatorCpu = generators.map((g) => cpuPercent(g.pid, from, to) ?? 0).reduce((a, b) => a + b, 0);
    const step: SfuStepReport = {
      rooms: target,
      participants,
      incoming_streams: incoming,
      forwarded_streams: forwarded,
      media_server: { cpu_percent: cpu, rss_mb: round(rss), node_cpu_percent: nodeCpu, worker_cpu_percent: workerCpu },
      per_room: { cpu_percent: round((cpu ?? NaN) / target, 2), rss_mb: round((rss - idleRss) / target, 2) },
      per_forwarded_stream: { cpu_percent: round((cpu ?? NaN) / forwarded, 2) },
      marginal:
        previous && previous.media_server.cpu_percent !== null && cpu !== null
          ? {
              per_room_cpu_percent: round((cpu - previous.media_server.cpu_percent) / (target - previous.rooms), 2),
              per_forwarded_stream_cpu_percent: round((cpu - previous.media_server.cpu_percent) / (forwarded - previous.forwarded_streams), 3),
            }
          : null,
      forwarded_streams_per_core: round(forwarded / ((cpu ?? NaN) / 100), 0),
      bitrate_kbps: {
        in: round((delta('clinic_media_rtp_bytes_total:in') * 8) / 1000 / windowSeconds, 0),
        out: round((delta('clinic_media_rtp_bytes_total:out') * 8) / 1000 / windowSeconds, 0),
      },
      packets_per_second: {
        in: round(delta('clinic_media_rtp_packets_total:in') / windowSeconds, 0),
        out: round(delta('clinic_media_rtp_packets_total:out') / windowSeconds, 0),
      },
      keyframe_requests: {
        from_subscribers: delta('clinic_media_keyframe_requests_total:received'),
        to_publishers: delta('clinic_media_keyframe_requests_total:sent'),
        video_packets_held_back: delta('clinic_media_video_packets_held_back_total'),
      },
      first_frame: figures(summarize(firstFrames), 0),
      delivery: {
        streams_expected: forwarded,
        streams_flowing: flowing,
        min_video_packets_per_second: round(Math.min(...rates.video), 1),
        min_audio_packets_per_second: round(Math.min(...rates.audio), 1),
      },
      lost_packets: lost,
      generator: { processes: generators.length, cpu_percent: round(generatorCpu), peak_rss_mb: round(generators.reduce((a, g) => a + watcher.peakRssMb(g.pid), 0)) },
      load: { ...machineLoad(from, to, [server.pid, ...workers, process.pid, redis.process.pid!, ...generators.map((g) => g.pid)]), load_average: loadavg().map((l) => round(l, 2) ?? 0) },
    };
    steps.push(step);
    log(
      `[${target} room${target === 1 ? '' : 's'}] media-server ${cell(step.media_server.cpu_percent)}% of a core (${cell(step.per_room.cpu_percent)}% per room${workers.length > 0 ? `; Node ${cell(nodeCpu)}%, workers ${workerCpu.map((w) => cell(round(w))).join(' + ')}%` : ''}), ` +
        `${forwarded} forwarded streams (${cell(step.per_forwarded_stream.cpu_percent)}% each), first frame p50 / p95 ${cell(step.first_frame.p50_ms)} / ${cell(step.first_frame.p95_ms)} ms, ${lost} packets lost; generators ${cell(step.generator.cpu_percent)}%; load average ${step.load.load_average.join(' ')}`,
    );
  }

  await Promise.all(stopGenerators.map((stop) => stop()));
  await stopServer();
  return { server: kind, what: SERVER_TEXT[kind], engine, media_server: { pid: server.pid, idle_rss_mb: round(idleRss) }, steps };
}

function format(report: SfuBenchReport): string {
  const header = ['engine', 'server', 'rooms', 'people', 'fwd streams', 'CPU %', 'Node / workers CPU %', 'CPU %/room', 'CPU %/fwd stream', 'marginal %/room', 'fwd streams/core', 'RSS MB', 'RSS MB/room', 'in / out kbit/s', 'first frame p50 / p95 ms', 'lost packets', 'generators CPU %', 'load avg'];
  const body = report.runs.flatMap((r) => r.steps.map((s) => [r.engine, r.server, String(s.rooms),
    String(s.participants),
    String(s.forwarded_streams),
    cell(s.media_server.cpu_percent),
    `${cell(s.media_server.node_cpu_percent)} / ${s.media_server.worker_cpu_percent.length > 0 ? cell(round(s.media_server.worker_cpu_percent.reduce((a, b) => a + b, 0))) : '–'}`,
    cell(s.per_room.cpu_percent),
    cell(s.per_forwarded_stream.cpu_percent),
    cell(s.marginal?.per_room_cpu_percent ?? null),
    cell(s.forwarded_streams_per_core),
    cell(s.media_server.rss_mb),
    cell(s.per_room.rss_mb),
    `${cell(s.bitrate_kbps.in)} / ${cell(s.bitrate_kbps.out)}`,
    `${cell(s.first_frame.p50_ms)} / ${cell(s.first_frame.p95_ms)}`,
    String(s.lost_packets),
    cell(s.generator.cpu_percent),
    cell(s.load.load_average[0] ?? null),
  ]));
  const ones = report.runs.map((r) => ({ r, one: r.steps.find((s) => s.rooms === 1) })).filter((x) => x.one);
  const loads = report.runs.flatMap((r) => r.steps.map((s) => s.load.load_average[0] ?? 0));
  return [
    ...renderTable(header, body),
    '',
    ...report.runs.map((r) => `${r.engine} ${r.server}: ${r.what}`),
    ...ones.map(({ r, one }) => `${r.engine} ${r.server}, one ${report.options.size}-party room: ${cell(one!.media_server.cpu_percent)}% of a core (DESIGN.md's naive forwarding: ~${report.design_baseline.three_party_cpu_percent}%, aim ${report.design_baseline.aim_percent}%; issue #13's aim for mediasoup: 3%)`),
    `${machineLine(report.machine)}; other programs used ${report.runs.flatMap((r) => r.steps.map((s) => cell(s.load.other_cpu_percent))).join(' / ')}% of a core during the windows; load average ${loads.map((l) => cell(l)).join(' / ')}`,
    ...(Math.max(0, ...loads) > report.machine.cpus
      ? [`the machine was busy (load average above its ${report.machine.cpus} cores): these are not release figures — measure on a quiet machine for those`]
      : []),
    report.errors.length > 0 ? `errors: ${report.errors.slice(0, 5).join('; ')}${report.errors.length > 5 ? ` … (${report.errors.length})` : ''}` : 'every forwarded stream delivered throughout',
  ].join('\n');
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  void runBenchCli({ commandLine: SFU_OPTIONS, run: runSfu, format });
}
