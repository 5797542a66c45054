/**
 * Runs the k6 scripts of load-tests/k6/ in Node, where k6 itself cannot be
 * installed: esbuild bundles a script with its k6 modules left as stubs,
 * each virtual user gets its own vm context (as each k6 VU has its own JS
 * runtime and module instances), and the stubs map k6's APIs onto Node:
 * `k6/websockets` onto the `ws` package (whose WebSocket has the same
 * browser API), `k6/timers` onto Node's timers, `k6/metrics` onto a
 * recorder. An iteration ends, as in k6, when its promise has settled and
 * its event loop is empty: no timer pending, no socket open.
 *
 * It is not k6: no executors beyond starting each scenario's VUs once at
 * its startTime, no thresholds, no built-in metrics.
 */
import vm from 'node:vm';
import { build, type Metafile, type Plugin } from 'esbuild';
import WebSocket from 'ws';

export interface Bundle {
  code: string;
  /** Every file in the bundle, and the imports each made after TypeScript's type-only imports were erased. */
  inputs: Metafile['inputs'];
}

/** Bundles a k6 script; `k6` and `k6/*` imports read the stubs the VU's context provides. */
export async function bundleK6Script(file: string): Promise<Bundle> {
  const k6Modules: Plugin = {
    name: 'k6-modules',
    setup(b) {
      b.onResolve({ filter: /^k6(\/.*)?$/ }, (args) => ({ path: args.path, namespace: 'k6' }));
      b.onLoad({ filter: /.*/, namespace: 'k6' }, (args) => ({
        contents: `module.exports = globalThis.__k6Modules[${JSON.stringify(args.path)}];`,
        loader: 'js',
      }));
    },
  };
  const result = await build({
    entryPoints: [file],
    bundle: true,
    write: false,
    format: 'iife',
    globalName: '__k6Script',
    platform: 'neutral',
    target: 'es2022',
    metafile: true,
    logLevel: 'silent',
    plugins: [k6Modules],
  });
  return { code: result.outputFiles[0]!.text, inputs: result.metafile.inputs };
}

export interface K6Script {
  options: {
    scenarios?: Record<string, { executor: string; vus?: number; iterations?: number; startTime?: string; duration?: string }>;
    thresholds?: Record<string, string[]>;
    [key: string]: unknown;
  };
  setup?: () => unknown;
  default: (data: unknown) => unknown;
}

export interface Sample {
  value: number;
  tags: Record<string, string>;
}

/** Every sample every VU added to a custom metric. */
export class MetricStore {
  readonly kinds = new Map<string, 'trend' | 'counter' | 'rate' | 'gauge'>();
  readonly samples = new Map<string, Sample[]>();

  /** The values of `name` whose tags include `tags`. */
  values(name: string, tags: Record<string, string> = {}): number[] {
    return (this.samples.get(name) ?? []).filter((s) => Object.entries(tags).every(([k, v]) => s.tags[k] === v)).map((s) => s.value);
  }

  sum(name: string, tags: Record<string, string> = {}): number {
    return this.values(name, tags).reduce((a, b) => a + b, 0);
  }

  /** Samples of the counters, grouped by name and tags: what went wrong, for a test failure message. */
  counts(name: string): Record<string, number> {
    const out: Record<string, number> = {};
    for (const s of this.samples.get(name) ?? []) {
      const key = JSON.stringify(s.tags);
      out[key] = (out[key] ?? 0) + s.value;
    }
    return out;
  }

  metricsModule(): object {
    const store = this;
    const metric = (kind: 'trend' | 'counter' | 'rate' | 'gauge') =>
      class {
        constructor(readonly name: string) {
          store.kinds.set(name, kind);
        }
        add(value: number | boolean, tags: Record<string, string> = {}) {
          const list = store.samples.get(this.name) ?? [];
          list.push({ value: Number(value), tags: { ...tags } });
          store.samples.set(this.name, list);
        }
      };
    return { Trend: metric('trend'), Counter: metric('counter'), Rate: metric('rate'), Gauge: metric('gauge') };
  }
}

export interface Vu {
  script: K6Script;
  /** Messages the script printed with console.*. */
  logs: string[];
  /** Reasons given to exec.test.abort(). */
  aborts: string[];
  /** Runs one iteration: resolves when the default function has settled and the VU's event loop is empty. */
  iterate(data: unknown, timeoutMs?: number): Promise<void>;
}

/** Evaluates the bundle in a fresh context: one k6 VU with its own module instances. */
export function startVu(bundle: Bundle, options: { env: Record<string, string>; metrics: MetricStore; scenario?: string; idInTest?: number; iterationInTest?: number }): Vu {
  const timers = new Set<NodeJS.Timeout>();
  const sockets = new Set<WebSocket>();
  const logs: string[] = [];
  const aborts: string[] = [];
  const log = (...values: unknown[]) => logs.push(values.map(String).join(' '));

  class K6WebSocket extends WebSocket {
    constructor(url: string, _protocols?: unknown, params?: { headers?: Record<string, string> } | null) {
      super(url, { perMessageDeflate: false, ...(params?.headers ? { headers: params.headers } : {}) });
      sockets.add(this);
      this.addEventListener('close', () => sockets.delete(this));
    }
  }

  const modules: Record<string, object> = {
    k6: { check: () => true, fail: (message?: string) => { throw new Error(message); } },
    'k6/execution': {
      vu: { idInTest: options.idInTest ?? 1, idInInstance: options.idInTest ?? 1, iterationInScenario: 0, iterationInInstance: 0 },
      scenario: { name: options.scenario ?? 'default', iterationInTest: options.iterationInTest ?? 0, iterationInInstance: options.iterationInTest ?? 0 },
      test: {
        abort: (reason?: string) => {
          aborts.push(reason ?? '');
        },
      },
    },
    'k6/metrics': options.metrics.metricsModule(),
    'k6/timers': {
      setTimeout: (fn: (...args: unknown[]) => void, ms: number, ...args: unknown[]) => {
        const timer = setTimeout(() => {
          timers.delete(timer);
          fn(...args);
        }, ms);
        timers.add(timer);
        return timer;
      },
      clearTimeout: (timer: NodeJS.Timeout) => {
        timers.delete(timer);
        clearTimeout(timer);
      },
      setInterval: (fn: (...args: unknown[]) => void, ms: number, ...args: unknown[]) => {
        const timer = setInterval(fn, ms, ...args);
        timers.add(timer);
        return timer;
      },
      clearInterval: (timer: NodeJS.Timeout) => {
        timers.delete(timer);
        clearInterval(timer);
      },
    },
    'k6/websockets': { WebSocket: K6WebSocket },
  };
  const context = vm.createContext({
    __ENV: { ...options.env },
    __k6Modules: modules,
    console: { log, info: log, warn: log, error: log, debug: log },
  });
  vm.runInContext(bundle.code, context, { filename: 'k6-bundle.js' });
  const script = (context as { __k6Script: K6Script }).__k6Script;

  return {
    script,
    logs,
    aborts,
    async iterate(data, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      await Promise.race([
        Promise.resolve(script.default(data)),
        new Promise((_, reject) => setTimeout(() => reject(new Error(`iteration still running after ${timeoutMs} ms`)), timeoutMs).unref()),
      ]);
      while (timers.size > 0 || sockets.size > 0) {
        if (Date.now() > deadline) throw new Error(`the VU's event loop did not empty: ${timers.size} timers, ${sockets.size} sockets left`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
}

/** Seconds of a k6 duration string ("1.5s", "2m", "250ms"). */
export function durationSeconds(value: string | undefined): number {
  if (!value) return 0;
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(value);
  if (!match) throw new Error(`not a k6 duration: ${value}`);
  return Number(match[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[match[2] as 'ms' | 's' | 'm' | 'h'];
}

/**
 * Runs setup() once, then every VU of every scenario for one iteration,
 * each scenario from its startTime: the shape of a k6 run, short.
 */
export async function runScript(bundle: Bundle, env: Record<string, string>, metrics = new MetricStore()): Promise<{ metrics: MetricStore; vus: Vu[] }> {
  const main = startVu(bundle, { env, metrics });
  const data = main.script.setup?.();
  const vus: Vu[] = [];
  const runs: Promise<void>[] = [];
  let idInTest = 0;
  for (const [name, scenario] of Object.entries(main.script.options.scenarios ?? {})) {
    for (let i = 0; i < (scenario.vus ?? 1); i++) {
      const vu = startVu(bundle, { env, metrics, scenario: name, idInTest: ++idInTest, iterationInTest: i });
      vus.push(vu);
      const delay = durationSeconds(scenario.startTime) * 1000;
      runs.push(new Promise((r) => setTimeout(r, delay)).then(() => vu.iterate(data)));
    }
  }
  await Promise.all(runs);
  return { metrics, vus };
}
