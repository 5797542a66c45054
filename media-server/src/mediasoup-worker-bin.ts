/**
 * Where this checkout's mediasoup-worker is: the last build (or cache hit,
 * media-server/worker-build) writes worker-build/last-build.json, the
 * media-server's config reads it at start-up. The build code imports this
 * module, never the other way round: the server loads nothing of the build.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';

export const LAST_BUILD_FILE = join(import.meta.dirname, '..', 'worker-build', 'last-build.json');

/** Every Debian package the build needs; named whole in every message, in .ci/run and in the Dockerfile. */
export const BUILD_PACKAGES = [
  'g++',
  'pkg-config',
  'flatbuffers-compiler',
  'libflatbuffers-dev',
  'libsrtp2-dev',
  'libuv1-dev',
  'libssl-dev',
  'libabsl-dev',
] as const;
export const APT_COMMAND = `apt-get install -y ${BUILD_PACKAGES.join(' ')}`;
export const WORKER_BUILD_HINT = `${APT_COMMAND}, then npm run build:mediasoup`;

/** The mediasoup package the media-server resolves (node_modules/mediasoup, hoisted or the workspace's own). */
export function installedMediasoupDir(): string {
  // Its exports do not include package.json: resolve the main entry (node/lib/index.js) and go up.
  const require = createRequire(join(import.meta.dirname, '..', 'package.json'));
  return resolve(dirname(require.resolve('mediasoup')), '..', '..');
}

/** The installed mediasoup's version, or null when it is not installed. */
export function installedMediasoupVersion(): string | null {
  try {
    return (JSON.parse(readFileSync(join(installedMediasoupDir(), 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return null;
  }
}

export type LastBuild =
  | { ok: true; bin: string; key: string; mediasoupVersion: string }
  | { ok: false; code: string; message: string; mediasoupVersion: string | null };

export function writeLastBuild(status: LastBuild, file = LAST_BUILD_FILE): void {
  const temporary = `${file}.tmp-${process.pid}`;
  writeFileSync(temporary, `${JSON.stringify(status, null, 2)}\n`);
  renameSync(temporary, file);
}

export type WorkerBinary =
  | { ok: true; bin: string; source: 'MEDIASOUP_WORKER_BIN' | 'build' }
  | { ok: false; code: 'MEDIA_WORKER_NOT_BUILT'; message: string };

/**
 * The worker binary mediasoup should run: MEDIASOUP_WORKER_BIN when the user
 * set it (it wins), else the one this checkout's last build installed, for
 * the mediasoup version installed now. Otherwise why not, and what to run.
 */
export function resolveWorkerBinary(
  env: NodeJS.ProcessEnv,
  installedVersion: string | null = installedMediasoupVersion(),
  file = LAST_BUILD_FILE,
): WorkerBinary {
  const explicit = env.MEDIASOUP_WORKER_BIN?.trim();
  if (explicit) {
    if (!existsSync(explicit)) return { ok: false, code: 'MEDIA_WORKER_NOT_BUILT', message: `MEDIASOUP_WORKER_BIN is ${explicit}, which does not exist` };
    return { ok: true, bin: explicit, source: 'MEDIASOUP_WORKER_BIN' };
  }
  let last: LastBuild;
  try {
    last = JSON.parse(readFileSync(file, 'utf8')) as LastBuild;
  } catch {
    return { ok: false, code: 'MEDIA_WORKER_NOT_BUILT', message: `no mediasoup-worker has been built in this checkout: ${WORKER_BUILD_HINT}` };
  }
  if (!last.ok) return { ok: false, code: 'MEDIA_WORKER_NOT_BUILT', message: `the mediasoup-worker build failed (${last.code}: ${last.message}): ${WORKER_BUILD_HINT}` };
  if (installedVersion !== null && last.mediasoupVersion !== installedVersion) {
    return { ok: false, code: 'MEDIA_WORKER_NOT_BUILT', message: `mediasoup-worker was built for mediasoup ${last.mediasoupVersion}, but ${installedVersion} is installed: run npm run build:mediasoup` };
  }
  if (!existsSync(last.bin)) return { ok: false, code: 'MEDIA_WORKER_NOT_BUILT', message: `${last.bin} is gone (cache cleared?): run npm run build:mediasoup` };
  return { ok: true, bin: last.bin, source: 'build' };
}
