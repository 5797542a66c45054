import { createServer } from 'node:http';
import type { Registry } from 'prom-client';
import { SECURITY_HEADERS } from '../http/security-headers.js';

export interface WorkerStatus {
  node: string;
  /** Whether Redis answers the worker's connection. */
  redis: 'up' | 'down';
  /** False once the worker is stopping (it finishes the jobs in hand, takes no new one). */
  running: boolean;
}

export interface WorkerStatusServer {
  port: number;
  close(): Promise<void>;
}

/**
 * A worker's own small HTTP endpoint (the notification worker's, the AI
 * worker's), for Prometheus and for health checks: `GET /metrics`,
 * `GET /healthz` (200 while Redis answers, 503 while not: the worker
 * reconnects by itself), `GET /readyz` (503 as well once it is stopping).
 * Nothing else, and no patient data anywhere: the status is shown as it is.
 */
export async function startWorkerStatusServer<S extends { redis: 'up' | 'down'; running: boolean } = WorkerStatus>(options: {
  host: string;
  port: number;
  registry: Registry;
  status: () => S;
}): Promise<WorkerStatusServer> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://worker').pathname;
    const send = (status: number, contentType: string, body: string) => {
      res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': contentType, 'cache-control': 'no-store' });
      res.end(body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'application/json', JSON.stringify({ error: { code: 'METHOD_NOT_ALLOWED' } }));
    if (path === '/metrics') {
      options.registry.metrics().then(
        (text) => send(200, options.registry.contentType, text),
        () => send(500, 'application/json', JSON.stringify({ error: { code: 'INTERNAL' } })),
      );
      return;
    }
    if (path === '/healthz' || path === '/readyz') {
      const status = options.status();
      const ok = status.redis === 'up' && (path === '/healthz' || status.running);
      return send(ok ? 200 : 503, 'application/json', JSON.stringify({ status: ok ? 'ok' : 'degraded', ...status }));
    }
    send(404, 'application/json', JSON.stringify({ error: { code: 'NOT_FOUND' } }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : options.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
