import { SECURITY_HEADERS } from '@clinic-hub/platform/http';
import type { Readable } from 'node:stream';

/** A request as the hub's routes see it, whichever server (uWS or Node HTTP) received it. */
export interface HttpRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  /** Lower-case header names. */
  headers: Record<string, string>;
  body: Buffer;
  remoteAddress: string;
}

export interface HttpResponse {
  status: number;
  headers?: Record<string, string>;
  /** A Readable is streamed (chunked, with back-pressure); if it fails half-way the connection is cut, so the client sees an incomplete body. */
  body: string | Buffer | Readable;
}

export type HttpHandler = (request: HttpRequest) => Promise<HttpResponse>;

/** How large a request body may be, and the error code of a larger one. */
export interface BodyLimit {
  maxBytes: number;
  code: string;
}

export interface ListenOptions {
  host: string;
  port: number;
  /** The limit for every route without its own. */
  maxBodyBytes: number;
  /** Routes that take larger (or smaller) bodies, such as uploads; undefined: `maxBodyBytes`. */
  bodyLimit?: (method: string, path: string) => BodyLimit | undefined;
  /**
   * Checked before the body is read, with what the request line and headers
   * say: a response refuses the request at once (the connection is then
   * closed, the body never read), undefined lets it on. For routes whose
   * bodies are large (uploads), so that a caller without a valid token
   * cannot make a node read and hold megabytes.
   */
  preflight?: (method: string, path: string, headers: Record<string, string>) => HttpResponse | undefined;
  /** Headers on every response; default SECURITY_HEADERS. */
  securityHeaders?: Record<string, string>;
}

/** The limit for one request, and the body of the 413 answer to a body over it. */
export function bodyLimitFor(options: ListenOptions, method: string, path: string): BodyLimit & { tooLarge: string } {
  const limit = options.bodyLimit?.(method, path) ?? { maxBytes: options.maxBodyBytes, code: 'PAYLOAD_TOO_LARGE' };
  return {
    ...limit,
    tooLarge: JSON.stringify({ error: { code: limit.code, message: 'The request body is larger than this route accepts.', detail: `over ${limit.maxBytes} bytes` } }),
  };
}

/** A running HTTP + Socket.IO server. */
export interface HubServer {
  kind: 'uws' | 'node';
  port: number;
  /**
   * uWebSockets.js only: one message to every WebSocket subscribed to a
   * topic, in one pass (Socket.IO subscribes each WebSocket to its rooms').
   */
  publish?(topic: string, message: string): void;
  /** Stops accepting connections and closes the listening socket. */
  close(): Promise<void>;
}

export const STATUS_TEXT: Record<number, string> = {
  200: 'OK',
  201: 'Created',
  204: 'No Content',
  304: 'Not Modified',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/**
 * SECURITY_HEADERS, plus Strict-Transport-Security when people reach the hub
 * over https (HUB_PUBLIC_URL): TLS ends at the load balancer, which passes
 * the header on to browsers, and browsers heed it only over https.
 */
export function securityHeadersFor(publicUrl: string | null): Record<string, string> {
  return publicUrl?.startsWith('https:') ? { ...SECURITY_HEADERS, 'strict-transport-security': 'max-age=31536000' } : SECURITY_HEADERS;
}
