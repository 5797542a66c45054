import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { collectProcessMetrics } from '@clinic-hub/platform/process';
import { JOB_QUEUE_STATES, type NotifyKind } from '@clinic-hub/protocol';
import type { PushResult } from './channels/in-app-channel.js';
import type { NotificationQueue } from './notification-service.js';

/** How one attempt at a job ended, as the job duration histogram labels it. */
export type JobOutcome = 'sent' | 'already_sent' | 'skipped' | 'delayed' | 'retry' | 'dead_letter';

/** A scrape waits at most this long for Redis; the counts of the last good read are kept otherwise. */
const COUNTS_TIMEOUT_MS = 2000;

/**
 * The notification worker's Prometheus metrics, served on its own port
 * (NOTIFY_METRICS_PORT, worker-status-server.ts). Labels are kinds, outcomes
 * and states only: never an address or a ticket.
 */
export class NotifyWorkerMetrics {
  readonly registry = new Registry();
  readonly jobDuration: Histogram<'kind' | 'outcome'>;
  readonly webPush: Counter<'outcome'>;

  /** `inboxDepth`: notices waiting in one clinic's patients' inboxes; `clinicIds`: the clinics to count. */
  constructor(nodeId: string, queue: NotificationQueue, inboxDepth: (clinic: string) => Promise<number>, clinicIds: () => string[]) {
    this.registry.setDefaultLabels({ node: nodeId });
    this.jobDuration = new Histogram({
      name: 'clinic_notify_job_duration_seconds',
      help: 'One attempt at a notification job in this worker, from pick-up to outcome (the provider call included), by kind and outcome',
      labelNames: ['kind', 'outcome'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [this.registry],
    });
    new Gauge({
      name: 'clinic_notify_queue_jobs',
      help: 'Notification jobs in the queue by BullMQ state (shared by every worker: read it from one); failed = dead letters kept',
      labelNames: ['state'],
      registers: [this.registry],
      async collect() {
        let timer: NodeJS.Timeout | undefined;
        const counts = await Promise.race([
          queue.getJobCounts(...JOB_QUEUE_STATES).catch(() => null),
          new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), COUNTS_TIMEOUT_MS))),
        ]);
        clearTimeout(timer);
        if (!counts) return;
        for (const state of JOB_QUEUE_STATES) this.set({ state }, counts[state] ?? 0);
      },
    });
    this.webPush = new Counter({
      name: 'clinic_notify_web_push_total',
      help: 'Web Push messages this worker tried, by outcome: sent (the push service took it), failed (refused or unreachable: the notice went to the page inbox or by SMS), gone (404/410: the subscription was forgotten)',
      labelNames: ['outcome'],
      registers: [this.registry],
    });
    for (const outcome of ['sent', 'failed', 'gone'] as const) this.webPush.inc({ outcome }, 0);
    new Gauge({
      name: 'clinic_notify_inbox_notices',
      help: "In-app notices waiting for a patient's page to come back (kept in inboxes: not seen, not pushed), by clinic (shared by every worker: read it from one)",
      labelNames: ['clinic'],
      registers: [this.registry],
      async collect() {
        let timer: NodeJS.Timeout | undefined;
        const depths = await Promise.race([
          Promise.all(clinicIds().map(async (clinic) => [clinic, await inboxDepth(clinic)] as const)).catch(() => null),
          new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), COUNTS_TIMEOUT_MS))),
        ]);
        clearTimeout(timer);
        if (!depths) return;
        for (const [clinic, depth] of depths) this.set({ clinic }, depth);
      },
    });
    collectProcessMetrics(this.registry);
  }

  pushFinished(result: Exclude<PushResult, 'no_subscription'>): void {
    this.webPush.inc({ outcome: result });
  }

  jobFinished(kind: NotifyKind, outcome: JobOutcome, seconds: number): void {
    this.jobDuration.observe({ kind, outcome }, seconds);
  }
}
