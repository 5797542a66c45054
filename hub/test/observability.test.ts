import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { NOTIFY_QUEUE_NAME, NOTIFY_QUEUE_PREFIX } from '@clinic-hub/protocol';
import { freePort } from '@clinic-hub/platform/redis-server';
import { startNotifyFixture, startWorkerProcess, waitFor, type NotifyFixture, type WorkerProcess } from '@clinic-hub/test-kit/notify-fixture';
import { repoPath } from './support/deploy-files.js';
import { jsonLogLines } from '@clinic-hub/test-kit/log-lines';
import { startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { metricValue } from '@clinic-hub/test-kit/metrics-text';
import { AiMetrics } from '@clinic-hub/ai-workers';
import { startTestMediaServer } from '@clinic-hub/test-kit/media-node';

/**
 * What operators see: the hub's and the notification worker's /metrics (and
 * the Grafana dashboard, which may only ask for what they export), the
 * worker's health endpoint, and one trace id from an HTTP request through
 * the hub into the worker's job and its logs.
 */
let fixture: NotifyFixture;
let hub: HubNodeProcess;
let worker: WorkerProcess;
let workerUrl: string;
let media: Awaited<ReturnType<typeof startTestMediaServer>>;

beforeAll(async () => {
  fixture = await startNotifyFixture();
  hub = await startHubProcess({ redisUrl: fixture.redisUrl, nodeId: 'observed', env: fixture.env() });
  const metricsPort = await freePort();
  worker = await startWorkerProcess(fixture.env({ NOTIFY_METRICS_PORT: String(metricsPort), NOTIFY_METRICS_HOST: '127.0.0.1', NOTIFY_NODE_ID: 'notify-observed' }));
  workerUrl = `http://127.0.0.1:${metricsPort}`;
  media = await startTestMediaServer({ redisUrl: fixture.redisUrl, nodeId: 'media-observed' });
});

afterAll(async () => {
  await media?.close();
  await worker?.stop();
  await hub?.stop();
  await fixture?.stop();
});

/** Every series name a /metrics text can hold: its samples, and for each `# TYPE` what that type exports (so a histogram nothing observed yet still counts). */
function exportedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      const name = type[1]!;
      const kind = type[2]!;
      const suffixes = kind === 'histogram' ? ['_bucket', '_sum', '_count'] : kind === 'summary' ? ['', '_sum', '_count'] : [''];
      for (const suffix of suffixes) names.add(`${name}${suffix}`);
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/.exec(line);
    if (sample) names.add(sample[1]!);
  }
  return names;
}

const PROMQL_WORDS = new Set([
  'sum', 'max', 'min', 'avg', 'count', 'rate', 'irate', 'increase', 'histogram_quantile', 'by', 'without', 'on', 'ignoring',
  'group_left', 'group_right', 'and', 'or', 'unless', 'topk', 'bottomk', 'abs', 'clamp_min', 'clamp_max', 'time', 'vector',
]);

/** The metric names a PromQL expression reads: identifiers outside label matchers, ranges, groupings and strings that are not functions. */
function metricsIn(expression: string): string[] {
  const bare = expression
    .replace(/"(?:[^"\\]|\\.)*"/g, '')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(by|without|on|ignoring)\s*\([^)]*\)/g, '');
  return [...bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)].map((m) => m[0]).filter((word) => !PROMQL_WORDS.has(word) && !/^\d/.test(word));
}

describe('the Grafana dashboard', () => {
  it('asks only for metrics that the hub, the notification worker, the media-server or the AI worker export', async () => {
    const texts = await Promise.all([`${hub.url}/metrics`, `${workerUrl}/metrics`, `${media.url}/metrics`].map(async (url) => (await fetch(url)).text()));
    // The AI worker serves this registry on AI_METRICS_PORT (its process needs models; the registry does not).
    const ai = new AiMetrics('ai-observed');
    ai.addQueueDepth(async () => [{ queue: 'ai-sessions', counts: { waiting: 0 } }]);
    texts.push(await ai.registry.metrics());
    const exported = new Set(texts.flatMap((text) => [...exportedNames(text)]));
    const dashboard = JSON.parse(readFileSync(repoPath('deploy/grafana/clinic-hub.json'), 'utf8')) as {
      uid: string;
      panels: { title: string; targets?: { expr: string; datasource: { uid: string } }[] }[];
    };
    const asked = dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((target) => ({ panel: panel.title, target })));
    expect(asked.length).toBeGreaterThan(15);
    const missing: string[] = [];
    for (const { panel, target } of asked) {
      expect(target.datasource.uid, panel).toBe('prometheus');
      const names = metricsIn(target.expr);
      expect(names.length, `${panel}: ${target.expr}`).toBeGreaterThan(0);
      for (const name of names) if (!exported.has(name)) missing.push(`${panel}: ${name}`);
    }
    expect(missing).toEqual([]);
    // Both services are on it.
    const used = new Set(asked.flatMap(({ target }) => metricsIn(target.expr)));
    expect([...used].some((name) => name.startsWith('clinic_hub_'))).toBe(true);
    expect([...used].some((name) => name.startsWith('clinic_notify_'))).toBe(true);
    expect([...used].some((name) => name.startsWith('clinic_media_'))).toBe(true);
    expect([...used].some((name) => name.startsWith('clinic_ai_'))).toBe(true);
  });

  it('is read with the provisioned Prometheus datasource', () => {
    const datasource = readFileSync(repoPath('deploy/grafana/provisioning/datasources/prometheus.yml'), 'utf8');
    expect(datasource).toMatch(/uid: prometheus\b/);
  });
});

describe('the hub’s /metrics', () => {
  it('has connections by role, events, latency histograms, readiness, actions in flight and process metrics, all labelled with the node', async () => {
    const text = await (await fetch(`${hub.url}/metrics`)).text();
    for (const name of [
      'clinic_hub_connected_clients',
      'clinic_hub_events_total',
      'clinic_hub_event_latency_seconds',
      'clinic_hub_action_duration_seconds',
      'clinic_hub_ready',
      'clinic_hub_actions_in_flight',
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_p99_seconds',
    ]) {
      expect(text).toContain(`# TYPE ${name} `);
    }
    expect(text).toContain('clinic_hub_ready{node="observed"} 1');
    expect(text).toContain('clinic_hub_actions_in_flight{node="observed"} 0');
  });
});

describe('the notification worker’s endpoint', () => {
  it('answers /healthz and /readyz, and /metrics with the queue depth by state', async () => {
    expect(await (await fetch(`${workerUrl}/healthz`)).json()).toMatchObject({ status: 'ok', node: 'notify-observed', redis: 'up', running: true });
    expect((await fetch(`${workerUrl}/readyz`)).status).toBe(200);
    expect((await fetch(`${workerUrl}/nothing`)).status).toBe(404);
    const text = await (await fetch(`${workerUrl}/metrics`)).text();
    for (const state of ['waiting', 'delayed', 'active', 'failed', 'completed']) {
      expect(metricValue(text, 'clinic_notify_queue_jobs', { state, node: 'notify-observed' }), state).toBeGreaterThanOrEqual(0);
    }
    expect(text).toContain('# TYPE clinic_notify_job_duration_seconds histogram');
  });
});

describe('a trace from an HTTP request to the worker', () => {
  it('carries the caller’s trace id into the job and every log line of the worker’s attempt, and times the job', async () => {
    const traceId = 'a3ce929d0e0e47364bf92f3577b34da6';
    const callerSpan = '00f067aa0ba902b7';
    const res = await fetch(`${hub.url}/api/clinics/testclinic/appointments/appt-traced/reminders`, {
      method: 'PUT',
      headers: {
        authorization: `Bearer ${await tokenFor('staff')}`,
        'content-type': 'application/json',
        traceparent: `00-${traceId}-${callerSpan}-01`,
      },
      body: JSON.stringify({ startsAt: Date.now() + 3600_000 + 1_500, contact: { channel: 'sms', address: '+819077778888' } }),
    });
    expect(res.status).toBe(200);
    const [reminder] = ((await res.json()) as { reminders: { id: string }[] }).reminders;

    // The job holds the hub's span of that request as its parent.
    const redis = new Redis(fixture.redisUrl);
    const queue = new Queue(NOTIFY_QUEUE_NAME, { connection: redis, prefix: NOTIFY_QUEUE_PREFIX });
    try {
      const job = await queue.getJob(reminder!.id);
      const [version, jobTrace, hubSpan, flags] = String(job!.data.traceparent).split('-');
      expect([version, jobTrace, flags]).toEqual(['00', traceId, '01']);
      expect(hubSpan).toMatch(/^[0-9a-f]{16}$/);
      expect(hubSpan).not.toBe(callerSpan);

      await waitFor(() => fixture.sms.accepted.find((m) => m.to === '+819077778888'), 'the reminder SMS', 15_000);
      const lines: Record<string, unknown>[] = await waitFor(() => {
        const traced = jsonLogLines(worker.logs()).filter((entry) => entry.job === reminder!.id);
        return traced.some((entry) => entry.msg === 'notification sent') ? traced : null;
      }, 'the worker to log the send');
      for (const line of lines) expect(line).toMatchObject({ trace_id: traceId, parent_span_id: hubSpan });
      expect(lines[0]!.span_id).toMatch(/^[0-9a-f]{16}$/);
      expect(JSON.stringify(lines)).not.toContain('+819077778888');

      const text = await (await fetch(`${workerUrl}/metrics`)).text();
      expect(metricValue(text, 'clinic_notify_job_duration_seconds_count', { kind: 'reminder_1h', outcome: 'sent', node: 'notify-observed' })).toBe(1);
    } finally {
      await queue.close();
      redis.disconnect();
    }
  });
});
