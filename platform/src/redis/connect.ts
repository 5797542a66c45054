import { Redis, type RedisOptions } from 'ioredis';

/**
 * A Redis connection that reconnects by itself (forever, backing off to 2 s)
 * and fails commands fast while Redis is down instead of queueing them, so an
 * action gets STORE_UNAVAILABLE at once and the client can retry it.
 */
export function connectRedis(url: string, name: string, options: RedisOptions = {}): Redis {
  return new Redis(url, {
    connectionName: name,
    lazyConnect: false,
    enableOfflineQueue: true,
    maxRetriesPerRequest: 1,
    retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 2000),
    ...options,
  });
}

export function isRedisUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  return (
    error.name === 'MaxRetriesPerRequestError' ||
    error instanceof DeadlinePassed ||
    // "Command timed out": ioredis's commandTimeout, a Redis that is up but does not answer (stalled, overloaded).
    /Connection is closed|ECONNREFUSED|ECONNRESET|EPIPE|LOADING|Stream isn't writeable|enableOfflineQueue|Command timed out/i.test(
      error.message,
    )
  );
}

/** The store did not answer within the action's budget (HUB_ACTION_TIMEOUT_MS): STORE_UNAVAILABLE, like a Redis that is down. */
export class DeadlinePassed extends Error {
  override readonly name = 'DeadlinePassed';
}

/**
 * `work`, or a DeadlinePassed rejection after `ms`, whichever comes first. The
 * work goes on (a Redis command already sent cannot be taken back); what it
 * does after the deadline is `onLate`'s to log. Every action is safe to
 * retry with its idempotency key (requestId, clientMessageId), so a client
 * told STORE_UNAVAILABLE retries and learns whether it was done.
 */
export function withinDeadline<T>(work: Promise<T>, ms: number, onLate: (outcome: { ok: true } | { ok: false; error: unknown }) => void): Promise<T> {
  if (!(ms > 0)) return work;
  let timer: NodeJS.Timeout | undefined;
  let passed = false;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      passed = true;
      reject(new DeadlinePassed(`no answer within ${ms} ms`));
    }, ms);
  });
  work.then(
    () => passed && onLate({ ok: true }),
    (error: unknown) => passed && onLate({ ok: false, error }),
  );
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

/** Resolves true when Redis answers PING within `ms`, false when it fails or stays silent (down, or stalled). */
export async function pingWithin(redis: Redis, ms: number): Promise<boolean> {
  try {
    return (await withinDeadline(redis.ping(), ms, () => undefined)) === 'PONG';
  } catch {
    return false;
  }
}

/**
 * For a connection handed to a library that sends some commands without
 * awaiting them (the Socket.IO Redis adapter publishes broadcasts
 * fire-and-forget): while Redis is down those commands reject, and an
 * unhandled rejection would stop the whole process. Their failures go to
 * `onError` instead; a caller that does await still gets the rejection.
 */
export function catchUnawaitedFailures(client: Redis, commands: readonly string[], onError: (error: Error, command: string) => void): Redis {
  const methods = client as unknown as Record<string, (...args: unknown[]) => unknown>;
  for (const command of commands) {
    const send = methods[command]!.bind(client);
    methods[command] = (...args: unknown[]) => {
      const result = send(...args);
      if (result instanceof Promise) result.catch((error: Error) => onError(error, command));
      return result;
    };
  }
  return client;
}
