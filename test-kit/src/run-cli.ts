import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const CLI_BIN = resolve(import.meta.dirname, '../../cli/bin/clinic.js');

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON (for --json runs). */
  json<T = any>(): T;
  /** The `{ error }` document a --json run prints on stderr when it fails. */
  error(): { code: string; message: string; detail?: string; hint?: string };
}

/**
 * An environment with nothing of the developer's own: no CLINIC_* variables,
 * a fresh config directory, no local stack unless the test gives one, and
 * no CI flag (the CLI must behave the same in CI).
 */
export function cleanEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (key.startsWith('CLINIC_') || key === 'NO_COLOR' || key === 'FORCE_COLOR' || key === 'XDG_CONFIG_HOME') continue;
    env[key] = value;
  }
  env.XDG_CONFIG_HOME = mkdtempSync(join(tmpdir(), 'clinic-cli-config-'));
  env.CLINIC_LOCAL_FILE = join(env.XDG_CONFIG_HOME, 'no-local-stack.json');
  for (const [key, value] of Object.entries(extra)) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}

/** Runs `node cli/bin/clinic.js ARGS` as a child process, as a user or script would. */
export function runCli(args: string[], options: { env: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number }): Promise<CliRun> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [CLI_BIN, ...args], { env: options.env, cwd: options.cwd ?? tmpdir(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`clinic ${args.join(' ')} did not finish in time\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, options.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({
        code: code ?? -1,
        stdout,
        stderr,
        json() {
          try {
            return JSON.parse(stdout);
          } catch {
            throw new Error(`clinic ${args.join(' ')}: stdout is not JSON (exit ${code})\nstdout: ${stdout}\nstderr: ${stderr}`);
          }
        },
        error() {
          try {
            return JSON.parse(stderr.trim().split('\n').at(-1)!).error;
          } catch {
            throw new Error(`clinic ${args.join(' ')}: stderr has no JSON error (exit ${code})\nstderr: ${stderr}`);
          }
        },
      });
    });
  });
}
