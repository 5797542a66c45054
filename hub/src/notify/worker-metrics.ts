import { Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { JOB_QUEUE_STATES, type NotifyKind } from '@clinic-hub/protocol';
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

  constructor(nodeId: string, queue: NotificationQueue) {
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
    collectDefaultMetrics({ register: this.registry });
  }

  jobFinished(kind: NotifyKind, outcome: JobOutcome, seconds: number): void {
    this.jobDuration.observe({ kind, outcome }, seconds);
  }
}
