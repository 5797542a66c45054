/**
 * The coordinator's side of the load-generator processes: starts them,
 * connects their clients with progress lines, hands them events to send, and
 * collects what they recorded.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { setPriority } from 'node:os';
import { join, resolve } from 'node:path';
import { REPO_ROOT, WATCHDOG } from './hub-process.js';
import { now, sleep } from './time.js';
import type { ClientPlan, ClientWire, CoordinatorMessage, ScheduledEmit, TrackSpec, WorkerMessage, WorkerProgress, WorkerResult } from './worker-protocol.js';

const WORKER_FILE = resolve(import.meta.dirname, 'lean-client-worker.ts');

/** The generator processes' nice value (0: the server's own priority). */
export const GENERATOR_NICE = 10;

interface Worker {
  child: ChildProcess;
  progress: WorkerProgress;
  connected: Promise<void>;
  result(): Promise<WorkerResult>;
  stop(): Promise<void>;
}

function startWorker(index: number, onFatal: (error: Error) => void, profileDir: string | null): Worker {
  const child = fork(WORKER_FILE, [], {
    cwd: REPO_ROOT,
    execArgv: [...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []), '--import', 'tsx', '--import', WATCHDOG],
    serialization: 'advanced',
    detached: true,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  // The displays stand in for thousands of other machines: on this one they must not take
  // the CPU from the server being measured when both want it (a call to 5,000 displays
  // wakes every generator process at once). A lower priority (nice 10) gives the server
  // first claim; what the generators then wait still counts in call → display.
  if (child.pid !== undefined) setPriority(child.pid, GENERATOR_NICE);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  let resolveConnected!: () => void;
  const connected = new Promise<void>((r) => (resolveConnected = r));
  const resultWaiters: ((r: WorkerResult) => void)[] = [];
  const worker: Worker = {
    child,
    progress: { type: 'progress', connected: 0, failed: 0, disconnects: 0, tracked: 0, duplicates: 0, messages: 0, emitted: 0, acked: 0 },
    connected,
    result: () =>
      new Promise<WorkerResult>((resolveResult, reject) => {
        const timer = setTimeout(() => reject(new Error(`generator process ${index + 1} did not report within 30 s`)), 30_000);
        resultWaiters.push((r) => {
          clearTimeout(timer);
          resolveResult(r);
        });
        child.send({ type: 'report' } satisfies CoordinatorMessage);
      }),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      if (child.connected) child.send({ type: 'stop' } satisfies CoordinatorMessage);
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
  child.on('message', (message: WorkerMessage) => {
    if (message.type === 'progress' || message.type === 'connected') {
      worker.progress = message;
      if (message.type === 'connected') resolveConnected();
    } else if (message.type === 'result') {
      resultWaiters.shift()?.(message);
    } else if (message.type === 'fatal') {
      onFatal(new Error(`generator process ${index + 1}: ${message.error}`));
    }
  });
  child.once('exit', (code, signal) => {
    if (code !== 0 && signal !== 'SIGKILL' && signal !== 'SIGTERM') onFatal(new Error(`generator process ${index + 1} exited (${code ?? signal})`));
  });
  return worker;
}

/** Where one client of the benchmark lives. */
export interface ClientPlace {
  /** Generator process. */
  worker: number;
  /** Index among that process's clients. */
  local: number;
  /** Hub node. */
  node: number;
}

/**
 * Client i goes to generator process i % workers and to hub node
 * floor(i / workers) % nodes: every process holds clients of every node, and
 * within a process the clients alternate between the nodes.
 */
export function placeClient(i: number, workers: number, nodes: number): ClientPlace {
  const local = Math.floor(i / workers);
  return { worker: i % workers, local, node: local % nodes };
}

export interface ConnectOptions {
  nsp: string;
  /** MQTT or NATS instead of Socket.IO. */
  wire?: ClientWire;
  join?: { event: string; payload: unknown };
  track: TrackSpec;
  /** Handshakes in flight at once per process. */
  concurrency: number;
  timeoutMs?: number;
}

export class WorkerPool {
  private readonly workers: Worker[];
  private fatalError: Error | null = null;
  /** Per process, per local client: its hub node. */
  private places: number[][] = [];

  /** Starts `count` generator processes; `profileDir(i)` gives process i a CPU profile directory. */
  constructor(count: number, profileDir: (i: number) => string | null = () => null) {
    this.workers = Array.from({ length: count }, (_, i) => startWorker(i, (error) => (this.fatalError ??= error), profileDir(i)));
  }

  get size(): number {
    return this.workers.length;
  }

  get pids(): number[] {
    return this.workers.map((w) => w.child.pid!);
  }

  /** Throws what went wrong in a generator process, if anything did. */
  checkFatal(): void {
    if (this.fatalError) throw this.fatalError;
  }

  sum(pick: (p: WorkerProgress) => number): number {
    return this.workers.reduce((a, w) => a + pick(w.progress), 0);
  }

  /** The hub node (index into the hubs given to connect) of each client of process `worker`. */
  nodesOf(worker: number): number[] {
    return this.places[worker] ?? [];
  }

  /**
   * Connects `count` clients spread over the processes and the servers `hubs`
   * (placeClient; hub nodes, limit servers, a broker), with `token(i)` each,
   * and logs progress every second until all are connected or failed.
   * Resolves with the seconds it took.
   */
  async connect(
    count: number,
    hubs: { url: string }[],
    token: (i: number) => string,
    options: ConnectOptions,
    progress: { log: (line: string) => void; tag: string; fatal: Promise<never> },
  ): Promise<number> {
    const plans: ClientPlan[][] = this.workers.map(() => []);
    this.places = this.workers.map(() => []);
    for (let i = 0; i < count; i++) {
      const place = placeClient(i, this.workers.length, hubs.length);
      plans[place.worker]!.push({ url: hubs[place.node]!.url, token: token(i) });
      this.places[place.worker]!.push(place.node);
    }
    const started = now();
    this.workers.forEach((w, i) =>
      w.child.send({
        type: 'connect',
        nsp: options.nsp,
        ...(options.wire ? { wire: options.wire } : {}),
        clients: plans[i]!,
        ...(options.join ? { join: options.join } : {}),
        track: options.track,
        concurrency: options.concurrency,
        timeoutMs: options.timeoutMs ?? 15_000,
        progressMs: 200,
      } satisfies CoordinatorMessage),
    );
    const all = Promise.all(this.workers.map((w) => w.connected));
    let done = false;
    void all.then(() => (done = true));
    let lastLine = 0;
    while (!done) {
      await Promise.race([all, sleep(250), progress.fatal]);
      this.checkFatal();
      if (now() - lastLine >= 1000 || done) {
        lastLine = now();
        const failed = this.sum((p) => p.failed);
        progress.log(
          `${progress.tag} connecting ${this.sum((p) => p.connected)}/${count}${failed ? ` (${failed} failed)` : ''} (${((now() - started) / 1000).toFixed(1)} s)`,
        );
      }
      if (now() - started > 10 * 60_000) throw new Error('connecting took more than 10 minutes');
    }
    return (now() - started) / 1000;
  }

  /** Hands each process its events to send (`perWorker[i]` to process i). */
  emit(perWorker: ScheduledEmit[][]): void {
    this.workers.forEach((w, i) => {
      const emits = perWorker[i] ?? [];
      if (emits.length > 0) w.child.send({ type: 'emit', emits } satisfies CoordinatorMessage);
    });
  }

  results(): Promise<WorkerResult[]> {
    return Promise.all(this.workers.map((w) => w.result()));
  }

  async stop(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.stop()));
  }
}

/** A CPU profile directory per generator process, or none. */
export const generatorProfileDir = (profileDir: string | null, prefix: string) => (i: number) =>
  profileDir ? join(profileDir, `${prefix}-generator-${i + 1}`) : null;
