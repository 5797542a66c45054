import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CtcModel } from '../src/engines/ctc-model.js';
import { AiError } from '../src/errors.js';
import { openModelFolder, PULL_RECORD_FILE } from '../src/models/model-folder.js';
import { readManifest } from '../src/models/model-manifest.js';
import { listModels, pullModel, type PullProgress } from '../src/models/model-pull.js';
import { ENGLISH_VOCAB, tonesFor, writeCtcFixture, writeEmotionFixture } from '@clinic-hub/test-kit/fixture-models';
import { ModelHub, manifestOf } from '@clinic-hub/test-kit/model-hub';
import { tempDir } from '@clinic-hub/test-kit/tmp';

const tmp = tempDir();
const modelsDir = join(tmp.dir, 'models');
let hub: ModelHub;
const REV = 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678';

beforeAll(async () => {
  hub = await new ModelHub(join(tmp.dir, 'hub')).start();
});
afterAll(async () => {
  await hub.stop();
  tmp.cleanup();
});

const codeOf = async (promise: Promise<unknown>) => {
  const error = await promise.then(() => null, (e: unknown) => e);
  expect(error).toBeInstanceOf(AiError);
  return error as AiError;
};

describe('models pull (local hub laid out like huggingface.co)', () => {
  it('downloads every file with progress, checks each SHA-256, installs a folder the engine loads', async () => {
    const fixture = writeCtcFixture(join(tmp.dir, 'src-ctc'), { vocab: ENGLISH_VOCAB });
    const manifest = manifestOf({ 'ctc-en': hub.publish('clinic/ctc-fixture-en', REV, fixture.dir, 'ctc', 'en') });
    const progress: PullProgress[] = [];
    const result = await pullModel({ name: 'ctc-en', modelsDir, hubUrl: hub.url, manifest, onProgress: (p) => progress.push(p) });
    expect(result.status).toBe('pulled');
    expect(result.files.map((f) => f.path).sort()).toEqual(readdirSync(fixture.dir).sort());
    expect(progress.filter((p) => p.done).length).toBe(result.files.length);
    const model = progress.find((p) => p.file === 'model.onnx' && p.done)!;
    expect(model.bytes).toBe(model.total);
    // Large files came through the redirect, as from the hub's CDN.
    expect(hub.requests.some((r) => r.startsWith('/cdn/clinic/ctc-fixture-en/'))).toBe(true);
    expect(hub.requests).toContain(`/clinic/ctc-fixture-en/resolve/${REV}/vocab.json`);
    const record = JSON.parse(readFileSync(join(modelsDir, 'ctc-en', PULL_RECORD_FILE), 'utf8'));
    expect(record).toMatchObject({ repo: 'clinic/ctc-fixture-en', revision: REV, task: 'ctc' });
    const ctc = await CtcModel.load(modelsDir, 'ctc-en', { threads: 1, verify: true });
    expect(await ctc.transcribe(tonesFor(fixture, 'PULLED'))).toBe('PULLED');
    await ctc.release();
    expect(listModels(modelsDir, manifest)).toEqual([expect.objectContaining({ name: 'ctc-en', status: 'installed', task: 'ctc', language: 'en' })]);
    // Again: nothing to do, nothing fetched; --force fetches again.
    const before = hub.requests.length;
    expect((await pullModel({ name: 'ctc-en', modelsDir, hubUrl: hub.url, manifest })).status).toBe('up-to-date');
    expect(hub.requests.length).toBe(before);
    expect((await pullModel({ name: 'ctc-en', modelsDir, hubUrl: hub.url, manifest, force: true })).status).toBe('pulled');
  });

  it('a checksum mismatch installs nothing and leaves the installed copy as it was', async () => {
    const fixture = writeEmotionFixture(join(tmp.dir, 'src-ser'));
    const good = hub.publish('clinic/ser-fixture', REV, fixture.dir, 'audio-classification');
    await pullModel({ name: 'ser', modelsDir, hubUrl: hub.url, manifest: manifestOf({ ser: good }) });
    const installed = readFileSync(join(modelsDir, 'ser', 'model.onnx'));
    // A new revision whose model.onnx is not what the manifest says.
    const REV2 = 'ffff' + REV.slice(4);
    const entry = hub.publish('clinic/ser-fixture', REV2, fixture.dir, 'audio-classification');
    writeFileSync(join(hub.root, 'clinic/ser-fixture', REV2, 'model.onnx'), Buffer.concat([installed, Buffer.from('tampered')]));
    const error = await codeOf(pullModel({ name: 'ser', modelsDir, hubUrl: hub.url, manifest: manifestOf({ ser: entry }) }));
    expect(error.code).toBe('AI_MODEL_CHECKSUM_MISMATCH');
    expect(error.message).toMatch(/model\.onnx of clinic\/ser-fixture@ffff.*expected sha256 [0-9a-f]{64}, got [0-9a-f]{64}/);
    expect(readFileSync(join(modelsDir, 'ser', 'model.onnx'))).toEqual(installed);
    expect(readdirSync(modelsDir).filter((n) => n.startsWith('.'))).toEqual([]);
    expect(listModels(modelsDir, manifestOf({ ser: entry }))[0]!.status).toBe('outdated');
  });

  it('a file the hub does not have: AI_MODEL_DOWNLOAD_FAILED naming it, nothing installed', async () => {
    const fixture = writeEmotionFixture(join(tmp.dir, 'src-ser2'));
    const entry = hub.publish('clinic/ser-incomplete', REV, fixture.dir, 'audio-classification');
    entry.files.push({ path: 'extra.json', sha256: '0'.repeat(64) });
    const error = await codeOf(pullModel({ name: 'incomplete', modelsDir, hubUrl: hub.url, manifest: manifestOf({ incomplete: entry }) }));
    expect(error.code).toBe('AI_MODEL_DOWNLOAD_FAILED');
    expect(error.message).toMatch(/extra\.json: the hub answered 404/);
    expect(existsSync(join(modelsDir, 'incomplete'))).toBe(false);
    const unreachable = await codeOf(pullModel({ name: 'incomplete', modelsDir, hubUrl: 'http://127.0.0.1:1', manifest: manifestOf({ incomplete: entry }) }));
    expect(unreachable.code).toBe('AI_MODEL_DOWNLOAD_FAILED');
  });

  it('refuses unknown and unpinned models; the shipped manifest parses and pins nothing it has not checked', async () => {
    expect((await codeOf(pullModel({ name: 'nope', modelsDir, hubUrl: hub.url, manifest: manifestOf({}) }))).code).toBe('AI_MODEL_UNKNOWN');
    const shipped = readManifest();
    expect(Object.keys(shipped.models).length).toBeGreaterThan(0);
    for (const [name, model] of Object.entries(shipped.models)) {
      expect(model.files.some((f) => f.path === 'model.onnx')).toBe(true);
      if (model.revision === null) {
        const error = await codeOf(pullModel({ name, modelsDir, hubUrl: hub.url, manifest: shipped }));
        expect(error.code).toBe('AI_MODEL_UNPINNED');
      }
    }
  });

  it('the worker refuses a damaged or incomplete installed model, naming the file and the command', async () => {
    writeFileSync(join(modelsDir, 'ctc-en', 'model.onnx'), Buffer.alloc(readFileSync(join(modelsDir, 'ctc-en', 'model.onnx')).length));
    const damaged = await codeOf(openModelFolder(modelsDir, 'ctc-en', 'ctc', { verify: true }));
    expect(damaged.code).toBe('AI_MODEL_INVALID');
    expect(damaged.message).toMatch(/ctc-en\/model\.onnx does not match the SHA-256.*clinic models pull ctc-en --force/);
    writeFileSync(join(modelsDir, 'ctc-en', 'vocab.json'), '{}');
    expect((await codeOf(openModelFolder(modelsDir, 'ctc-en', 'ctc', { verify: false }))).message).toMatch(/vocab\.json has 2 bytes/);
    const wrongTask = await codeOf(openModelFolder(modelsDir, 'ser', 'ctc', { verify: false }));
    expect(wrongTask.message).toMatch(/no vocab\.json or tokenizer\.json|audio-classification model/);
  });
});
