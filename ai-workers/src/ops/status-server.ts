import type { Registry } from 'prom-client';
import { startWorkerStatusServer, type WorkerStatusServer } from '@clinic-hub/platform/status-server';

export interface AiWorkerStatus {
  worker: string;
  redis: 'up' | 'down';
  /** False once the worker is stopping. */
  running: boolean;
  sessions: number;
}

/**
 * The AI worker's HTTP endpoint (AI_METRICS_PORT): `GET /metrics`,
 * `GET /healthz` (200 while Redis answers), `GET /readyz` (503 as well once
 * stopping), served like the notification worker's. No consultation ids, no
 * patient data.
 */
export function startStatusServer(options: { host: string; port: number; registry: Registry; status: () => AiWorkerStatus }): Promise<WorkerStatusServer> {
  return startWorkerStatusServer(options);
}
