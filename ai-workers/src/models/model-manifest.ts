import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { CONSULT_LANGUAGES } from '@clinic-hub/protocol';
import { z } from 'zod';
import { AiError } from '../errors.js';

/**
 * The models the AI workers may pull: for each name, a repository on a
 * Hugging Face–style hub, the revision (a commit) and every file with its
 * SHA-256. Kept in the repository (ai-workers/models/manifest.json) and
 * reviewed like code: the checksums are what make a download trustworthy.
 */
const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'a SHA-256 is 64 lowercase hex digits');

export const ManifestFile = z.object({
  /** Name in the model folder (what the engine reads: model.onnx, vocab.json, …). */
  path: z.string().regex(/^[A-Za-z0-9._-]+$/, 'a plain file name'),
  /** Path in the repository when it differs (`onnx/model_quantized.onnx`). */
  from: z.string().regex(/^[A-Za-z0-9._/-]+$/).refine((p) => !p.split('/').includes('..'), 'no ..').optional(),
  /** null: not pinned yet; `clinic models pull` refuses the model until it is. */
  sha256: Sha256.nullable(),
  bytes: z.number().int().min(0).optional(),
});

export const ManifestModel = z.object({
  repo: z.string().regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, 'owner/name'),
  /** A commit id (or a tag); null: not pinned yet. */
  revision: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/).nullable(),
  task: z.enum(['ctc', 'audio-classification']),
  language: z.enum(CONSULT_LANGUAGES).nullable().default(null),
  license: z.string().optional(),
  description: z.string().optional(),
  files: z.array(ManifestFile).min(1),
});
export type ManifestModel = z.infer<typeof ManifestModel>;

export const ModelName = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'lowercase letters, digits, ".", "_" or "-"');

export const Manifest = z.object({
  models: z.record(ModelName, ManifestModel),
});
export type Manifest = z.infer<typeof Manifest>;

/** ai-workers/models/manifest.json, next to this package's sources. */
export const DEFAULT_MANIFEST = resolve(import.meta.dirname, '../../models/manifest.json');

export function readManifest(path = DEFAULT_MANIFEST): Manifest {
  if (!existsSync(path)) throw new AiError('AI_MODEL_UNKNOWN', `no models manifest at ${path} (AI_MODELS_MANIFEST)`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new AiError('AI_MODEL_INVALID', `${path} is not valid JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  const parsed = Manifest.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new AiError('AI_MODEL_INVALID', `${path}: ${issue.path.join('.')}: ${issue.message}`);
  }
  return parsed.data;
}

export function isPinned(model: ManifestModel): boolean {
  return model.revision !== null && model.files.every((f) => f.sha256 !== null);
}
