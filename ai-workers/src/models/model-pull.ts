import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { AiError } from '../errors.js';
import { PULL_RECORD_FILE, PullRecord, readJson } from './model-folder.js';
import { isPinned, readManifest, type Manifest, type ManifestModel } from './model-manifest.js';

export interface PullProgress {
  file: string;
  index: number;
  files: number;
  bytes: number;
  /** From Content-Length or the manifest; null when neither says. */
  total: number | null;
  done: boolean;
}

export interface PullOptions {
  name: string;
  modelsDir: string;
  /** Base URL of the hub: files are at `<hubUrl>/<repo>/resolve/<revision>/<path>`. */
  hubUrl: string;
  manifest?: Manifest;
  manifestPath?: string;
  /** Download again even if the installed copy matches the manifest. */
  force?: boolean;
  /** Sent as `Authorization: Bearer` (gated or private repositories). */
  token?: string;
  onProgress?: (progress: PullProgress) => void;
  fetch?: typeof fetch;
}

export interface PullResult {
  name: string;
  dir: string;
  repo: string;
  revision: string;
  status: 'pulled' | 'up-to-date';
  files: { path: string; bytes: number; sha256: string }[];
}

/**
 * Downloads one model of the manifest into `<modelsDir>/<name>`: every
 * file checked against its SHA-256 while it streams to a temporary folder;
 * only when all match does the folder replace the installed one (with a
 * pull record the worker verifies at start-up). A mismatch, a missing file
 * or a network failure leaves the installed model as it was.
 */
export async function pullModel(options: PullOptions): Promise<PullResult> {
  const manifest = options.manifest ?? readManifest(options.manifestPath);
  const model = manifest.models[options.name];
  if (!model) throw new AiError('AI_MODEL_UNKNOWN', `"${options.name}" (known: ${Object.keys(manifest.models).join(', ') || 'none'})`);
  if (!isPinned(model)) {
    const unpinned = model.revision === null ? 'its revision' : model.files.filter((f) => f.sha256 === null).map((f) => f.path).join(', ');
    throw new AiError('AI_MODEL_UNPINNED', `${options.name}: ${unpinned}`);
  }
  const revision = model.revision!;
  const dir = join(options.modelsDir, options.name);
  if (!options.force && installedMatches(dir, model)) {
    return { name: options.name, dir, repo: model.repo, revision, status: 'up-to-date', files: model.files.map((f) => ({ path: f.path, bytes: statSync(join(dir, f.path)).size, sha256: f.sha256! })) };
  }
  mkdirSync(options.modelsDir, { recursive: true });
  const staging = join(options.modelsDir, `.${options.name}.partial-${randomBytes(4).toString('hex')}`);
  mkdirSync(staging);
  const doFetch = options.fetch ?? fetch;
  const files: PullResult['files'] = [];
  try {
    for (const [index, file] of model.files.entries()) {
      const source = file.from ?? file.path;
      const url = `${options.hubUrl.replace(/\/+$/, '')}/${model.repo}/resolve/${encodeURIComponent(revision)}/${source.split('/').map(encodeURIComponent).join('/')}`;
      let response: Response;
      try {
        response = await doFetch(url, { headers: options.token ? { authorization: `Bearer ${options.token}` } : {}, redirect: 'follow' });
      } catch (error) {
        throw new AiError('AI_MODEL_DOWNLOAD_FAILED', `${source} from ${url}: ${error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error)}`);
      }
      if (!response.ok || !response.body) {
        throw new AiError('AI_MODEL_DOWNLOAD_FAILED', `${source}: the hub answered ${response.status} ${response.statusText} for ${url}`);
      }
      const declared = Number(response.headers.get('content-length'));
      const total = Number.isFinite(declared) && declared > 0 ? declared : (file.bytes ?? null);
      const hash = createHash('sha256');
      let bytes = 0;
      let lastReport = 0;
      options.onProgress?.({ file: file.path, index, files: model.files.length, bytes: 0, total, done: false });
      const meter = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          hash.update(chunk);
          bytes += chunk.length;
          if (Date.now() - lastReport > 200) {
            lastReport = Date.now();
            options.onProgress?.({ file: file.path, index, files: model.files.length, bytes, total, done: false });
          }
          callback(null, chunk);
        },
      });
      try {
        await pipeline(Readable.fromWeb(response.body as import('node:stream/web').ReadableStream), meter, createWriteStream(join(staging, file.path)));
      } catch (error) {
        throw new AiError('AI_MODEL_DOWNLOAD_FAILED', `${source}: the download broke off after ${bytes} bytes (${error instanceof Error ? error.message : String(error)})`);
      }
      const sha256 = hash.digest('hex');
      if (sha256 !== file.sha256) {
        throw new AiError('AI_MODEL_CHECKSUM_MISMATCH', `${source} of ${model.repo}@${revision}: expected sha256 ${file.sha256}, got ${sha256} (${bytes} bytes)`);
      }
      options.onProgress?.({ file: file.path, index, files: model.files.length, bytes, total: total ?? bytes, done: true });
      files.push({ path: file.path, bytes, sha256 });
    }
    const record: PullRecord = { name: options.name, repo: model.repo, revision, task: model.task, pulledAt: Date.now(), files };
    writeFileSync(join(staging, PULL_RECORD_FILE), `${JSON.stringify(record, null, 2)}\n`);
    const old = `${dir}.old-${randomBytes(4).toString('hex')}`;
    if (existsSync(dir)) renameSync(dir, old);
    renameSync(staging, dir);
    rmSync(old, { recursive: true, force: true });
  } catch (error) {
    rmSync(staging, { recursive: true, force: true });
    throw error;
  }
  return { name: options.name, dir, repo: model.repo, revision, status: 'pulled', files };
}

/** The installed copy was pulled from this revision with these checksums, and its files are all there at their sizes. */
function installedMatches(dir: string, model: ManifestModel): boolean {
  const recordFile = join(dir, PULL_RECORD_FILE);
  if (!existsSync(recordFile)) return false;
  const record = PullRecord.safeParse(readJson(recordFile, dir));
  if (!record.success || record.data.repo !== model.repo || record.data.revision !== model.revision) return false;
  return model.files.every((file) => {
    const pulled = record.data.files.find((f) => f.path === file.path);
    const path = join(dir, file.path);
    return pulled?.sha256 === file.sha256 && existsSync(path) && statSync(path).size === pulled.bytes;
  });
}

export type ModelStatus = 'installed' | 'outdated' | 'missing' | 'unpinned' | 'local';

export interface ModelListing {
  name: string;
  status: ModelStatus;
  task: string;
  language: string | null;
  repo: string | null;
  revision: string | null;
  bytes: number | null;
}

/** The manifest's models and what of them is installed, plus folders in the models directory the manifest does not name. */
export function listModels(modelsDir: string, manifest: Manifest): ModelListing[] {
  const rows: ModelListing[] = Object.entries(manifest.models).map(([name, model]) => {
    const dir = join(modelsDir, name);
    const status: ModelStatus = !isPinned(model) ? (existsSync(dir) ? 'local' : 'unpinned') : installedMatches(dir, model) ? 'installed' : existsSync(dir) ? 'outdated' : 'missing';
    return { name, status, task: model.task, language: model.language, repo: model.repo, revision: model.revision, bytes: existsSync(dir) ? folderBytes(dir) : null };
  });
  if (existsSync(modelsDir)) {
    for (const entry of readdirSync(modelsDir, { withFileTypes: true })) {
      if (!entry.isDirectory() || entry.name.startsWith('.') || manifest.models[entry.name]) continue;
      const dir = join(modelsDir, entry.name);
      const task = existsSync(join(dir, 'vocab.json')) || existsSync(join(dir, 'tokenizer.json')) ? 'ctc' : existsSync(join(dir, 'config.json')) ? 'audio-classification' : '?';
      rows.push({ name: entry.name, status: 'local', task, language: null, repo: null, revision: null, bytes: folderBytes(dir) });
    }
  }
  return rows;
}

function folderBytes(dir: string): number {
  return readdirSync(dir, { withFileTypes: true }).reduce((sum, entry) => sum + (entry.isFile() ? statSync(join(dir, entry.name)).size : 0), 0);
}
