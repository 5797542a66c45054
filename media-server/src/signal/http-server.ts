import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { MEDIA_SIGNAL_MAX_BYTES, MEDIA_SIGNAL_PATH, protocolError } from '@clinic-hub/protocol';

export interface HttpRoutes {
  /** GET routes other than the WebSocket: a status and a body, or null for 404. */
  get(path: string): Promise<{ status: number; contentType: string; body: string } | null>;
  /** A WebSocket opened at /signal. */
  connection(ws: WebSocket, request: IncomingMessage): void;
}

/**
 * Node's HTTP server with ws on /signal. Frames a little over the signalling
 * limit still arrive (and are answered PAYLOAD_TOO_LARGE by the connection);
 * far larger ones close the socket (1009) before they are buffered whole.
 */
export function startHttpServer(routes: HttpRoutes, listen: { port: number; host: string }): Promise<{ server: Server; wss: WebSocketServer; port: number }> {
  const wss = new WebSocketServer({ noServer: true, maxPayload: MEDIA_SIGNAL_MAX_BYTES * 4, perMessageDeflate: false });
  const server = createServer((request, response) => void handle(request, response));

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    const send = (status: number, contentType: string, body: string) => {
      response.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store' });
      response.end(request.method === 'HEAD' ? undefined : body);
    };
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      send(405, 'application/json; charset=utf-8', JSON.stringify({ error: protocolError('METHOD_NOT_ALLOWED', `${request.method} ${path}`) }));
      return;
    }
    try {
      const result = await routes.get(path);
      if (result) send(result.status, result.contentType, result.body);
      else send(404, 'application/json; charset=utf-8', JSON.stringify({ error: protocolError('NOT_FOUND', `${request.method} ${path}`) }));
    } catch {
      send(500, 'application/json; charset=utf-8', JSON.stringify({ error: protocolError('INTERNAL') }));
    }
  }

  server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    if (path !== MEDIA_SIGNAL_PATH) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => routes.connection(ws, request));
  });

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      const address = server.address();
      resolve({ server, wss, port: typeof address === 'object' && address ? address.port : listen.port });
    });
  });
}
