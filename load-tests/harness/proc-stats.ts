import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

/**
 * CPU and memory of processes on this (Linux) machine, from /proc: what the
 * benchmark reports for each hub node and for its own load generator.
 */

let clockTicks: number | null = null;
/** Kernel clock ticks per second (utime/stime unit), usually 100. */
export function clockTicksPerSecond(): number {
  if (clockTicks === null) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/**
 * CPU time of a process (all its threads), in seconds; null when it is gone.
 * From each thread's run time in ns (/proc/PID/task/TID/schedstat): a server
 * that used 5 ms in a 1-second window shows as 5 ms, not as 0 or 10 (the
 * 10 ms clock ticks of utime + stime, used when schedstat is not there).
 * A thread that ended between two readings takes its time with it: the
 * processes measured here (Node, Redis, the brokers) keep theirs.
 */
export function cpuSeconds(pid: number): number | null {
  const precise = threadRunSeconds(pid);
  if (precise !== null) return precise;
  return tickSeconds(pid);
}

function threadRunSeconds(pid: number): number | null {
  let threads: string[];
  try {
    threads = readdirSync(`/proc/${pid}/task`);
  } catch {
    return null;
  }
  let ns = 0;
  for (const tid of threads) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return Number.isFinite(ns) && threads.length > 0 ? ns / 1e9 : null;
}

/** utime + stime in clock ticks. */
function tickSeconds(pid: number): number | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return null;
  return (utime + stime) / clockTicksPerSecond();
}

/** Resident memory now and its peak (VmHWM), in MB; null when the process is gone. */
export function memoryMb(pid: number): { rss: number; peak: number } | null {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  const kb = (field: string) => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    return match ? Number(match[1]) : 0;
  };
  const rss = kb('VmRSS') / 1024;
  return { rss, peak: Math.max(rss, kb('VmHWM') / 1024) };
}

/** Busy and total jiffies of the whole machine (all CPUs), from /proc/stat. */
export function machineTicks(): { busy: number; total: number } | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const values = line.trim().split(/\s+/).slice(1).map(Number);
    const total = values.reduce((a, b) => a + b, 0);
    const idle = (values[3] ?? 0) + (values[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return null;
  }
}

/**
 * Watches a set of processes: peak RSS sampled every `intervalMs` (plus the
 * kernel's own peak), and CPU between two marks.
 */
export class ProcessWatcher {
  private readonly peaks = new Map<number, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly pids: number[],
    intervalMs = 250,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  sample(): void {
    for (const pid of this.pids) {
      const memory = memoryMb(pid);
      if (memory) this.peaks.set(pid, Math.max(this.peaks.get(pid) ?? 0, memory.rss, memory.peak));
    }
  }

  /** CPU seconds of every process now, to diff against a later mark. */
  mark(): { at: number; cpu: Map<number, number>; machine: { busy: number; total: number } | null } {
    const cpu = new Map<number, number>();
    for (const pid of this.pids) {
      const seconds = cpuSeconds(pid);
      if (seconds !== null) cpu.set(pid, seconds);
    }
    return { at: performance.now(), cpu, machine: machineTicks() };
  }

  /** CPU% of one process between two marks (100 = one core busy). */
  static cpuPercent(pid: number, from: ReturnType<ProcessWatcher['mark']>, to: ReturnType<ProcessWatcher['mark']>): number {
    const a = from.cpu.get(pid);
    const b = to.cpu.get(pid);
    const seconds = (to.at - from.at) / 1000;
    if (a === undefined || b === undefined || seconds <= 0) return 0;
    return ((b - a) / seconds) * 100;
  }

  /** Share of all the machine's CPUs that were busy between two marks, 0–100. */
  static machineBusyPercent(from: ReturnType<ProcessWatcher['mark']>, to: ReturnType<ProcessWatcher['mark']>): number {
    if (!from.machine || !to.machine) return 0;
    const total = to.machine.total - from.machine.total;
    return total > 0 ? ((to.machine.busy - from.machine.busy) / total) * 100 : 0;
  }

  peakRssMb(pid: number): number {
    return this.peaks.get(pid) ?? 0;
  }

  stop(): void {
    this.sample();
    clearInterval(this.timer);
  }
}
