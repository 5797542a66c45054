import { Readable } from 'node:stream';
import type { Server as SocketServer } from 'socket.io';
import type { HttpHandler, HubServer, ListenOptions } from './http-types.js';
import { SECURITY_HEADERS } from '@clinic-hub/platform/http';
import { STATUS_TEXT, bodyLimitFor } from './http-types.js';

/** uWebSockets.js ListenOptions.LIBUS_LISTEN_EXCLUSIVE_PORT: no SO_REUSEPORT. */
const EXCLUSIVE_PORT = 1;

type Uws = typeof import('uWebSockets.js');

/** Loads uWebSockets.js; null when its native build does not load on this platform. */
export async function loadUws(): Promise<{ uws: Uws } | { error: Error }> {
  try {
    const mod = (await import('uWebSockets.js')) as unknown as { default?: Uws } & Uws;
    return { uws: mod.default ?? mod };
  } catch (error) {
    return { error: error as Error };
  }
}

/** Socket.IO and the hub's HTTP routes on one uWebSockets.js app. */
export async function startUwsServer(
  uws: Uws,
  io: SocketServer,
  handler: HttpHandler,
  options: ListenOptions,
): Promise<HubServer> {
  const app = uws.App();
  io.attachApp(app);

  app.any('/*', (res, req) => {
    // uWS gives access to the request only synchronously: copy what the routes need.
    const method = req.getMethod().toUpperCase();
    const url = req.getUrl();
    const query = new URLSearchParams(req.getQuery() ?? '');
    const headers: Record<string, string> = {};
    req.forEach((name, value) => {
      headers[name] = value;
    });
    const remoteAddress = Buffer.from(res.getRemoteAddressAsText()).toString();
    let aborted = false;
    let streaming: Readable | null = null;
    res.onAborted(() => {
      aborted = true;
      streaming?.destroy();
    });

    const limit = bodyLimitFor(options, method, url);
    const chunks: Buffer[] = [];
    let size = 0;
    const respond = (status: number, responseHeaders: Record<string, string>, body: string | Buffer | Readable, closeConnection = false) => {
      if (aborted) {
        if (body instanceof Readable) body.destroy();
        return;
      }
      res.cork(() => {
        res.writeStatus(`${status} ${STATUS_TEXT[status] ?? ''}`);
        for (const [name, value] of Object.entries({ ...(options.securityHeaders ?? SECURITY_HEADERS), ...responseHeaders })) res.writeHeader(name, value);
        if (!(body instanceof Readable)) res.end(body, closeConnection);
      });
      if (body instanceof Readable) streamBody(body);
    };
    // Chunked, with back-pressure: uWS buffers what write() cannot send yet, and the stream waits for onWritable.
    const streamBody = (body: Readable) => {
      streaming = body;
      body.on('data', (chunk: Buffer) => {
        if (aborted) return;
        let sent = true;
        res.cork(() => {
          sent = res.write(chunk);
        });
        if (!sent) {
          body.pause();
          res.onWritable(() => {
            body.resume();
            return true;
          });
        }
      });
      body.once('end', () => {
        if (!aborted) res.cork(() => res.end());
      });
      // A failure half-way cuts the connection: the client must not take a short body for a whole one.
      body.once('error', () => {
        if (!aborted) {
          aborted = true;
          res.close();
        }
      });
    };
    const refuseTooLarge = () => {
      respond(413, { 'content-type': 'application/json' }, limit.tooLarge);
      aborted = true;
    };
    // A body over the limit is read to its end and dropped, so that the client, still sending, gets the 413
    // instead of a broken connection; one far over it (or announced so) is refused at once.
    const hardLimit = limit.maxBytes * 2 + 1_048_576;
    if (Number(headers['content-length'] ?? 0) > hardLimit) {
      refuseTooLarge();
      return;
    }
    const refused = options.preflight?.(method, url, headers);
    if (refused) {
      // The body is never read: the connection closes after this response.
      respond(refused.status, refused.headers ?? {}, refused.body instanceof Readable ? '' : refused.body, true);
      aborted = true;
      return;
    }
    res.onData((chunk, isLast) => {
      if (aborted) return;
      size += chunk.byteLength;
      if (size > limit.maxBytes) {
        chunks.length = 0;
        if (isLast || size > hardLimit) refuseTooLarge();
        return;
      }
      chunks.push(Buffer.from(chunk.slice(0)));
      if (!isLast) return;
      handler({ method, path: url, query, headers, body: Buffer.concat(chunks), remoteAddress }).then(
        (response) => respond(response.status, response.headers ?? {}, response.body),
        () => respond(500, { 'content-type': 'application/json' }, JSON.stringify({ error: { code: 'INTERNAL' } })),
      );
    });
  });

  // The port alone (LIBUS_LISTEN_EXCLUSIVE_PORT): by default uWebSockets.js sets SO_REUSEPORT, so a second hub started on
  // a taken port listened beside the first and the kernel split new connections between them (seen in CI: a
  // benchmark's clients reached another test's hub and were refused AUTH_INVALID). Now the second one fails to start.
  const exclusive = app.listen as unknown as (host: string, port: number, options: number, cb: (socket: unknown) => void) => void;
  const listenSocket = await new Promise<unknown>((resolve, reject) => {
    exclusive.call(app, options.host, options.port, EXCLUSIVE_PORT, (socket) => (socket ? resolve(socket) : reject(new Error(`cannot listen on ${options.host}:${options.port} (in use?)`))));
  });
  const port = uws.us_socket_local_port(listenSocket as never);

  return {
    kind: 'uws',
    port,
    publish: (topic, message) => void app.publish(topic, message, false),
    async close() {
      uws.us_listen_socket_close(listenSocket as never);
      // close() exists at run time (uWS ≥ 20.x) but is missing from the typings.
      (app as unknown as { close(): void }).close();
    },
  };
}
