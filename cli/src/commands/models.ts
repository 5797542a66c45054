import { resolve } from 'node:path';
import type { Command } from 'commander';
import { Option } from 'commander';
import type { PullProgress } from '@clinic-hub/ai-workers/models';
import { CliError } from '../cli-error.js';
import { examples, handle, jsonOption, type Runtime } from '../command-kit.js';
import { bytes, table } from '../output.js';

/** The repository this CLI belongs to: its var/models is where `npm run ai:worker` looks by default. */
const REPO = resolve(import.meta.dirname, '../../..');
const DEFAULT_HUB = 'https://huggingface.co';

const modelOptions = (command: Command) =>
  command
    .addOption(new Option('--models-dir <dir>', 'models directory (else AI_MODELS_DIR, else var/models of this repository)'))
    .addOption(new Option('--manifest <file>', 'models manifest (else AI_MODELS_MANIFEST, else ai-workers/models/manifest.json)'));

interface ModelFlags {
  modelsDir?: string;
  manifest?: string;
}

/** Loaded when a models command runs, not at start-up. */
const modelsModule = () => import('@clinic-hub/ai-workers/models');

const where = (options: ModelFlags, env: NodeJS.ProcessEnv, cwd: string, defaultManifest: string) => ({
  modelsDir: options.modelsDir ? resolve(cwd, options.modelsDir) : env.AI_MODELS_DIR ? resolve(cwd, env.AI_MODELS_DIR) : resolve(REPO, 'var/models'),
  manifestPath: options.manifest ? resolve(cwd, options.manifest) : env.AI_MODELS_MANIFEST ? resolve(cwd, env.AI_MODELS_MANIFEST) : defaultManifest,
});

/** AI errors as CLI errors: the same codes, the worker's wording. */
function asCliError(error: unknown, AiError: Awaited<ReturnType<typeof modelsModule>>['AiError']): unknown {
  if (error instanceof AiError) return new CliError(error.code, { ...(error.detail ? { detail: error.detail } : {}) });
  return error;
}

export function registerModelsCommands(program: Command, runtime: Runtime): void {
  const models = program
    .command('models')
    .summary('speech-to-text and emotion models: list, pull (on AI worker machines)')
    .description(
      'Models of the AI workers. `pull` downloads a model of the manifest from its hub (Hugging Face layout) into the models directory, ' +
        'checking every file\'s SHA-256; workers load models only from there and never download. Runs where the workers run, on their models directory ' +
        '(--models-dir, else AI_MODELS_DIR) and model hub (--hub-url, else AI_MODELS_HUB_URL); needs no hub login.',
    );
  examples(models, ['clinic models', 'clinic models pull wav2vec2-base-960h-en', 'AI_MODELS_HUB_URL=https://hf-mirror.internal clinic models pull ser-ja --force']);

  const list = modelOptions(models.command('list', { isDefault: true }))
    .summary('models in the manifest and what is installed (the default)')
    .description('each model of the manifest (installed, outdated, missing, unpinned) and any folder in the models directory that the manifest does not name (local)')
    .addOption(jsonOption());
  examples(list, ['clinic models list', 'clinic models list --json | jq -r ".models[] | select(.status != \\"installed\\") | .name"']);
  handle<ModelFlags>(list, runtime, async ({ out, env, cwd }, options) => {
    const { listModels, readManifest, DEFAULT_MANIFEST, AiError } = await modelsModule();
    const { modelsDir, manifestPath } = where(options, env, cwd, DEFAULT_MANIFEST);
    let rows;
    try {
      rows = listModels(modelsDir, readManifest(manifestPath));
    } catch (error) {
      throw asCliError(error, AiError);
    }
    if (out.json) return out.data({ modelsDir, manifest: manifestPath, models: rows });
    const s = out.style;
    out.line(`${s.bold('Models')} ${s.dim(`in ${modelsDir}`)}`);
    if (rows.length === 0) return out.line('  none in the manifest, none installed');
    const colour = (status: string) => (status === 'installed' ? s.green(status) : status === 'local' ? s.cyan(status) : s.yellow(status));
    for (const line of table(
      ['NAME', 'STATUS', 'TASK', 'LANG', 'REPO', 'REVISION', 'SIZE'],
      rows.map((r) => [r.name, colour(r.status), r.task, r.language ?? '-', r.repo ?? '-', r.revision?.slice(0, 12) ?? '-', r.bytes === null ? '-' : bytes(r.bytes)]),
      { headerStyle: s.dim },
    ))
      out.line(`  ${line}`);
    if (rows.some((r) => r.status === 'unpinned')) out.line(s.dim('  unpinned: the manifest has no revision or SHA-256 for it yet (docs/ai-workers.md, "Pinning a model")'));
  });

  const pull = modelOptions(models.command('pull'))
    .argument('<name>', 'model name in the manifest')
    .summary('download a model, checking each file\'s SHA-256')
    .description(
      'downloads every file of the model from <hub>/<repo>/resolve/<revision>/<file> (AI_MODELS_HUB_URL, default https://huggingface.co; HF_TOKEN for gated repositories) ' +
        'into a temporary folder, checks each against the manifest\'s SHA-256, then replaces the installed copy. A mismatch or a missing file installs nothing.',
    )
    .addOption(new Option('--hub-url <url>', 'model hub (else AI_MODELS_HUB_URL, else https://huggingface.co)'))
    .option('--force', 'download again even if the installed copy matches the manifest')
    .addOption(jsonOption());
  examples(pull, ['clinic models pull wav2vec2-base-960h-en', 'clinic models pull wav2vec2-base-960h-en --force --json']);
  handle<ModelFlags & { hubUrl?: string; force?: boolean }>(pull, runtime, async ({ out, env, cwd }, options, [name]) => {
    const { pullModel, DEFAULT_MANIFEST, AiError } = await modelsModule();
    const { modelsDir, manifestPath } = where(options, env, cwd, DEFAULT_MANIFEST);
    const hubUrl = options.hubUrl ?? env.AI_MODELS_HUB_URL ?? DEFAULT_HUB;
    if (!/^https?:\/\//.test(hubUrl)) throw new CliError('USAGE', { message: '--hub-url / AI_MODELS_HUB_URL must start with https:// (or http:// for a local mirror)' });
    const tty = process.stderr.isTTY === true && !out.json;
    const progress = (p: PullProgress) => {
      if (out.json) return;
      const label = `[${p.index + 1}/${p.files}] ${p.file}`;
      const amount = p.total ? `${bytes(p.bytes)} / ${bytes(p.total)} ${Math.floor((p.bytes / p.total) * 100)}%` : bytes(p.bytes);
      if (tty) process.stderr.write(`\r\u001B[2K${label}  ${amount}${p.done ? '  sha256 ok\n' : ''}`);
      else if (p.done) process.stderr.write(`${label}  ${bytes(p.bytes)}  sha256 ok\n`);
    };
    let result;
    try {
      result = await pullModel({ name: name!, modelsDir, hubUrl, manifestPath, force: options.force === true, token: env.HF_TOKEN, onProgress: progress });
    } catch (error) {
      if (tty) process.stderr.write('\n');
      throw asCliError(error, AiError);
    }
    if (out.json) return out.data(result);
    if (result.status === 'up-to-date') out.line(`${name} is up to date in ${result.dir} (${result.repo}@${result.revision.slice(0, 12)}); --force downloads it again.`);
    else
      out.line(
        `Pulled ${name}: ${result.files.length} files, ${bytes(result.files.reduce((sum, f) => sum + f.bytes, 0))}, every SHA-256 as in the manifest, into ${result.dir}. ` +
          'Restart the AI workers that use it.',
      );
  });
}
