/**
 * Ending Redis connections at shutdown without waiting for a Redis that is
 * gone. Our connections are made with `maxRetriesPerRequest: null`: while
 * Redis is unreachable ioredis keeps every command, QUIT included, until it
 * comes back, so a close that awaits a QUIT, or a BullMQ queue or worker
 * that sends commands as it closes, can wait for good (a node that never
 * ended on SIGTERM: 7fc4156). A connection that is not ready is therefore
 * dropped, not asked to QUIT.
 */

/** What ending needs of a connection (ioredis's Redis and Cluster both have it). */
export interface EndableConnection {
  readonly status: string;
  quit(): Promise<unknown>;
  disconnect(): void;
}

/** QUITs a ready connection (what was sent before is answered first); drops any other at once. */
export async function endConnection(connection: EndableConnection): Promise<void> {
  if (connection.status !== 'ready') return connection.disconnect();
  await connection.quit().catch(() => connection.disconnect());
}

/**
 * Closes what runs over `connections` (BullMQ workers and queues,
 * subscribers), then ends the connections. When any of them is not ready,
 * all are dropped first so that the closing commands fail at once, and
 * `close` is told to force (a job in flight is then retried by another
 * process once its lock lapses).
 */
export async function closeOverRedis(connections: readonly EndableConnection[], close: (force: boolean) => Promise<unknown>): Promise<void> {
  const reachable = connections.every((c) => c.status === 'ready');
  if (!reachable) for (const connection of connections) connection.disconnect();
  await close(!reachable).catch(() => undefined);
  await Promise.all(connections.map(endConnection));
}
