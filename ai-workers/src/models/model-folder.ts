import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { AiError } from '../errors.js';

/** What `clinic models pull` writes next to a model's files: where they came from and their checksums. */
export const PULL_RECORD_FILE = '.clinic-model.json';

export const PullRecord = z.object({
  name: z.string(),
  repo: z.string(),
  revision: z.string(),
  task: z.enum(['ctc', 'audio-classification']),
  pulledAt: z.number(),
  files: z.array(z.object({ path: z.string(), sha256: z.string().regex(/^[0-9a-f]{64}$/), bytes: z.number().int().min(0) })),
});
export type PullRecord = z.infer<typeof PullRecord>;

export type ModelTask = PullRecord['task'];

/** Files each engine needs, as Optimum exports them. One of `vocab.json`/`tokenizer.json` is enough for CTC. */
const REQUIRED: Record<ModelTask, string[][]> = {
  ctc: [['model.onnx'], ['vocab.json', 'tokenizer.json'], ['preprocessor_config.json']],
  'audio-classification': [['model.onnx'], ['config.json'], ['preprocessor_config.json']],
};

export const pullHint = (name: string, force = false) => `run \`clinic models pull ${name}${force ? ' --force' : ''}\``;

/**
 * A model folder the worker may load: `<modelsDir>/<name>`, with the files its
 * engine needs, each matching the SHA-256 recorded when it was pulled.
 * Anything missing or damaged stops the worker with the file and the command
 * that fixes it. A folder exported by hand (optimum-cli) without a pull
 * record is accepted as it is.
 */
export async function openModelFolder(modelsDir: string, name: string, task: ModelTask, options: { verify: boolean }): Promise<{ dir: string; record: PullRecord | null }> {
  const dir = join(modelsDir, name);
  if (!existsSync(dir)) throw new AiError('AI_MODEL_MISSING', `model "${name}" is not in ${modelsDir}: ${pullHint(name)}`);
  for (const alternatives of REQUIRED[task]) {
    if (!alternatives.some((file) => existsSync(join(dir, file)))) {
      throw new AiError('AI_MODEL_MISSING', `model "${name}" has no ${alternatives.join(' or ')} in ${dir}: ${pullHint(name, true)}`);
    }
  }
  const recordFile = join(dir, PULL_RECORD_FILE);
  if (!existsSync(recordFile)) return { dir, record: null };
  const parsed = PullRecord.safeParse(readJson(recordFile, name));
  if (!parsed.success) throw new AiError('AI_MODEL_INVALID', `${recordFile} is not a pull record: ${pullHint(name, true)}`);
  if (parsed.data.task !== task) {
    throw new AiError('AI_MODEL_INVALID', `model "${name}" is a ${parsed.data.task} model, configured here for ${task}`);
  }
  for (const file of parsed.data.files) {
    const path = join(dir, file.path);
    if (!existsSync(path)) throw new AiError('AI_MODEL_MISSING', `model "${name}" lacks ${file.path}: ${pullHint(name, true)}`);
    if (statSync(path).size !== file.bytes) throw new AiError('AI_MODEL_INVALID', `${path} has ${statSync(path).size} bytes, ${file.bytes} were pulled: ${pullHint(name, true)}`);
    if (options.verify && (await sha256File(path)) !== file.sha256) {
      throw new AiError('AI_MODEL_INVALID', `${path} does not match the SHA-256 it was pulled with (damaged or replaced): ${pullHint(name, true)}`);
    }
  }
  return { dir, record: parsed.data };
}

export function readJson(path: string, model: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new AiError('AI_MODEL_INVALID', `${path} is not valid JSON (${error instanceof Error ? error.message : String(error)}): ${pullHint(model, true)}`);
  }
}

export function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}
