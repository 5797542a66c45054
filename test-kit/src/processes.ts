import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

/**
 * Whether a process with this pid is running. Signal 0 only checks that the
 * pid exists, and a zombie exists until its parent reaps it: a grandchild
 * that outlived its parent (a mediasoup-worker after its media-server) is
 * reparented to pid 1, which in a container may never reap it. A zombie has
 * ended, so it does not count (its state in /proc/<pid>/stat is Z).
 */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) S …": comm may hold spaces and parentheses, the state follows the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    // Gone between the two looks; or a system without /proc, where signal 0's answer stands.
    return !existsSync('/proc/self/stat');
  }
}

/**
 * Sends SIGTERM and resolves with the exit code, or with `still running` when
 * the process has not exited within `ms` (it is then killed with SIGKILL).
 */
export async function terminateWithin(child: ChildProcess, ms: number): Promise<number | null | 'still running'> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([exited, new Promise<'still running'>((resolve) => (timer = setTimeout(() => resolve('still running'), ms)))]);
  clearTimeout(timer);
  if (outcome === 'still running') {
    child.kill('SIGKILL');
    await exited;
  }
  return outcome;
}
