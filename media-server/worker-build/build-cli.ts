/**
 * `npm run build:mediasoup` (and `npm start`, with --never-fail): builds
 * mediasoup-worker from the installed mediasoup package's sources, or finds
 * it in the cache, and records where it is for the media-server.
 *
 *   --never-fail       exit 0 whatever happens (npm start): a missing build
 *                      dependency or a failed build is reported (with the
 *                      apt-get command) and the media-server refuses
 *                      consultations until it is fixed
 *   --install-to PATH  also copy the binary to PATH (the Dockerfile's build stage)
 *   --json             one JSON line on stdout: { ok, bin, key, cacheHit, seconds, ... }
 *   --jobs N           parallel compiles (default: the number of cores; or MEDIASOUP_BUILD_JOBS)
 *   --status-file PATH where to record the result (default: last-build.json beside this file; for tests)
 */
import { copyFileSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { APT_COMMAND, isBuilt, makePlan, probeToolchain } from './build-plan.js';
import { buildWorker, jobCount, WorkerBuildError } from './build-worker.js';
import { LAST_BUILD_FILE, writeLastBuild } from '../src/mediasoup-worker-bin.js';

const { values } = parseArgs({
  options: {
    'never-fail': { type: 'boolean', default: false },
    'install-to': { type: 'string' },
    json: { type: 'boolean', default: false },
    jobs: { type: 'string' },
    'status-file': { type: 'string' },
  },
});

const started = performance.now();
const statusFile = values['status-file'] ?? LAST_BUILD_FILE;
const json = values.json === true;
/** Progress and messages: stderr when stdout carries the JSON result. */
const say = (line: string): void => {
  (json ? process.stderr : process.stdout).write(`${line}\n`);
};
const seconds = (): number => Math.round((performance.now() - started) / 100) / 10;

function fail(code: string, message: string, detail: string, mediasoupVersion: string | null): never {
  writeLastBuild({ ok: false, code, message, mediasoupVersion }, statusFile);
  const banner = values['never-fail']
    ? 'mediasoup-worker was NOT built: everything else runs, but the media-server refuses video consultations until it is.'
    : 'mediasoup-worker was NOT built.';
  process.stderr.write(`\n${banner}\n${code}: ${message}\n${detail}\n`);
  if (json) process.stdout.write(`${JSON.stringify({ ok: false, code, message, seconds: seconds() })}\n`);
  process.exit(values['never-fail'] ? 0 : 1);
}

const { toolchain, missing } = probeToolchain();
if (toolchain === null) {
  const packages = [...new Set(missing.map((item) => item.package))];
  fail(
    'MEDIASOUP_BUILD_DEPENDENCY_MISSING',
    `missing ${missing.map((item) => item.what).join(', ')} (Debian: ${packages.join(' ')})`,
    `Install the build dependencies, as root:\n  ${APT_COMMAND}\nthen run: npm run build:mediasoup`,
    null,
  );
}

let plan;
try {
  plan = makePlan(toolchain);
} catch (error) {
  const err = error as Error & { code?: string };
  fail(err.code ?? 'MEDIASOUP_BUILD_PLAN_FAILED', err.message, 'The installed mediasoup package could not be read: run npm ci.', null);
}

const cacheHit = isBuilt(plan);
if (!cacheHit) {
  const jobs = values.jobs !== undefined ? Number(values.jobs) : jobCount();
  say(`mediasoup-worker ${plan.mediasoupVersion}: building ${plan.units.length} files with ${jobs} jobs (about 5 minutes on 2 cores); cache ${plan.binPath}`);
  const interactive = !json && process.stdout.isTTY === true;
  let lastLine = 0;
  try {
    const result = await buildWorker(plan, {
      jobs,
      onProgress: ({ done, total, unit }) => {
        const percent = Math.floor((done * 100) / total);
        if (interactive) process.stdout.write(`\r[${String(done).padStart(3)}/${total}] ${percent}% ${unit.name}`.padEnd(100).slice(0, 100));
        else if (done === total || done - lastLine >= 20) {
          lastLine = done;
          say(`[${String(done).padStart(3)}/${total}] ${percent}% (${seconds()} s) ${unit.name}`);
        }
      },
    });
    if (interactive) process.stdout.write('\n');
    if (result.reused > 0) say(`(${result.reused} objects reused from an interrupted build)`);
  } catch (error) {
    if (interactive) process.stdout.write('\n');
    // A concurrent install of the same key may have finished (and cleared the shared objects) first.
    if (!isBuilt(plan)) {
      if (error instanceof WorkerBuildError) fail(error.code, error.message, error.log.slice(-6000), plan.mediasoupVersion);
      const err = error as Error & { code?: string };
      fail(err.code ?? 'MEDIASOUP_BUILD_FAILED', err.message, String(err.stack), plan.mediasoupVersion);
    }
  }
}

writeLastBuild({ ok: true, bin: plan.binPath, key: plan.key, mediasoupVersion: plan.mediasoupVersion }, statusFile);
let installedTo: string | null = null;
if (values['install-to'] !== undefined) {
  installedTo = values['install-to'];
  mkdirSync(dirname(installedTo), { recursive: true });
  const temporary = `${installedTo}.tmp-${process.pid}`;
  copyFileSync(plan.binPath, temporary);
  renameSync(temporary, installedTo);
}
const bytes = statSync(plan.binPath).size;
say(
  `mediasoup-worker ${plan.mediasoupVersion} ${cacheHit ? 'from the cache' : 'built'} in ${seconds()} s: ${plan.binPath} (${(bytes / 1e6).toFixed(1)} MB)` +
    (installedTo !== null ? `, copied to ${installedTo}` : ''),
);
if (json) {
  process.stdout.write(`${JSON.stringify({ ok: true, bin: plan.binPath, key: plan.key, mediasoupVersion: plan.mediasoupVersion, cacheHit, seconds: seconds(), bytes, installedTo })}\n`);
}
