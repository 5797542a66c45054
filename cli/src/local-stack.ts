import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/** What `npm start` writes to var/local.json (mode 0600) for the CLI on the same machine. */
export interface LocalStack {
  url: string;
  clinic: string;
  adminToken: string;
  expiresAt: number;
  pid: number;
  file: string;
}

const REPO_OF_THIS_CLI = resolve(import.meta.dirname, '../..');

/**
 * The local stack's credential: `CLINIC_LOCAL_FILE` if set, else var/local.json
 * in the working directory or one of its parents, else in the repository this
 * CLI was installed from.
 */
export function findLocalStack(cwd: string, env: NodeJS.ProcessEnv = process.env): LocalStack | null {
  const candidates = env.CLINIC_LOCAL_FILE ? [resolve(cwd, env.CLINIC_LOCAL_FILE)] : [...walkUp(cwd), join(REPO_OF_THIS_CLI, 'var', 'local.json')];
  for (const file of candidates) {
    if (!existsSync(file)) continue;
    try {
      const parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<LocalStack>;
      if (typeof parsed.url === 'string' && typeof parsed.adminToken === 'string') {
        return {
          url: parsed.url,
          clinic: typeof parsed.clinic === 'string' ? parsed.clinic : '',
          adminToken: parsed.adminToken,
          expiresAt: Number(parsed.expiresAt ?? 0),
          pid: Number(parsed.pid ?? 0),
          file,
        };
      }
    } catch {
      // A half-written or foreign file: keep looking.
    }
  }
  return null;
}

function* walkUp(from: string): Generator<string> {
  let dir = resolve(from);
  for (;;) {
    yield join(dir, 'var', 'local.json');
    const parent = dirname(dir);
    if (parent === dir) return;
    dir = parent;
  }
}

/** Whether the process that wrote the file still runs (signal 0 only checks). */
export function isRunning(pid: number): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
