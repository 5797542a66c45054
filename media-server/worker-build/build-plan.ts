/**
 * What a build of mediasoup-worker consists of: the installed mediasoup
 * package's sources (read from its meson.build files), our adapters and
 * patch, the compiler flags, the Debian libraries it links, and the cache key
 * made from all of them. Making a plan compiles nothing; build-worker.ts
 * carries it out.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { readExecutableExtraSources, readMesonList } from './meson-sources.js';
import { SOURCE_PATCHES, type SourcePatch } from './patches.js';
import { BUILD_PACKAGES, installedMediasoupDir } from '../src/mediasoup-worker-bin.js';

export { APT_COMMAND, BUILD_PACKAGES } from '../src/mediasoup-worker-bin.js';

export const WORKER_BUILD_DIR = import.meta.dirname;
export const ADAPTERS_DIR = join(WORKER_BUILD_DIR, 'adapters');

/** Flags for every file: mediasoup's release build (meson: cpp_std=c++20, buildtype=release, b_ndebug=if-release). */
export const COMMON_FLAGS = ['-std=c++20', '-O3', '-DNDEBUG', '-DMS_LITTLE_ENDIAN', '-DFLATBUFFERS_LOCALE_INDEPENDENT=1', '-pthread'] as const;
/** The worker's own files in the executable target (meson: cpp_args + ['-DMS_EXECUTABLE']). */
export const WORKER_FLAGS = ['-DMS_EXECUTABLE'] as const;
/** flatc as mediasoup's fbs/FBS/meson.build runs it. */
export const FLATC_FLAGS = ['--cpp', '--cpp-field-case-style', 'lower', '--reflect-names', '--scoped-enums', '--filename-suffix', ''] as const;
/**
 * libuv, flatbuffers and the abseil libraries libwebrtc needs are linked
 * statically (mediasoup links its own copies statically too). libsrtp2 stays
 * shared: Debian builds it on NSS, whose static linking it does not support.
 * OpenSSL stays shared so its security updates reach the worker. At run time
 * the binary needs glibc, libstdc++, libssl3 and libsrtp2-1.
 */
export const STATIC_LIBS = ['-luv_a', '-lflatbuffers', '-labsl_strings', '-labsl_strings_internal', '-labsl_int128', '-labsl_throw_delegate', '-labsl_bad_optional_access', '-labsl_raw_logging_internal'] as const;
export const SHARED_LIBS = ['-lsrtp2', '-lssl', '-lcrypto', '-ldl', '-lpthread'] as const;

/** pkg-config modules whose headers the worker compiles against; their versions enter the cache key. */
const PKG_CONFIG_MODULES: Record<string, (typeof BUILD_PACKAGES)[number]> = {
  libsrtp2: 'libsrtp2-dev',
  libuv: 'libuv1-dev',
  openssl: 'libssl-dev',
  flatbuffers: 'libflatbuffers-dev',
  absl_strings: 'libabsl-dev',
};

export interface CompileUnit {
  /** As listed in meson.build, relative to worker/. */
  name: string;
  /** The file compiled: worker/<name>, or its patched copy in the build folder. */
  source: string;
  object: string;
  flags: string[];
}

export interface Toolchain {
  cxx: string;
  cxxVersion: string;
  flatcVersion: string;
  libraryVersions: Record<string, string>;
}

export interface MissingDependency {
  what: string;
  package: (typeof BUILD_PACKAGES)[number];
}

export interface BuildPlan {
  mediasoupVersion: string;
  workerDir: string;
  toolchain: Toolchain;
  schemas: string[];
  units: CompileUnit[];
  patches: readonly SourcePatch[];
  linkFlags: string[];
  key: string;
  /** <cacheRoot>/<key>/mediasoup-worker, present only once complete. */
  binPath: string;
  /** Objects and generated headers (by the key less the link flags); shared by concurrent builds (each file is written whole, by rename). */
  workDir: string;
}

export interface PlanOptions {
  mediasoupDir?: string;
  adaptersDir?: string;
  cacheRoot?: string;
  env?: NodeJS.ProcessEnv;
}

export function defaultCacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME && env.XDG_CACHE_HOME.trim() !== '' ? env.XDG_CACHE_HOME : join(homedir(), '.cache');
  return join(base, 'clinic-hub', 'mediasoup-worker');
}

function run(command: string, args: string[]): string | null {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.error || result.status !== 0) return null;
  return `${result.stdout}${result.stderr}`.trim();
}

/** The compiler, flatc and libraries, or what is missing (each with the Debian package that brings it). */
export function probeToolchain(env: NodeJS.ProcessEnv = process.env): { toolchain: Toolchain | null; missing: MissingDependency[] } {
  const missing: MissingDependency[] = [];
  const cxx = env.CXX && env.CXX.trim() !== '' ? env.CXX.trim() : 'g++';
  const cxxVersion = run(cxx, ['--version'])?.split('\n')[0] ?? null;
  if (cxxVersion === null) missing.push({ what: `the C++ compiler (${cxx})`, package: 'g++' });
  else {
    const major = Number(run(cxx, ['-dumpversion'])?.split('.')[0] ?? 0);
    if (/\bg\+\+|GCC/.test(cxxVersion) && major < 12) missing.push({ what: `g++ 12 or later for C++20 (found ${cxxVersion})`, package: 'g++' });
  }
  const flatcVersion = run('flatc', ['--version']);
  if (flatcVersion === null) missing.push({ what: 'flatc', package: 'flatbuffers-compiler' });
  const libraryVersions: Record<string, string> = {};
  if (run('pkg-config', ['--version']) === null) {
    missing.push({ what: 'pkg-config', package: 'pkg-config' });
  } else {
    for (const [module, pkg] of Object.entries(PKG_CONFIG_MODULES)) {
      const version = run('pkg-config', ['--modversion', module]);
      if (version === null) missing.push({ what: `${module} (pkg-config)`, package: pkg });
      else libraryVersions[module] = version;
    }
  }
  if (missing.length > 0 || cxxVersion === null || flatcVersion === null) return { toolchain: null, missing };
  return { toolchain: { cxx, cxxVersion, flatcVersion, libraryVersions }, missing };
}

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(path));
    else if (entry.isFile()) out.push(path);
  }
  return out.sort();
}

/** sha256 over the names and contents of every file under the given folders. */
export function hashTree(root: string, dirs: string[]): string {
  const hash = createHash('sha256');
  for (const dir of dirs) {
    for (const file of filesUnder(join(root, dir))) {
      hash.update(relative(root, file)).update('\0').update(readFileSync(file)).update('\0');
    }
  }
  return hash.digest('hex');
}

/** Everything the binary depends on, in one object: its hash is the cache key. */
export interface KeyInputs {
  mediasoupVersion: string;
  /** Compiled sources, in order, as listed in meson.build. */
  sources: string[];
  schemas: string[];
  /** Hash of worker/src, include, fbs and deps/libwebrtc (everything a compiled file can include). */
  workerTreeHash: string;
  adaptersHash: string;
  patches: readonly SourcePatch[];
  commonFlags: readonly string[];
  workerFlags: readonly string[];
  flatcFlags: readonly string[];
  linkFlags: readonly string[];
  toolchain: Toolchain;
}

export function cacheKey(inputs: KeyInputs): string {
  const digest = createHash('sha256').update(JSON.stringify(inputs)).digest('hex').slice(0, 20);
  return `${inputs.mediasoupVersion}-${digest}`;
}

/** The key of the compiled objects: every input but the link flags, so a change of those relinks without recompiling. */
export function objectsKey(inputs: KeyInputs): string {
  return cacheKey({ ...inputs, linkFlags: [] });
}

const OBJECT_NAME = (name: string): string => `${name.replace(/\.(cpp|cc)$/, '')}.o`;

interface PlanSources {
  mediasoupDir: string;
  workerDir: string;
  mediasoupVersion: string;
  workerSources: string[];
  libwebrtcSources: string[];
  schemas: string[];
}

function readSources(mediasoupDir: string): PlanSources {
  const workerDir = join(mediasoupDir, 'worker');
  const mediasoupVersion = (JSON.parse(readFileSync(join(mediasoupDir, 'package.json'), 'utf8')) as { version: string }).version;
  const workerSources = [
    ...readMesonList(join(workerDir, 'meson.build'), 'common_sources'),
    ...readExecutableExtraSources(join(workerDir, 'meson.build')),
  ];
  const libwebrtcSources = readMesonList(join(workerDir, 'deps', 'libwebrtc', 'meson.build'), 'libwebrtc_sources').map((file) => `deps/libwebrtc/${file}`);
  const schemas = readMesonList(join(workerDir, 'fbs', 'meson.build'), 'flatbuffers_schemas').map((file) => `fbs/${file}`);
  return { mediasoupDir, workerDir, mediasoupVersion, workerSources, libwebrtcSources, schemas };
}

const LINK_FLAGS = ['-pthread', '-Wl,-Bstatic', ...STATIC_LIBS, '-Wl,-Bdynamic', ...SHARED_LIBS];

/** The cache key's inputs for this toolchain and the installed (or given) mediasoup package and adapters. */
export function keyInputs(toolchain: Toolchain, options: PlanOptions = {}): KeyInputs {
  const sources = readSources(options.mediasoupDir ?? installedMediasoupDir());
  return inputsOf(sources, toolchain, options.adaptersDir ?? ADAPTERS_DIR);
}

function inputsOf(sources: PlanSources, toolchain: Toolchain, adaptersDir: string): KeyInputs {
  return {
    mediasoupVersion: sources.mediasoupVersion,
    sources: [...sources.workerSources, ...sources.libwebrtcSources],
    schemas: sources.schemas,
    workerTreeHash: hashTree(sources.workerDir, ['src', 'include', 'fbs', 'deps/libwebrtc']),
    adaptersHash: hashTree(adaptersDir, ['.']),
    patches: SOURCE_PATCHES,
    commonFlags: COMMON_FLAGS,
    workerFlags: WORKER_FLAGS,
    flatcFlags: FLATC_FLAGS,
    linkFlags: LINK_FLAGS,
    toolchain,
  };
}

export function makePlan(toolchain: Toolchain, options: PlanOptions = {}): BuildPlan {
  const adaptersDir = options.adaptersDir ?? ADAPTERS_DIR;
  const cacheRoot = options.cacheRoot ?? defaultCacheRoot(options.env);
  const sources = readSources(options.mediasoupDir ?? installedMediasoupDir());
  const { workerDir, mediasoupVersion, workerSources, libwebrtcSources, schemas } = sources;
  const inputs = inputsOf(sources, toolchain, adaptersDir);
  const key = cacheKey(inputs);
  const workDir = join(cacheRoot, `build-${objectsKey(inputs)}`);
  const patchedFiles = new Set(SOURCE_PATCHES.map((patch) => patch.file));
  const includes = [
    // Ours first: <srtp.h> and <ankerl/unordered_dense.h> are the adapters.
    `-I${join(adaptersDir, 'srtp3')}`,
    `-I${adaptersDir}`,
    `-I${join(workerDir, 'include')}`,
    `-I${join(workerDir, 'deps', 'libwebrtc')}`,
    `-I${join(workerDir, 'deps', 'libwebrtc', 'libwebrtc')}`,
    // The generated FBS/*.h.
    `-I${join(workDir, 'generated')}`,
  ];
  const unit = (name: string, extra: readonly string[]): CompileUnit => ({
    name,
    source: patchedFiles.has(name) ? join(workDir, 'patched', name) : join(workerDir, name),
    object: join(workDir, 'obj', OBJECT_NAME(name)),
    flags: [...COMMON_FLAGS, ...extra, ...includes],
  });
  return {
    mediasoupVersion,
    workerDir,
    toolchain,
    schemas,
    units: [...workerSources.map((name) => unit(name, WORKER_FLAGS)), ...libwebrtcSources.map((name) => unit(name, []))],
    patches: SOURCE_PATCHES,
    linkFlags: LINK_FLAGS,
    key,
    binPath: join(cacheRoot, key, 'mediasoup-worker'),
    workDir,
  };
}

export function isBuilt(plan: BuildPlan): boolean {
  return existsSync(plan.binPath);
}

export const REPO_ROOT = resolve(WORKER_BUILD_DIR, '..', '..');
