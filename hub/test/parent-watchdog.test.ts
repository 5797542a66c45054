import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { childNodeArgs } from '@clinic-hub/test-kit/hub-node';
import { isRunning } from '@clinic-hub/test-kit/processes';
import { waitFor } from '@clinic-hub/test-kit/wait';

/**
 * platform/src/process/parent-watchdog.ts, loaded into every Node process the tests and
 * benchmarks start (childNodeArgs): when the parent dies without stopping
 * its child (kill -9, a test worker killed on a timeout), the child stops
 * itself instead of lingering with its ports and CPU.
 */
describe('the parent watchdog', () => {
  it('stops a child whose parent was killed', async () => {
    const parent = spawn(process.execPath, childNodeArgs(resolve(import.meta.dirname, 'support/orphan-parent.ts')), { stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    parent.stdout!.on('data', (c: Buffer) => (output += c.toString()));
    const childPid = Number(await waitFor('the child pid', () => /^(\d+)\n/.exec(output)?.[1], 20_000));
    await new Promise((r) => setTimeout(r, 1500));
    expect(isRunning(childPid), 'the child runs while its parent does').toBe(true);
    parent.kill('SIGKILL');
    try {
      await waitFor('the orphan to stop itself', () => !isRunning(childPid), 10_000);
    } finally {
      if (isRunning(childPid)) process.kill(childPid, 'SIGKILL');
    }
  });
});
