import { connect, createServer, type Server, type Socket } from 'node:net';
import { freePort } from '../../src/redis/redis-process.js';

export interface TcpProxy {
  port: number;
  url: string;
  /** Drops every connection and stops listening: clients see the network go away. */
  cut(): Promise<void>;
  /** Listens again on the same port. */
  restore(): Promise<void>;
  /** Drops every connection but keeps listening: clients reconnect at once (a network blip). */
  reset(): void;
  /**
   * While on, what the target sends back is thrown away: requests arrive and
   * are carried out, their replies are lost.
   */
  swallowReplies(on: boolean): void;
  /** Holds what the target sends back for `ms` before passing it on, in order: a slow network or a busy server. */
  delayReplies(ms: number): void;
  close(): Promise<void>;
}

/** A TCP proxy to 127.0.0.1:targetPort that a test can cut and restore, for real disconnections. */
export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const port = await freePort();
  const sockets = new Set<Socket>();
  let server: Server | null = null;
  let swallow = false;
  let delayMs = 0;

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const s = createServer((client) => {
        const upstream = connect(targetPort, '127.0.0.1');
        for (const socket of [client, upstream]) {
          sockets.add(socket);
          socket.on('close', () => sockets.delete(socket));
          socket.on('error', () => undefined);
        }
        client.pipe(upstream);
        upstream.on('data', (chunk: Buffer) => {
          if (swallow) return;
          // Timers of one duration fire in the order they were set: the byte stream stays in order.
          if (delayMs > 0) setTimeout(() => client.writable && client.write(chunk), delayMs);
          else client.write(chunk);
        });
        client.on('close', () => upstream.destroy());
        upstream.on('close', () => client.destroy());
      });
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => {
        server = s;
        resolve();
      });
    });

  const reset = () => {
    for (const socket of sockets) socket.destroy();
    sockets.clear();
  };

  const cut = async () => {
    const s = server;
    server = null;
    reset();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  };

  await listen();
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    cut,
    restore: listen,
    reset,
    swallowReplies: (on) => {
      swallow = on;
    },
    delayReplies: (ms) => {
      delayMs = ms;
    },
    close: cut,
  };
}
