import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export interface ProviderRequest {
  at: number;
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
}

type Handler = (request: ProviderRequest, res: ServerResponse) => void;

/**
 * What the local provider servers share: a loopback HTTP server that records
 * every request, and knobs for failure tests — fail the next N requests with a
 * status, or hold requests without answering (a provider that took the
 * message and stalls).
 */
export class LocalHttpProvider {
  readonly requests: ProviderRequest[] = [];
  url = '';
  private server: Server | null = null;
  private failures: { remaining: number; status: number } | null = null;
  private stall: { remaining: number; held: ServerResponse[] } = { remaining: 0, held: [] };
  private stalledWaiters: (() => void)[] = [];

  constructor(private readonly handle: Handler) {}

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const request: ProviderRequest = {
          at: Date.now(),
          method: req.method ?? '',
          path: req.url ?? '',
          headers: req.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        };
        this.requests.push(request);
        if (this.failures && this.failures.remaining > 0) {
          this.failures.remaining -= 1;
          return json(res, this.failures.status, { message: 'simulated provider failure' });
        }
        if (this.stall.remaining > 0) {
          this.stall.remaining -= 1;
          // The provider takes the message, then never answers this request.
          this.handle(request, captureOnly(res));
          this.stall.held.push(res);
          for (const waiter of this.stalledWaiters.splice(0)) waiter();
          return;
        }
        this.handle(request, res);
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    if (!address || typeof address === 'string') throw new Error('no address');
    this.url = `http://127.0.0.1:${address.port}`;
    return this;
  }

  /** The next `count` requests are answered with `status` and not accepted. */
  failNext(count: number, status = 500): void {
    this.failures = { remaining: count, status };
  }

  /** The next `count` requests are accepted and then left without an answer. */
  stallNext(count = 1): void {
    this.stall.remaining = count;
  }

  /** Resolves once a request is being held. */
  whenStalled(): Promise<void> {
    if (this.stall.held.length > 0) return Promise.resolve();
    return new Promise((resolve) => this.stalledWaiters.push(resolve));
  }

  async stop(): Promise<void> {
    for (const res of this.stall.held) res.destroy();
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

export function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** A response whose answer is dropped: the handler still records what it accepted. */
function captureOnly(res: ServerResponse): ServerResponse {
  return new Proxy(res, {
    get(target, prop, receiver) {
      if (prop === 'writeHead' || prop === 'end' || prop === 'write' || prop === 'setHeader') return () => receiver;
      return Reflect.get(target, prop, target) as unknown;
    },
  });
}
