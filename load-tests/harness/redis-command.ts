import { connect } from 'node:net';

/**
 * Sends one command to Redis over RESP and resolves with its reply: the text of
 * a simple string ("OK"), an integer as text, or a bulk string. Enough for
 * FLUSHALL and INFO without a client library.
 */
export function redisCommand(port: number, args: string[], timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`redis ${args[0]} timed out`));
    }, timeoutMs);
    let reply = Buffer.alloc(0);
    const done = (error: Error | null, value?: string) => {
      clearTimeout(timer);
      socket.end();
      if (error) reject(error);
      else resolve(value ?? '');
    };
    socket.on('error', (error) => done(error));
    socket.on('data', (chunk: Buffer) => {
      reply = Buffer.concat([reply, chunk]);
      const end = reply.indexOf('\r\n');
      if (end < 0) return;
      const line = reply.subarray(0, end).toString();
      const kind = line[0];
      if (kind === '-') return done(new Error(`redis ${args[0]}: ${line.slice(1)}`));
      if (kind === '+' || kind === ':') return done(null, line.slice(1));
      if (kind === '$') {
        const length = Number(line.slice(1));
        if (length < 0) return done(null, '');
        if (reply.length < end + 2 + length) return;
        return done(null, reply.subarray(end + 2, end + 2 + length).toString());
      }
      done(new Error(`redis ${args[0]}: unexpected reply ${line.slice(0, 40)}`));
    });
    socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
  });
}

/** One field of INFO, as a number (NaN when absent). */
export async function redisInfoNumber(port: number, section: string, field: string): Promise<number> {
  const info = await redisCommand(port, ['INFO', section]);
  const match = new RegExp(`^${field}:(\\S+)`, 'm').exec(info);
  return match ? Number(match[1]) : NaN;
}
