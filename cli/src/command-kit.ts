import { Option, type Command } from 'commander';
import { CliError, EXIT, type ExitCode } from './cli-error.js';
import { resolveConnection, type Connection, type ConnectionOptions } from './connection.js';
import { Output } from './output.js';

/** What a command handler gets: its output, the process's environment and the resolved hub connection. */
export interface CommandContext {
  out: Output;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Resolved on first use, so commands that need no hub (completion, profiles) never fail for lack of one. */
  connection(): Connection;
}

export interface Runtime {
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** The exit code of the command that ran. */
  exitCode: ExitCode;
}

/** --url, --token, --profile and --clinic: on every command that talks to a hub. */
export function connectionOptions(command: Command, options: { clinic?: boolean } = {}): Command {
  command
    .addOption(new Option('--url <url>', 'hub URL (else CLINIC_URL, the profile, or the local stack)'))
    .addOption(new Option('--token <token>', 'hub token (else CLINIC_TOKEN, the profile, or the local stack)'))
    .addOption(new Option('--profile <name>', 'saved profile to use (else CLINIC_PROFILE or the current one)'));
  if (options.clinic !== false) {
    command.addOption(new Option('--clinic <id>', 'clinic an all-clinics token acts for (else CLINIC_ID or the saved one)'));
  }
  return command;
}

export const jsonOption = () => new Option('--json', 'print one JSON document for scripts (errors go to stderr as {"error":{…}})');

export function examples(command: Command, lines: string[]): Command {
  return command.addHelpText('after', `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`);
}

export function toCliError(error: unknown): CliError {
  if (error instanceof CliError) return error;
  return new CliError('INTERNAL', { message: error instanceof Error ? error.message : String(error) });
}

/**
 * Wires a handler to a command: gathers its options, resolves the connection
 * on demand, and turns any error into its message and exit code.
 */
export function handle<O extends object>(
  command: Command,
  runtime: Runtime,
  run: (context: CommandContext, options: O & ConnectionOptions & { json?: boolean }, args: string[]) => Promise<void>,
): Command {
  return command.action(async (...received: unknown[]) => {
    const self = received[received.length - 1] as Command;
    const options = self.opts() as O & ConnectionOptions & { json?: boolean };
    const args = received.slice(0, self.registeredArguments.length).flat() as string[];
    const out = new Output(Boolean(options.json), process.stdout, process.stderr, runtime.env);
    let connection: Connection | null = null;
    const context: CommandContext = {
      out,
      env: runtime.env,
      cwd: runtime.cwd,
      connection: () => (connection ??= resolveConnection(options, runtime.env, runtime.cwd)),
    };
    try {
      await run(context, options, args);
      runtime.exitCode = EXIT.OK;
    } catch (error) {
      const cliError = toCliError(error);
      out.error(cliError);
      if (cliError.code === 'INTERNAL' && runtime.env.CLINIC_DEBUG && error instanceof Error) process.stderr.write(`${error.stack}\n`);
      runtime.exitCode = cliError.exitCode;
    }
  });
}
