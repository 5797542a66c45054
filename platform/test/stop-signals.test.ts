import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { jsonLogLines } from '@clinic-hub/test-kit/log-lines';

/** onStopSignals in a real child process (test/support/stop-signals-child.ts), sent real signals. */
const CHILD = resolve(import.meta.dirname, 'support/stop-signals-child.ts');
const children: ChildProcess[] = [];

afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

interface Child {
  signal(name: NodeJS.Signals): void;
  /** Settles a step: `resolve first`, `reject again` … */
  say(line: string): void;
  /** The log lines so far, once `count` of them have come. */
  logged(count: number): Promise<{ signal: string; msg: string }[]>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  running(): boolean;
}

async function startChild(again: 'ignore' | 'exit' | 'step'): Promise<Child> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, again], { stdio: ['pipe', 'pipe', 'inherit'] });
  children.push(child);
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => child.once('exit', (code, signal) => done({ code, signal })));
  const until = async <T>(probe: () => T | undefined, what: string): Promise<T> => {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const value = probe();
      if (value !== undefined) return value;
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`child: no ${what}; output: ${output}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const lines = () => jsonLogLines(output) as { signal: string; msg: string }[];
  await until(() => (output.includes('ready\n') ? true : undefined), 'ready');
  return {
    signal: (name) => child.kill(name),
    say: (line) => child.stdin!.write(`${line}\n`),
    logged: (count) => until(() => (lines().length >= count ? lines() : undefined), `${count} log line(s)`),
    exited,
    running: () => child.exitCode === null && child.signalCode === null,
  };
}

const settle = () => new Promise((r) => setTimeout(r, 300));

describe('onStopSignals', () => {
  it('takes the graceful step on the first signal and logs it; later signals are ignored by default; exits 0 when the step is done', async () => {
    const child = await startChild('ignore');
    child.signal('SIGTERM');
    expect(await child.logged(1)).toEqual([{ signal: 'SIGTERM', msg: 'first' }]);
    child.signal('SIGINT');
    await settle();
    expect(child.running(), 'a second signal does not end it').toBe(true);
    expect(await child.logged(1)).toHaveLength(1);
    child.say('resolve first');
    expect(await child.exited).toEqual({ code: 0, signal: null });
  });

  it('exits 1 when the step fails', async () => {
    const child = await startChild('ignore');
    child.signal('SIGINT');
    expect(await child.logged(1)).toEqual([{ signal: 'SIGINT', msg: 'first' }]);
    child.say('reject first');
    expect(await child.exited).toEqual({ code: 1, signal: null });
  });

  it('with again: exit, a second signal ends the process at once with 1 while the first step still runs', async () => {
    const child = await startChild('exit');
    child.signal('SIGTERM');
    await child.logged(1);
    await settle();
    expect(child.running()).toBe(true);
    child.signal('SIGTERM');
    expect(await child.exited).toEqual({ code: 1, signal: null });
  });

  it('with again: a step, each later signal takes and logs it; the process exits when a step settles', async () => {
    const child = await startChild('step');
    child.signal('SIGTERM');
    await child.logged(1);
    child.signal('SIGINT');
    expect(await child.logged(2)).toEqual([
      { signal: 'SIGTERM', msg: 'first' },
      { signal: 'SIGINT', msg: 'again' },
    ]);
    child.signal('SIGTERM');
    expect((await child.logged(3))[2]).toEqual({ signal: 'SIGTERM', msg: 'again' });
    expect(child.running(), 'the first step has not finished').toBe(true);
    child.say('resolve again');
    expect(await child.exited).toEqual({ code: 0, signal: null });
  });
});
