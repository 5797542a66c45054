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
    /Connection is closed|ECONNREFUSED|ECONNRESET|EPIPE|LOADING|Stream isn't writeable|enableOfflineQueue/i.test(
      error.message,
    )
  );
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
