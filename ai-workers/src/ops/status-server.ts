import { createServer } from 'node:http';
import type { Registry } from 'prom-client';
import { SECURITY_HEADERS } from '../../../hub/src/http/http-types.js';

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
 * stopping). No consultation ids, no patient data.
 */
export async function startStatusServer(options: { host: string; port: number; registry: Registry; status: () => AiWorkerStatus }): Promise<{ port: number; close(): Promise<void> }> {
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
