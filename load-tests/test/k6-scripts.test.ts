import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUEUE_NAMESPACE, type Ack, type ConsultListing, type MediaNodeInfo, type SyncResult } from '@clinic-hub/protocol';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { CONSULT_HUB_ENV, TEST_MEDIA_SECRET } from '@clinic-hub/test-kit/consult-client';
import { REPO_ROOT, TEST_CLINICS_DIR, startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { connectedClients, metricValue } from '@clinic-hub/test-kit/metrics-text';
import { waitFor } from '@clinic-hub/test-kit/wait';
import { startMediaServerProcess, type MediaServerProcess, WERIFT_ENGINE_ENV } from '@clinic-hub/test-kit/media-node';
import { LeanSocket } from '../harness/lean-socket.js';
import { summarize } from '../harness/stats.js';
import { MetricStore, bundleK6Script, runScript, startVu, type Bundle } from './support/k6-adapter.js';

/**
 * k6 cannot be installed here. What can be checked without it: each script
 * loads as k6 loads it (every import a k6 module or a relative .ts file),
 * its options put thresholds on its own metrics, a missing setting stops it
 * with the variable's name, and — through the adapter, which gives each
 * script `ws` for k6's WebSocket — that it speaks the hub's protocol, times
 * what it should and leaves nothing open, against real hub processes.
 */
const K6_DIR = resolve(import.meta.dirname, '../k6');
const SCRIPTS = {
  'display-fanout': { required: ['HUB_URL', 'STAFF_TOKEN', 'DISPLAY_TOKEN', 'DEPT'] },
  chat: { required: ['HUB_URL', 'STAFF_TOKEN', 'DEPT'] },
  notify: { required: ['HUB_URL', 'STAFF_TOKEN', 'DEPT'] },
  consultation: { required: ['HUB_URL', 'STAFF_TOKEN', 'DEPT'] },
} as const;
type ScriptName = keyof typeof SCRIPTS;

const bundles = new Map<ScriptName, Promise<Bundle>>();
const bundle = (name: ScriptName) => {
  if (!bundles.has(name)) bundles.set(name, bundleK6Script(resolve(K6_DIR, `${name}.ts`)));
  return bundles.get(name)!;
};
const offlineEnv = { HUB_URL: 'http://127.0.0.1:9', STAFF_TOKEN: 't', DISPLAY_TOKEN: 't', DEPT: 'gp' };

describe.each(Object.keys(SCRIPTS) as ScriptName[])('k6 script %s', (name) => {
  it('imports only k6 modules and relative .ts files, as k6 resolves them', async () => {
    const { inputs } = await bundle(name);
    const files = Object.keys(inputs).filter((path) => !path.startsWith('k6:'));
    expect(files.filter((path) => path.includes('node_modules'))).toEqual([]);
    for (const file of files) {
      for (const imported of inputs[file]!.imports) {
        const specifier = imported.original ?? imported.path;
        expect(/^k6(\/|$)/.test(specifier) || (/^\.\.?\//.test(specifier) && specifier.endsWith('.ts')), `${file} imports ${specifier}`).toBe(true);
      }
    }
  });

  it('exports options with thresholds on its own metrics, setup and a default function', async () => {
    const metrics = new MetricStore();
    const { script } = startVu(await bundle(name), { env: offlineEnv, metrics });
    expect(typeof script.default).toBe('function');
    expect(typeof script.setup).toBe('function');
    expect(Object.keys(script.options.scenarios ?? {}).length).toBeGreaterThan(0);
    const thresholds = script.options.thresholds ?? {};
    const thresholdMetrics = new Set(Object.keys(thresholds).map((key) => key.replace(/\{.*\}$/, '')));
    const custom = [...metrics.kinds.keys()];
    expect([...thresholdMetrics].filter((m) => !metrics.kinds.has(m))).toEqual([]);
    expect(custom.filter((m) => !thresholdMetrics.has(m))).toEqual([]);
    for (const list of Object.values(thresholds)) {
      for (const expression of list) expect(expression).toMatch(/^(p\(\d+(\.\d+)?\)|med|avg|min|max|count|rate)(<|<=|>|>=|==)\d+(\.\d+)?$/);
    }
    // Every latency Trend is held to the 100 ms budget at p99, and a run that measured nothing fails.
    for (const [metric, kind] of metrics.kinds) {
      if (kind === 'trend' && /_latency(_|$)/.test(metric)) expect(thresholds[metric]).toContain('p(99)<100');
    }
    expect(Object.values(thresholds).flat()).toContain('count>0');
  });

  it.each(SCRIPTS[name].required)('stops at once, naming %s, when it is not set', async (variable) => {
    const env: Record<string, string> = { ...offlineEnv };
    delete env[variable];
    const load = async () => startVu(await bundle(name), { env, metrics: new MetricStore() });
    await expect(load()).rejects.toThrow(`${variable} is not set`);
  });
});

describe('k6 script settings', () => {
  it('refuses a bad number and a URL that is not http(s), naming the variable', async () => {
    const load = async (env: Record<string, string>) => startVu(await bundle('display-fanout'), { env: { ...offlineEnv, ...env }, metrics: new MetricStore() });
    await expect(load({ DISPLAYS: 'many' })).rejects.toThrow('DISPLAYS must be a whole number');
    await expect(load({ CALL_RATE: '0' })).rejects.toThrow('CALL_RATE must be a number from 0.1');
    await expect(load({ HUB_URL: 'hub.example.jp' })).rejects.toThrow('HUB_URL: "hub.example.jp" is not an http');
  });
});

describe('k6 scripts against two hub nodes', () => {
  let redis: TestRedis;
  let hubs: HubNodeProcess[] = [];
  let worker: ChildProcess | null = null;
  let hubUrl = '';

  beforeAll(async () => {
    redis = await startTestRedis();
    // Consultations on (MEDIA_TOKEN_SECRET): the consultation script admits patients; the others do not notice.
    hubs = await Promise.all(['k6-a', 'k6-b'].map((nodeId) => startHubProcess({ redisUrl: redis.url, nodeId, env: CONSULT_HUB_ENV })));
    hubUrl = hubs.map((h) => h.url).join(',');
    worker = spawn(process.execPath, ['--import', 'tsx', resolve(REPO_ROOT, 'hub/src/notify/worker-main.ts')], {
      cwd: REPO_ROOT,
      env: { ...process.env, REDIS_URL: redis.url, CLINICS_DIR: TEST_CLINICS_DIR, LOG_LEVEL: 'warn', NOTIFY_QUIET_HOURS: 'off' },
      stdio: 'ignore',
    });
  }, 60_000);

  afterAll(async () => {
    if (worker && worker.exitCode === null) {
      const exited = new Promise((r) => worker!.once('exit', r));
      worker.kill('SIGTERM');
      await exited;
    }
    await Promise.all(hubs.map((h) => h.stop()));
    await redis?.cleanup();
  });

  /** The queue's tickets of one department, read by a staff client of its own. */
  const ticketsOf = async (dept: string) => {
    const staff = await LeanSocket.connect(hubs[0]!.url, QUEUE_NAMESPACE, { token: await tokenFor('staff') });
    try {
      const synced = await staff.emitWithAck<Ack<SyncResult>>('queue:sync', {});
      if (!synced.ok || synced.mode !== 'snapshot') throw new Error('expected a snapshot');
      return synced.snapshot.tickets.filter((t) => t.dept === dept);
    } finally {
      staff.close();
    }
  };

  /** What went wrong, if anything, in one object, so a failure shows it all. */
  const problems = (metrics: MetricStore, vus: { logs: string[]; aborts: string[] }[], counters: string[]) => ({
    ...Object.fromEntries(counters.map((c) => [c, metrics.counts(c)])),
    aborts: vus.flatMap((v) => v.aborts),
    logs: vus.flatMap((v) => v.logs),
  });

  it('display fan-out: every display times every call, nothing missed, the department left as it was', async () => {
    const displays = 6;
    const probes = 1;
    const { metrics, vus } = await runScript(await bundle('display-fanout'), {
      HUB_URL: hubUrl,
      STAFF_TOKEN: await tokenFor('staff'),
      DISPLAY_TOKEN: await tokenFor('display'),
      DEPT: 'gp',
      DISPLAYS: String(displays),
      DISPLAYS_PER_VU: '3',
      PROBE_DISPLAYS: String(probes),
      CALL_RATE: '4',
      RAMP_SECONDS: '2',
      DURATION_SECONDS: '2',
      SETTLE_SECONDS: '1',
    });
    expect(problems(metrics, vus, ['socket_errors', 'queue_op_errors', 'display_missed_events', 'display_duplicate_events'])).toEqual({
      socket_errors: {},
      queue_op_errors: {},
      display_missed_events: {},
      display_duplicate_events: {},
      aborts: [],
      logs: [],
    });
    const calls = metrics.values('queue_op_duration', { op: 'call-next' }).length;
    expect(calls).toBeGreaterThanOrEqual(4);
    expect(metrics.sum('display_calls_received')).toBe(calls * (displays + probes));
    const latencies = metrics.values('display_call_latency');
    expect(latencies).toHaveLength(calls * (displays + probes));
    // One machine, one clock: commit → display can be neither negative (beyond ms rounding) nor huge.
    expect(Math.min(...latencies)).toBeGreaterThanOrEqual(-1);
    expect(Math.max(...latencies)).toBeLessThan(5000);
    const probeLatencies = metrics.values('display_call_latency_probe');
    expect(probeLatencies).toHaveLength(calls * probes);
    expect(Math.min(...probeLatencies)).toBeGreaterThanOrEqual(0);
    expect(metrics.values('redis_clock_skew_min')).toHaveLength(calls);
    expect(Math.max(...metrics.values('redis_clock_skew_min'))).toBeLessThanOrEqual(1);

    expect(await ticketsOf('gp')).toEqual([]);
  }, 60_000);

  it('chat: every message acked and delivered to the other side once, the ticket cancelled', async () => {
    const messages = 6;
    const { metrics, vus } = await runScript(await bundle('chat'), {
      HUB_URL: hubUrl,
      STAFF_TOKEN: await tokenFor('staff'),
      DEPT: 'peds',
      CHAT_PAIRS: '2',
      MESSAGES: String(messages),
      MESSAGE_INTERVAL_SECONDS: '0.2',
      DURATION_SECONDS: '1',
    });
    expect(problems(metrics, vus, ['socket_errors', 'queue_op_errors', 'chat_errors', 'chat_missing_deliveries', 'chat_duplicate_deliveries'])).toEqual({
      socket_errors: {},
      queue_op_errors: {},
      chat_errors: {},
      chat_missing_deliveries: {},
      chat_duplicate_deliveries: {},
      aborts: [],
      logs: [],
    });
    expect(metrics.sum('chat_messages_delivered')).toBe(2 * messages);
    expect(metrics.values('chat_delivery_latency')).toHaveLength(2 * messages);
    expect(metrics.values('chat_ack_latency')).toHaveLength(2 * messages);
    expect(Math.min(...metrics.values('chat_delivery_latency'))).toBeGreaterThanOrEqual(0);
    expect(metrics.values('queue_op_duration', { op: 'cancel' })).toHaveLength(2);
  }, 60_000);

  it('in-app notifications: every called patient gets queue_called on their own socket, timed from the call', async () => {
    const { metrics, vus } = await runScript(await bundle('notify'), {
      HUB_URL: hubUrl,
      STAFF_TOKEN: await tokenFor('staff', 'otherclinic'),
      DEPT: 'gp',
      PATIENTS: '3',
      // gp's two rooms stay busy from a call to its notice: at one call per 2 s a notice may take up to 4 s (a
      // loaded machine: seen over 2 s) before a call finds no free room (NO_FREE_ROOM); 2 calls/s left only 1 s.
      CALL_RATE: '0.5',
      DURATION_SECONDS: '7',
    });
    expect(
      problems(metrics, vus, ['socket_errors', 'queue_op_errors', 'notify_missing_notices', 'notify_duplicate_notices', 'notify_untracked_calls']),
    ).toEqual({
      socket_errors: {},
      queue_op_errors: {},
      notify_missing_notices: {},
      notify_duplicate_notices: {},
      notify_untracked_calls: {},
      aborts: [],
      logs: [],
    });
    const calls = metrics.values('queue_op_duration', { op: 'call-next' }).length;
    expect(calls).toBeGreaterThanOrEqual(3);
    expect(metrics.values('notify_notice_latency')).toHaveLength(calls);
    expect(metrics.sum('notify_notices_received', { kind: 'queue_called' })).toBe(calls);
    expect(Math.min(...metrics.values('notify_notice_latency'))).toBeGreaterThanOrEqual(0);
  }, 60_000);

  // Both SFU engines while werift is kept: the script reads the engine from `joined`.
  describe.each(['mediasoup', 'werift'] as const)('with a media-server node on %s', (engine) => {
    const MEDIA_NODE = `k6-media-${engine}`;
    let media: MediaServerProcess | null = null;

    /** The hub's consultations list: the consultations of testclinic and the media-server nodes it can place rooms on. */
    const consultations = async () => {
      const response = await fetch(`${hubs[0]!.url}/api/clinics/testclinic/consultations?count=50`, { headers: { authorization: `Bearer ${await tokenFor('staff')}` } });
      return (await response.json()) as { consultations: ConsultListing[]; mediaNodes: MediaNodeInfo[] };
    };

    beforeAll(async () => {
      // `npm run media`'s entry point with the hubs' room-token secret: it announces itself in Redis, where the hubs look for nodes.
      media = await startMediaServerProcess({ ...(engine === 'werift' ? WERIFT_ENGINE_ENV : {}), REDIS_URL: redis.url, MEDIA_NODE_ID: MEDIA_NODE, MEDIA_TOKEN_SECRET: TEST_MEDIA_SECRET, LOG_LEVEL: 'warn' });
      if (media.process.exitCode !== null) throw new Error(`the media-server exited: ${media.logs()}`);
      await waitFor('the hub to see the media-server node', async () => (await consultations()).mediaNodes.some((n) => n.id === MEDIA_NODE), 15_000);
    }, 60_000);

    afterAll(async () => {
      await media?.stop();
    });

    it('consultation: every admitted patient told at once and given its first transport by the media-server; every consultation ended, nothing left open', async () => {
      const patients = 6;
      const { metrics, vus } = await runScript(await bundle('consultation'), {
        HUB_URL: hubUrl,
        STAFF_TOKEN: await tokenFor('staff'),
        DOCTOR_TOKEN: await tokenFor('doctor', 'testclinic', { sub: 'doctor:k6' }),
        DEPT: 'online',
        PATIENTS: String(patients),
        ADMIT_INTERVAL_SECONDS: '0.2',
      });
      expect(problems(metrics, vus, ['socket_errors', 'queue_op_errors', 'consult_errors', 'consult_patients_left_waiting'])).toEqual({
        socket_errors: {},
        queue_op_errors: {},
        consult_errors: {},
        consult_patients_left_waiting: {},
        aborts: [],
        logs: [],
      });
      // Every patient admitted, told, and given a transport by this engine; every step timed once.
      const admitted = metrics.values('consult_admit_latency');
      const transported = metrics.values('consult_transport_latency', { engine });
      expect(admitted).toHaveLength(patients);
      expect(transported).toHaveLength(patients);
      expect(metrics.sum('consult_transports_ready', { engine })).toBe(patients);
      for (const op of ['admit', 'join', 'end']) expect(metrics.values('consult_op_duration', { op }), op).toHaveLength(patients);
      // Real figures, one clock: neither zero (a push that never left) nor beyond a generous liveness bound on a busy machine.
      for (const latencies of [admitted, transported]) {
        expect(Math.min(...latencies)).toBeGreaterThan(0);
        expect(Math.max(...latencies)).toBeLessThan(5000);
      }

      // The hub: one consultation per patient on this media-server node, each ended; the department empty; no ticket page still connected.
      // This engine's: the other engine's run used the same clinic.
      const listed = (await consultations()).consultations.filter((c) => c.dept === 'online' && c.node === MEDIA_NODE);
      expect(listed).toHaveLength(patients);
      for (const c of listed) expect(c).toMatchObject({ status: 'ended', node: MEDIA_NODE });
      expect(await ticketsOf('online')).toEqual([]);
      for (const hub of hubs) {
        await waitFor(`no patient page left on ${hub.nodeId}`, async () => (await connectedClients(hub.url, hub.nodeId, 'patient')) === 0, 5000);
      }

      // The media-server: each patient joined once, no error answered, no room or participant left.
      const mediaMetrics = async () => (await fetch(`${media!.url}/metrics`)).text();
      await waitFor('the media-server to have no room and no participant left', async () => {
        const text = await mediaMetrics();
        return metricValue(text, 'clinic_media_rooms', { node: MEDIA_NODE }) === 0 && metricValue(text, 'clinic_media_participants', { node: MEDIA_NODE }) === 0;
      }, 5000);
      const text = await mediaMetrics();
      expect(metricValue(text, 'clinic_media_joins_total', { node: MEDIA_NODE })).toBe(patients);
      expect(text).not.toMatch(/^clinic_media_signal_errors_total\{/m);

      const figures = (values: number[]) => {
        const { p50, max } = summarize(values);
        return `p50 ${p50} ms, max ${max} ms`;
      };
      console.log(
        `k6 consultation (adapter, 2 hub nodes, 1 media-server on ${engine}, ${patients} patients, 2 rooms): admit → page ${figures(admitted)}; ` +
          `join → first transport ${figures(transported)}; acks: admit ${figures(metrics.values('consult_op_duration', { op: 'admit' }))}, ` +
          `join ${figures(metrics.values('consult_op_duration', { op: 'join' }))}, end ${figures(metrics.values('consult_op_duration', { op: 'end' }))}`,
      );
    }, 90_000);

    it('consultation: stops, saying why, when DEPT is not an online department', async () => {
      const run = runScript(await bundle('consultation'), { HUB_URL: hubUrl, STAFF_TOKEN: await tokenFor('staff'), DEPT: 'peds', PATIENTS: '1' });
      await expect(run).rejects.toThrow('DEPT=peds is not an online department');
      expect(await ticketsOf('peds')).toEqual([]);
    }, 60_000);
  });
});
