import { CliError, hubError } from './cli-error.js';
import { unreachableHint, type Connection } from './connection.js';

const TIMEOUT_MS = 8_000;

/** Calls one of the hub's HTTP routes with the connection's token; hub errors become CliErrors. */
export async function hubRequest<T>(
  connection: Pick<Connection, 'url' | 'token'> & Partial<Connection>,
  path: string,
  init: { method?: 'GET' | 'POST' | 'PUT' | 'DELETE'; body?: unknown; auth?: boolean } = {},
): Promise<T> {
  let response: Response;
  try {
    response = await fetch(`${connection.url}${path}`, {
      method: init.method ?? 'GET',
      headers: {
        accept: 'application/json',
        ...(init.auth === false ? {} : { authorization: `Bearer ${connection.token}` }),
        ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (error) {
    const timedOut = (error as Error).name === 'TimeoutError';
    throw new CliError(timedOut ? 'HUB_NO_ANSWER' : 'HUB_UNREACHABLE', {
      message: timedOut ? `The hub at ${connection.url} did not answer within ${TIMEOUT_MS / 1000} s.` : `Cannot reach the hub at ${connection.url}.`,
      detail: causeOf(error),
      hint: connection.source ? unreachableHint(connection as Connection) : 'check the URL and that the hub runs',
    });
  }
  const text = await response.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : {};
  } catch {
    throw new CliError('HUB_UNREACHABLE', {
      message: `${connection.url}${path} answered ${response.status} with something that is not the hub's JSON.`,
      hint: 'check that the URL points at a Clinic Hub',
    });
  }
  const error = (body as { error?: { code?: unknown } }).error;
  if (!response.ok && error && typeof error === 'object') throw hubError(error);
  if (!response.ok && path !== '/healthz') {
    throw new CliError(response.status >= 500 ? 'HUB_UNREACHABLE' : 'INTERNAL', { message: `${path} answered HTTP ${response.status}.` });
  }
  return body as T;
}

function causeOf(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (error as Error).message;
}

export interface Health {
  status: 'ok' | 'degraded';
  node: string;
  server: string;
  redis: 'up' | 'down';
  uptimeSeconds: number;
}
