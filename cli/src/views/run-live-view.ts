import { CliError } from '../cli-error.js';
import type { Connection } from '../connection.js';
import { colorEnabled, type Output } from '../output.js';

type ViewOptions = { queue: { connection: Connection; dept?: string }; status: { connection: Connection; intervalSeconds: number } };

const ALT_SCREEN_ON = '\u001B[?1049h';
const ALT_SCREEN_OFF = '\u001B[?1049l';

/**
 * Runs a live view until the user quits. It connects and takes its first data
 * before drawing anything, so an unreachable hub or a bad token ends the
 * command with the usual message and exit code rather than a broken screen.
 */
export async function runLiveView<K extends keyof ViewOptions>(out: Output, kind: K, options: ViewOptions[K]): Promise<void> {
  if (out.json) throw new CliError('USAGE', { message: '--watch draws a screen for people; --json is for scripts. Use one of them.' });
  if (!process.stdout.isTTY || !process.stdin.isTTY) throw new CliError('NOT_A_TERMINAL');
  // Ink draws only the last frame when it believes it runs in CI; a terminal is interactive whatever CI says.
  // Ink reads these when it is first imported, which is below.
  delete process.env.CI;
  delete process.env.CONTINUOUS_INTEGRATION;

  const { LiveQueue } = await import('./live-queue.js');
  const { createElement } = await import('react');
  const { render } = await import('ink');
  const color = colorEnabled(process.stdout);
  const connection = options.connection;
  let element: ReturnType<typeof createElement>;
  const closers: (() => void)[] = [];

  if (kind === 'queue') {
    const { dept } = options as ViewOptions['queue'];
    const live = await LiveQueue.connect(connection);
    closers.push(() => live.close());
    const known = live.view()?.departments.map((d) => d.id) ?? [];
    if (dept && !known.includes(dept)) {
      live.close();
      throw new CliError('QUEUE_DEPT_NOT_FOUND', { detail: `${dept} (this clinic has: ${known.join(', ')})` });
    }
    const { QueueApp } = await import('./queue-view.js');
    element = createElement(QueueApp, { live, color, ...(dept ? { dept } : {}) });
  } else {
    const { intervalSeconds } = options as ViewOptions['status'];
    const { LiveStatus } = await import('./live-status.js');
    const status = new LiveStatus(connection, intervalSeconds * 1000);
    await status.start();
    closers.push(() => status.close());
    // Follow one clinic's queue live when the connection names one; the rest comes from the refresh.
    const live = connection.clinic ? await LiveQueue.connect(connection).catch(() => null) : null;
    if (live) closers.push(() => live.close());
    const { StatusApp } = await import('./status-view.js');
    element = createElement(StatusApp, { status, live, url: connection.url, color });
  }

  process.stdout.write(ALT_SCREEN_ON);
  const restore = () => process.stdout.write(ALT_SCREEN_OFF);
  process.once('exit', restore);
  try {
    const instance = render(element, { exitOnCtrlC: true, patchConsole: true });
    await instance.waitUntilExit();
  } finally {
    for (const close of closers) close();
    process.off('exit', restore);
    restore();
  }
}
