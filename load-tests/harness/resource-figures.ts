/** What every benchmark reports about the processes it ran: CPU and memory over its measured window. */
import { cpus } from 'node:os';
import { ProcessWatcher } from './proc-stats.js';
import { round } from './report.js';

/** The hub's servers: uWebSockets.js, and Node HTTP + ws (the baseline). */
export const SERVER_KINDS = ['uws', 'node'] as const;
export type ServerKind = (typeof SERVER_KINDS)[number];
type Mark = ReturnType<ProcessWatcher['mark']>;

export interface HubFigures {
  node: string;
  server: ServerKind;
  pid: number;
  cpu_percent: number | null;
  peak_rss_mb: number | null;
}

export interface MachineLoad {
  /** All CPUs of the machine, busy share over the measured window (100 = every core busy). */
  machine_busy_percent: number | null;
  /**
   * CPU used during the window by everything that is not this benchmark (other
   * programs, the kernel's own threads), in % of one core: high values mean the
   * figures were taken on a busy machine.
   */
  other_cpu_percent: number | null;
}

export interface ResourceFigures extends MachineLoad {
  hubs: HubFigures[];
  generator: { processes: number; cpu_percent: number | null; peak_rss_mb: number | null; per_process_cpu_percent: (number | null)[] };
  coordinator: { cpu_percent: number | null; peak_rss_mb: number | null };
  /** Commands and AOF bytes over the measured window: what the hubs ask of Redis besides the benchmark's own work shows here. */
  redis: {
    cpu_percent: number | null;
    peak_rss_mb: number | null;
    commands_per_second: number | null;
    aof_bytes_per_second: number | null;
    /**
     * The other redis-server processes' CPU: with Sentinel (`--redis sentinel`) the replica's, which applies the
     * master's replication stream; on a Cluster (`--redis cluster`) the other 5 nodes' (2 masters, 3 replicas);
     * null with one Redis.
     */
    replica_cpu_percent: number | null;
    /** Every redis-server of the run (`cpu_percent` + `replica_cpu_percent`): what "with Redis" figures count. */
    total_cpu_percent: number | null;
  };
}

/** CPU% of one process between two marks, rounded for the report. */
export const cpuPercent = (pid: number, from: Mark, to: Mark) => round(ProcessWatcher.cpuPercent(pid, from, to));

/** How busy the machine was, and how much of that was not the benchmark's own processes (`ownPids`). */
export function machineLoad(from: Mark, to: Mark, ownPids: number[]): MachineLoad {
  const busy = ProcessWatcher.machineBusyPercent(from, to);
  const own = ownPids.reduce((sum, pid) => sum + ProcessWatcher.cpuPercent(pid, from, to), 0);
  return { machine_busy_percent: round(busy), other_cpu_percent: round(Math.max(0, busy * cpus().length - own)) };
}

/** Hubs, load generator, coordinator (this process) and Redis over the window between two marks. */
export function resourceFigures(input: {
  watcher: ProcessWatcher;
  from: Mark;
  to: Mark;
  hubs: { nodeId: string; server: ServerKind; pid: number }[];
  generatorPids: number[];
  redisPid: number;
  /** The other redis-server processes' (Sentinel's replica, a Cluster's other nodes): reported apart, and not counted as other programs' CPU. */
  redisReplicaPids?: number[];
  /** Redis INFO totals at the two marks. */
  redisBefore: { commands: number; aof: number };
  redisAfter: { commands: number; aof: number };
  /** The span Redis's rates are per. */
  windowSeconds: number;
}): ResourceFigures {
  const { watcher, from, to, hubs, generatorPids, redisPid, redisBefore, redisAfter, windowSeconds } = input;
  const replicaPids = input.redisReplicaPids ?? [];
  const cpu = (pid: number) => cpuPercent(pid, from, to);
  const generatorCpu = generatorPids.map(cpu);
  const redisCpu = cpu(redisPid);
  const replicaCpu = replicaPids.length === 0 ? null : round(replicaPids.reduce((sum, pid) => sum + ProcessWatcher.cpuPercent(pid, from, to), 0));
  return {
    hubs: hubs.map((h) => ({ node: h.nodeId, server: h.server, pid: h.pid, cpu_percent: cpu(h.pid), peak_rss_mb: round(watcher.peakRssMb(h.pid)) })),
    generator: {
      processes: generatorPids.length,
      cpu_percent: round(generatorCpu.reduce<number>((a, b) => a + (b ?? 0), 0)),
      peak_rss_mb: round(generatorPids.reduce((a, pid) => a + watcher.peakRssMb(pid), 0)),
      per_process_cpu_percent: generatorCpu,
    },
    coordinator: { cpu_percent: cpu(process.pid), peak_rss_mb: round(watcher.peakRssMb(process.pid)) },
    redis: {
      cpu_percent: redisCpu,
      peak_rss_mb: round(watcher.peakRssMb(redisPid)),
      commands_per_second: round((redisAfter.commands - redisBefore.commands) / windowSeconds, 0),
      aof_bytes_per_second: round((redisAfter.aof - redisBefore.aof) / windowSeconds, 0),
      replica_cpu_percent: replicaCpu,
      total_cpu_percent: redisCpu === null ? null : round(redisCpu + (replicaCpu ?? 0)),
    },
    ...machineLoad(from, to, [...hubs.map((h) => h.pid), ...generatorPids, process.pid, redisPid, ...replicaPids]),
  };
}
