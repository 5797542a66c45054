import { EXIT } from './cli-error.js';
import { run } from './program.js';

/** Entry point of the `clinic` binary: runs the command, flushes output, exits with its code. */
async function main(): Promise<void> {
  // `clinic queue | head`: the reader went away; that is the end of the command, not a crash.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EPIPE') process.exit(EXIT.OK);
      throw error;
    });
  }
  let code: number;
  try {
    code = await run(process.argv.slice(2), { env: process.env, cwd: process.cwd(), exitCode: EXIT.OK });
  } catch (error) {
    process.stderr.write(`error INTERNAL: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    code = EXIT.FAILURE;
  }
  // Sockets and timers must not keep a finished command alive; wait for stdout to drain first.
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}

void main();
