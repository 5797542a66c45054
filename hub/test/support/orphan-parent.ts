/**
 * For hub/test/parent-watchdog.test.ts: starts a child that would run
 * forever (with the parent watchdog, as test children are started), prints
 * its pid, and waits to be killed.
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { childNodeArgs } from '@clinic-hub/test-kit/hub-node';

const child = spawn(process.execPath, childNodeArgs(resolve(import.meta.dirname, 'forever.ts')), { stdio: 'ignore', detached: true });
child.unref();
process.stdout.write(`${child.pid}\n`);
setInterval(() => undefined, 1000);
