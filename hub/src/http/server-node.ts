import { createServer, type IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import type { Server as SocketServer } from 'socket.io';
import type { HttpHandler, HubServer, ListenOptions } from './http-types.js';
import { SECURITY_HEADERS } from '@clinic-hub/platform/http';
import { bodyLimitFor } from './http-types.js';

/** Socket.IO (with ws) and the hub's HTTP routes on Node's own HTTP server: the fallback and the benchmark baseline. */
export async function startNodeServer(
  io: SocketServer,
  handler: HttpHandler,
  options: ListenOptions,
): Promise<HubServer> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://hub');
    const limit = bodyLimitFor(options, (req.method ?? 'GET').toUpperCase(), url.pathname);
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) if (typeof value === 'string') headers[name] = value;
    const refused = options.preflight?.((req.method ?? 'GET').toUpperCase(), url.pathname, headers);
    if (refused) {
      // The body is never read: the connection closes after this response.
      res.writeHead(refused.status, { ...(options.securityHeaders ?? SECURITY_HEADERS), ...refused.headers, connection: 'close' });
      res.end(refused.body instanceof Readable ? '' : refused.body, () => req.destroy());
      return;
    }
    readBody(req, limit.maxBytes)
      .then((body) => {
        if (body === null) return { status: 413, headers: { 'content-type': 'application/json' }, body: limit.tooLarge };
        return handler({
          method: (req.method ?? 'GET').toUpperCase(),
          path: url.pathname,
          query: url.searchParams,
          headers,
          body,
          remoteAddress: req.socket.remoteAddress ?? '',
        });
      })
      .then(
        (response) => {
          res.writeHead(response.status, { ...(options.securityHeaders ?? SECURITY_HEADERS), ...response.headers });
          if (response.body instanceof Readable) {
            const body = response.body;
            body.once('error', () => res.destroy());
            res.once('close', () => body.destroy());
            body.pipe(res);
            return;
          }
          res.end(response.body);
        },
        () => {
          res.writeHead(500, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: { code: 'INTERNAL' } }));
        },
      );
  });
  io.attach(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  return {
    kind: 'node',
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(tooLarge ? null : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
