import { connect, createServer, type Server, type Socket } from 'node:net';
import { freePort } from '@clinic-hub/platform/redis-server';

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
  /**
   * While on, what the target sends back is held (requests still arrive and are carried out); turning it off
   * passes everything held on, in order. A client's requests stay in flight for exactly as long as the test says.
   */
  holdReplies(on: boolean): void;
  close(): Promise<void>;
}

/** A TCP proxy to 127.0.0.1:targetPort that a test can cut and restore, for real disconnections. */
export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const port = await freePort();
  const sockets = new Set<Socket>();
  let server: Server | null = null;
  let swallow = false;
  let delayMs = 0;
  let holding = false;
  const releases = new Set<() => void>();

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
        const held: Buffer[] = [];
        const pass = (chunk: Buffer) => {
          // Timers of one duration fire in the order they were set: the byte stream stays in order.
          if (delayMs > 0) setTimeout(() => client.writable && client.write(chunk), delayMs);
          else client.write(chunk);
        };
        const release = () => {
          for (const chunk of held.splice(0)) pass(chunk);
        };
        releases.add(release);
        client.on('close', () => releases.delete(release));
        upstream.on('data', (chunk: Buffer) => {
          if (swallow) return;
          if (holding || held.length > 0) held.push(chunk);
          else pass(chunk);
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
    holdReplies: (on) => {
      holding = on;
      if (!on) for (const release of releases) release();
    },
    close: cut,
  };
}
