/**
 * Carries out a build plan: flatc for the schemas, the patch, one g++ per
 * source file in a pool of jobs, the link, and an atomic install into the
 * cache (the binary is linked under a temporary name and renamed, so another
 * install never sees half a binary). Objects are kept per key in the build
 * folder until the binary is installed, so an interrupted build resumes.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { applyPatch } from './patches.js';
import { FLATC_FLAGS, type BuildPlan, type CompileUnit } from './build-plan.js';

export class WorkerBuildError extends Error {
  constructor(
    readonly code: 'MEDIASOUP_BUILD_COMPILE_FAILED' | 'MEDIASOUP_BUILD_LINK_FAILED' | 'MEDIASOUP_BUILD_FLATC_FAILED',
    message: string,
    readonly log: string,
  ) {
    super(message);
  }
}

export interface BuildProgress {
  (event: { done: number; total: number; unit: CompileUnit; seconds: number }): void;
}

export interface BuildResult {
  binPath: string;
  compiled: number;
  reused: number;
  seconds: number;
}

interface Finished {
  code: number | null;
  output: string;
}

function runTool(command: string, args: string[]): Promise<Finished> {
  return new Promise((resolvePromise) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', (error) => resolvePromise({ code: null, output: `${output}${error.message}` }));
    child.on('close', (code) => resolvePromise({ code, output }));
  });
}

/** A unique temporary name beside `path`, renamed onto it once whole. */
function temporaryBeside(path: string): string {
  return `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

export function jobCount(env: NodeJS.ProcessEnv = process.env): number {
  const asked = Number(env.MEDIASOUP_BUILD_JOBS);
  return Number.isInteger(asked) && asked > 0 ? asked : availableParallelism();
}

async function generateFlatbuffers(plan: BuildPlan): Promise<void> {
  const out = join(plan.workDir, 'generated', 'FBS');
  const stamp = join(out, '.complete');
  if (existsSync(stamp)) return;
  const temporary = temporaryBeside(out);
  mkdirSync(temporary, { recursive: true });
  const result = await runTool('flatc', [...FLATC_FLAGS, '-o', temporary, ...plan.schemas.map((schema) => join(plan.workerDir, schema))]);
  if (result.code !== 0) {
    rmSync(temporary, { recursive: true, force: true });
    throw new WorkerBuildError('MEDIASOUP_BUILD_FLATC_FAILED', `flatc failed on mediasoup's schemas`, result.output);
  }
  writeFileSync(join(temporary, '.complete'), '');
  rmSync(out, { recursive: true, force: true });
  try {
    renameSync(temporary, out);
  } catch (error) {
    // Another build of the same key renamed its (identical) headers first.
    if (!existsSync(stamp)) throw error;
    rmSync(temporary, { recursive: true, force: true });
  }
}

function writePatchedSources(plan: BuildPlan): void {
  for (const patch of plan.patches) {
    const target = join(plan.workDir, 'patched', patch.file);
    const text = applyPatch(patch, readFileSync(join(plan.workerDir, patch.file), 'utf8'));
    mkdirSync(dirname(target), { recursive: true });
    const temporary = temporaryBeside(target);
    writeFileSync(temporary, text);
    renameSync(temporary, target);
  }
}

async function compile(plan: BuildPlan, unit: CompileUnit): Promise<void> {
  mkdirSync(dirname(unit.object), { recursive: true });
  const temporary = temporaryBeside(unit.object);
  const result = await runTool(plan.toolchain.cxx, [...unit.flags, '-c', unit.source, '-o', temporary]);
  if (result.code !== 0) {
    rmSync(temporary, { force: true });
    throw new WorkerBuildError('MEDIASOUP_BUILD_COMPILE_FAILED', `g++ failed on ${unit.name}`, result.output);
  }
  renameSync(temporary, unit.object);
}

/** Builds the plan's binary into the cache (unless it is there already) and returns its path. */
export async function buildWorker(plan: BuildPlan, options: { jobs?: number; onProgress?: BuildProgress } = {}): Promise<BuildResult> {
  const started = performance.now();
  mkdirSync(plan.workDir, { recursive: true });
  await generateFlatbuffers(plan);
  writePatchedSources(plan);

  const pending = plan.units.filter((unit) => !existsSync(unit.object));
  const reused = plan.units.length - pending.length;
  let done = reused;
  let failure: WorkerBuildError | null = null;
  const jobs = Math.max(1, Math.min(options.jobs ?? jobCount(), pending.length));
  const queue = [...pending];
  await Promise.all(
    Array.from({ length: jobs }, async () => {
      for (let unit = queue.shift(); unit !== undefined && failure === null; unit = queue.shift()) {
        // Another install of the same key (a second worktree, CI beside a developer) shares these objects:
        // what it compiled meanwhile is not compiled twice, and once it has linked there is nothing left to do.
        if (existsSync(plan.binPath)) return;
        const unitStarted = performance.now();
        try {
          if (!existsSync(unit.object)) await compile(plan, unit);
        } catch (error) {
          failure ??= error as WorkerBuildError;
          return;
        }
        done += 1;
        options.onProgress?.({ done, total: plan.units.length, unit, seconds: (performance.now() - unitStarted) / 1000 });
      }
    }),
  );
  if (failure !== null) throw failure;
  if (existsSync(plan.binPath)) return { binPath: plan.binPath, compiled: pending.length, reused, seconds: (performance.now() - started) / 1000 };

  mkdirSync(dirname(plan.binPath), { recursive: true });
  const linked = temporaryBeside(plan.binPath);
  const link = await runTool(plan.toolchain.cxx, ['-o', linked, ...plan.units.map((unit) => unit.object), ...plan.linkFlags]);
  if (link.code !== 0) {
    rmSync(linked, { force: true });
    throw new WorkerBuildError('MEDIASOUP_BUILD_LINK_FAILED', 'linking mediasoup-worker failed', link.output);
  }
  chmodSync(linked, 0o755);
  writeFileSync(
    join(dirname(plan.binPath), 'build.json'),
    `${JSON.stringify({ key: plan.key, mediasoupVersion: plan.mediasoupVersion, toolchain: plan.toolchain, builtAt: new Date().toISOString(), bytes: statSync(linked).size }, null, 2)}\n`,
  );
  renameSync(linked, plan.binPath);
  // The objects are only needed to resume an interrupted build of this key.
  rmSync(plan.workDir, { recursive: true, force: true });
  return { binPath: plan.binPath, compiled: pending.length, reused, seconds: (performance.now() - started) / 1000 };
}
