import { Command, CommanderError } from 'commander';
import { CliError, EXIT, EXIT_CODES_HELP } from './cli-error.js';
import type { Runtime } from './command-kit.js';
import { registerActionCommands } from './commands/actions.js';
import { registerBenchCommand } from './commands/bench.js';
import { registerCompletionCommand } from './commands/completion.js';
import { registerDisplaysCommand } from './commands/displays.js';
import { registerLoginCommands } from './commands/login.js';
import { registerModelsCommands } from './commands/models.js';
import { registerNotifyCommands } from './commands/notify.js';
import { registerQueueCommand } from './commands/queue.js';
import { registerRecordingsCommands } from './commands/recordings.js';
import { registerRoomsCommand } from './commands/rooms.js';
import { registerSettingsCommands } from './commands/settings.js';
import { registerStatusCommand } from './commands/status.js';
import { registerTokenCommands } from './commands/token.js';
import { registerWorkersCommand } from './commands/workers.js';
import { registerWebhooksCommand } from './commands/webhooks.js';
import { Output } from './output.js';

const ROOT_HELP = `
Which hub: --url/--token, else CLINIC_URL/CLINIC_TOKEN, else --profile (or
CLINIC_PROFILE, or the current profile saved by \`clinic login\`), else the
stack started with \`npm start\` on this machine (var/local.json in this
directory or a parent). All-clinics admin tokens act for --clinic, CLINIC_ID,
the profile's clinic or the local stack's clinic.

Examples:
  $ clinic status                          # on the machine that ran npm start
  $ clinic login --url https://hub.example.jp --token "$TOKEN"
  $ clinic queue --watch                   # live view: n call next, r recall, d done, ? help
  $ clinic checkin --dept internal --urgent
  $ clinic call-next --dept internal --room room1 --json
  $ clinic call-next --dept online --room video1     # online: admits to video
  $ clinic notify                          # dead letters and pending notices
  $ clinic bench                           # latency benchmarks on this machine

${EXIT_CODES_HELP}

Errors print their code, the hub's message and what to do next; with --json
they go to stderr as {"error":{"code","message","detail","hint"}}. No colour
when output is not a terminal or NO_COLOR is set.

\`clinic workers\` asks the hub (GET /api/ops/workers) like the commands above.
\`clinic models\` runs on an AI worker's machine without the hub: it reads the
models directory (AI_MODELS_DIR) and downloads from the model hub
(AI_MODELS_HUB_URL).
`;

export function buildProgram(runtime: Runtime): Command {
  const program = new Command('clinic')
    .description('Clinic Hub operations: waiting-room queues, displays, tokens and hub health')
    .version('0.1.0', '-V, --version')
    .addHelpText('after', ROOT_HELP);
  program.configureHelp({ sortSubcommands: false, helpWidth: 100 });

  registerStatusCommand(program, runtime);
  registerQueueCommand(program, runtime);
  registerDisplaysCommand(program, runtime);
  registerRoomsCommand(program, runtime);
  registerRecordingsCommands(program, runtime);
  registerNotifyCommands(program, runtime);
  registerWorkersCommand(program, runtime);
  registerWebhooksCommand(program, runtime);
  registerSettingsCommands(program, runtime);
  registerModelsCommands(program, runtime);
  registerActionCommands(program, runtime);
  registerTokenCommands(program, runtime);
  registerLoginCommands(program, runtime);
  registerBenchCommand(program, runtime);
  registerCompletionCommand(program, runtime);

  // Usage errors exit 2 (commander's own default is 1); with --json they are a JSON error on stderr too.
  const wantsJson = () => process.argv.includes('--json');
  const applyToAll = (command: Command) => {
    command.exitOverride();
    command.configureOutput({
      outputError: (text, write) => {
        const message = text.replace(/^error: /, '').trim();
        // Ids made before the hub stopped issuing them could begin with "-"; "--" ends the options.
        const hint = /unknown option '-/.test(message) ? 'if that is an id, put -- before it (clinic skip -- -abc)' : 'add --help for usage and examples';
        if (wantsJson()) new Output(true, process.stdout, process.stderr, runtime.env).error(new CliError('USAGE', { message, hint }));
        else write(`${text}(${hint})\n`);
      },
    });
    for (const sub of command.commands) applyToAll(sub);
  };
  applyToAll(program);
  return program;
}

/** Runs one command line; resolves with the exit code. */
export async function run(argv: string[], runtime: Runtime): Promise<number> {
  const program = buildProgram(runtime);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return runtime.exitCode;
  } catch (error) {
    // Help and version exit 0; every other commander error (unknown option, missing argument, bare `clinic`) is a usage error.
    if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    throw error;
  }
}
