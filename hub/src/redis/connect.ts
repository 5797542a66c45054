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
