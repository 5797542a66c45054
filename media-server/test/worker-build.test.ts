import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ADAPTERS_DIR, APT_COMMAND, BUILD_PACKAGES, cacheKey, keyInputs, makePlan, probeToolchain, WORKER_BUILD_DIR, type KeyInputs } from '../worker-build/build-plan.js';
import { readMesonList, MesonReadError } from '../worker-build/meson-sources.js';
import { applyPatch, PatchError, SOURCE_PATCHES } from '../worker-build/patches.js';
import { installedMediasoupDir, resolveWorkerBinary, writeLastBuild } from '../src/mediasoup-worker-bin.js';
import { builtWorkerBin } from './support/mediasoup-worker.js';

/**
 * The build of mediasoup-worker (media-server/worker-build): its reading of
 * mediasoup's meson.build files, the patch, the libsrtp adapter on its own,
 * the cache key, the cache hit of a second run, and the message when a build
 * dependency is missing.
 */
const scratch = mkdtempSync(join(tmpdir(), 'worker-build-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const workerDir = join(installedMediasoupDir(), 'worker');
const cli = join(WORKER_BUILD_DIR, 'build-cli.ts');
const tsx = join(WORKER_BUILD_DIR, '..', '..', 'node_modules', '.bin', 'tsx');

function toolchain() {
  const probed = probeToolchain();
  if (probed.toolchain === null) throw new Error(`build dependencies missing (${probed.missing.map((item) => item.what).join(', ')}): ${APT_COMMAND}`);
  return probed.toolchain;
}

describe('the worker sources, from the package’s meson.build files', () => {
  it('lists the worker’s own files, libwebrtc’s and the schemas, each of them present', () => {
    const plan = makePlan(toolchain(), { cacheRoot: scratch });
    const own = plan.units.filter((unit) => !unit.name.startsWith('deps/'));
    const libwebrtc = plan.units.filter((unit) => unit.name.startsWith('deps/libwebrtc/'));
    process.stdout.write(`mediasoup ${plan.mediasoupVersion}: ${own.length} worker files, ${libwebrtc.length} libwebrtc files, ${plan.schemas.length} schemas\n`);
    expect(own.length).toBeGreaterThan(200);
    expect(libwebrtc.length).toBeGreaterThan(40);
    expect(plan.schemas.length).toBeGreaterThan(20);
    // The default build's conditional lists are in (libwebrtc's bandwidth estimation), and main.cpp.
    expect(own.map((unit) => unit.name)).toEqual(expect.arrayContaining(['src/main.cpp', 'src/DepLibWebRTC.cpp', 'src/RTC/TransportCongestionControlClient.cpp']));
    for (const name of [...plan.units.map((unit) => unit.name), ...plan.schemas]) expect(existsSync(join(workerDir, name)), name).toBe(true);
    // Only the worker's own files are compiled as the executable's.
    expect(own.every((unit) => unit.flags.includes('-DMS_EXECUTABLE'))).toBe(true);
    expect(libwebrtc.some((unit) => unit.flags.includes('-DMS_EXECUTABLE'))).toBe(false);
    // The patched file is compiled from the build folder's copy.
    expect(plan.units.find((unit) => unit.name === 'src/RTC/DtlsTransport.cpp')!.source.startsWith(plan.workDir)).toBe(true);
  });

  it('stops on a condition it does not know around a list it reads', () => {
    const file = join(scratch, 'meson.build');
    writeFileSync(file, "things = [\n  'a.cpp',\n]\nif get_option('something_new')\n  things += ['b.cpp']\nendif\n");
    expect(() => readMesonList(file, 'things')).toThrow(MesonReadError);
    writeFileSync(file, "things = [\n  'a.cpp',\n]\nif not get_option('ms_use_builtin_bwe')\n  things += ['b.cpp']\nendif\nif get_option('ms_build_tests')\n  things += ['c.cpp']\nendif\n");
    expect(readMesonList(file, 'things')).toEqual(['a.cpp', 'b.cpp']);
  });
});

describe('the DtlsTransport patch', () => {
  it('turns the BIO callback’s == BIO_CB_RETURN into a bit test, and refuses code that changed', () => {
    const [patch] = SOURCE_PATCHES;
    const original = readFileSync(join(workerDir, patch!.file), 'utf8');
    const patched = applyPatch(patch!, original);
    expect(original).toContain('(operationType == BIO_CB_RETURN)');
    expect(patched).not.toContain('(operationType == BIO_CB_RETURN)');
    expect(patched).toContain('(operationType & BIO_CB_RETURN) ? static_cast<long>(ret) : 1');
    expect(() => applyPatch(patch!, original.replace(patch!.find, 'something else'))).toThrow(PatchError);
    expect(() => applyPatch(patch!, `${original}\n${patch!.find}`)).toThrow(PatchError);
  });
});

describe('the libsrtp v3 adapter over Debian’s libsrtp2', () => {
  it('protects and unprotects RTP and RTCP with every profile mediasoup uses', { timeout: 120_000 }, () => {
    const tc = toolchain();
    const binary = join(scratch, 'srtp3-adapter');
    const compiled = spawnSync(
      tc.cxx,
      ['-std=c++20', '-O1', `-I${join(ADAPTERS_DIR, 'srtp3')}`, `-I${ADAPTERS_DIR}`, join(WORKER_BUILD_DIR, 'adapter-tests', 'srtp3-adapter.cpp'), '-o', binary, '-lsrtp2'],
      { encoding: 'utf8' },
    );
    expect(compiled.stderr).toBe('');
    expect(compiled.status).toBe(0);
    const ran = spawnSync(binary, { encoding: 'utf8' });
    process.stdout.write(ran.stdout);
    expect(ran.status).toBe(0);
    expect(ran.stdout).toMatch(/ok AEAD_AES_256_GCM\n(\d+) checks passed/);
  });
});

describe('the cache key', () => {
  it('changes with every build input', () => {
    const base = keyInputs(toolchain());
    const key = cacheKey(base);
    expect(key).toMatch(/^\d+\.\d+\.\d+-[0-9a-f]{20}$/);
    expect(cacheKey(keyInputs(toolchain()))).toBe(key);
    const variants: [string, KeyInputs][] = [
      ['mediasoup version', { ...base, mediasoupVersion: '3.27.2' }],
      ['sources list', { ...base, sources: base.sources.slice(1) }],
      ['schemas', { ...base, schemas: base.schemas.slice(1) }],
      ['worker sources content', { ...base, workerTreeHash: '0'.repeat(64) }],
      ['adapters', { ...base, adaptersHash: '0'.repeat(64) }],
      ['patch', { ...base, patches: [{ ...base.patches[0]!, replace: `${base.patches[0]!.replace} ` }] }],
      ['flags', { ...base, commonFlags: base.commonFlags.map((flag) => (flag === '-O3' ? '-O2' : flag)) }],
      ['worker flags', { ...base, workerFlags: [] }],
      ['flatc flags', { ...base, flatcFlags: base.flatcFlags.slice(1) }],
      ['link flags', { ...base, linkFlags: base.linkFlags.slice(1) }],
      ['compiler version', { ...base, toolchain: { ...base.toolchain, cxxVersion: 'g++ (Debian 13.2.0) 13.2.0' } }],
      ['library versions', { ...base, toolchain: { ...base.toolchain, libraryVersions: { ...base.toolchain.libraryVersions, libsrtp2: '2.6.0' } } }],
    ];
    const keys = new Set([key]);
    for (const [what, inputs] of variants) {
      const changed = cacheKey(inputs);
      expect(changed, what).not.toBe(key);
      keys.add(changed);
    }
    expect(keys.size).toBe(variants.length + 1);
  });

  it('changes when an adapter file changes on disk', () => {
    const copy = join(scratch, 'adapters');
    cpSync(ADAPTERS_DIR, copy, { recursive: true });
    const before = keyInputs(toolchain(), { adaptersDir: copy });
    expect(cacheKey(before)).toBe(cacheKey(keyInputs(toolchain())));
    writeFileSync(join(copy, 'srtp3', 'srtp.h'), `${readFileSync(join(copy, 'srtp3', 'srtp.h'), 'utf8')}\n// changed\n`);
    expect(cacheKey(keyInputs(toolchain(), { adaptersDir: copy }))).not.toBe(cacheKey(before));
  });
});

function runCli(args: string[], env: NodeJS.ProcessEnv = process.env) {
  const run = spawnSync(tsx, [cli, ...args], { encoding: 'utf8', env, timeout: 120_000 });
  const lastLine = run.stdout.trim().split('\n').at(-1) ?? '';
  return { status: run.status, stdout: run.stdout, stderr: run.stderr, json: args.includes('--json') ? (JSON.parse(lastLine) as Record<string, unknown>) : null };
}

describe('npm run build:mediasoup', () => {
  it('is a cache hit when the worker of this key is built', { timeout: 150_000 }, () => {
    const built = builtWorkerBin();
    const status = join(scratch, 'last-build.json');
    const run = runCli(['--json', '--status-file', status]);
    expect(run.status, run.stderr).toBe(0);
    process.stdout.write(`second build: cache hit in ${String(run.json!.seconds)} s (${String(run.json!.bin)})\n`);
    expect(run.json).toMatchObject({ ok: true, cacheHit: true, bin: built });
    expect(run.stderr).not.toMatch(/building \d+ files/);
    expect(resolveWorkerBinary({}, null, status)).toEqual({ ok: true, bin: built, source: 'build' });
  });

  it('names the apt-get command when a build dependency is missing; --never-fail (npm start) exits 0', { timeout: 150_000 }, () => {
    const status = join(scratch, 'missing-last-build.json');
    const env = { ...process.env, CXX: join(scratch, 'no-such-compiler') };
    const strict = runCli(['--status-file', status], env);
    expect(strict.status).toBe(1);
    expect(strict.stderr).toContain('MEDIASOUP_BUILD_DEPENDENCY_MISSING');
    expect(strict.stderr).toContain(APT_COMMAND);
    const lenient = runCli(['--never-fail', '--status-file', status], env);
    expect(lenient.status).toBe(0);
    expect(lenient.stderr).toContain(APT_COMMAND);
    // The media-server then refuses consultations with the same command.
    const resolved = resolveWorkerBinary({}, null, status);
    expect(resolved.ok).toBe(false);
    expect(!resolved.ok && resolved.message).toContain(APT_COMMAND);
    expect(BUILD_PACKAGES.every((pkg) => APT_COMMAND.includes(pkg))).toBe(true);
  });
});

describe('where the media-server finds the worker', () => {
  it('takes MEDIASOUP_WORKER_BIN first, else the last build for the installed mediasoup version', () => {
    const status = join(scratch, 'resolve-last-build.json');
    const binary = join(scratch, 'fake-bin');
    writeFileSync(binary, '');
    expect(resolveWorkerBinary({}, '3.27.1', status)).toMatchObject({ ok: false, code: 'MEDIA_WORKER_NOT_BUILT' });
    writeLastBuild({ ok: true, bin: binary, key: '3.27.1-x', mediasoupVersion: '3.27.1' }, status);
    expect(resolveWorkerBinary({}, '3.27.1', status)).toEqual({ ok: true, bin: binary, source: 'build' });
    const other = resolveWorkerBinary({}, '3.28.0', status);
    expect(!other.ok && other.message).toMatch(/built for mediasoup 3\.27\.1, but 3\.28\.0 is installed/);
    expect(resolveWorkerBinary({ MEDIASOUP_WORKER_BIN: binary }, '3.28.0', status)).toEqual({ ok: true, bin: binary, source: 'MEDIASOUP_WORKER_BIN' });
    const missing = resolveWorkerBinary({ MEDIASOUP_WORKER_BIN: join(scratch, 'nothing-here') }, '3.27.1', status);
    expect(missing.ok).toBe(false);
  });
});
