import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import stringWidth from 'string-width';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { CONSULT_HUB_ENV, announceMediaNode } from '@clinic-hub/test-kit/consult-client';
import { REPO_ROOT, startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { connectQueue, expectOk, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import { waitFor } from '@clinic-hub/test-kit/wait';
import { CLI_BIN } from '@clinic-hub/test-kit/run-cli';

function findTmux(): string | null {
  try {
    return execFileSync('sh', ['-c', 'command -v tmux'], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

const tmux = findTmux();
if (!tmux) {
  // Said out loud, so a green run without tmux is not mistaken for a tested screen.
  console.warn('queue-watch-tmux.test.ts: SKIPPED — tmux is not installed (apt-get install tmux); the 80×24 end-to-end run of `clinic queue --watch` needs it');
}

/** A tmux server of our own (its own socket), so the test never touches a user's sessions. */
const SOCKET = `clinic-cli-test-${process.pid}`;
const tmuxRun = (...args: string[]) => execFileSync(tmux!, ['-L', SOCKET, ...args], { encoding: 'utf8' });
const screen = () => tmuxRun('capture-pane', '-p', '-t', 'watch');

let redis: TestRedis;
let hub: HubNodeProcess;
let desk: QueueSocket;

describe.skipIf(!tmux)('clinic queue --watch in a real terminal (tmux, 80×24)', () => {
  beforeAll(async () => {
    redis = await startTestRedis();
    hub = await startHubProcess({ redisUrl: redis.url, nodeId: 'tmux-a' });
    desk = await connectQueue(hub.url, await tokenFor('staff'));
  });

  afterAll(async () => {
    try {
      tmuxRun('kill-server');
    } catch {
      // already gone
    }
    desk?.close();
    await hub?.stop();
    await redis?.cleanup();
  });

  it('draws the queue, shows a call made at another desk, and quits on q', async () => {
    const staff = await tokenFor('staff');
    const config = mkdtempSync(join(tmpdir(), 'clinic-cli-tmux-'));
    // The environment goes on the command line: a tmux server passes its own to new panes.
    // CI=true as in CI: the view must still draw every frame in a terminal.
    const command = [
      `env -u NO_COLOR CI=true TERM=xterm-256color XDG_CONFIG_HOME=${config} CLINIC_URL=${hub.url} CLINIC_TOKEN=${staff}`,
      `${process.execPath} ${CLI_BIN} queue --watch --dept gp;`,
      'echo "EXIT=$?"; sleep 60',
    ].join(' ');
    tmuxRun('new-session', '-d', '-s', 'watch', '-x', '80', '-y', '24', command);

    await waitFor('the live view', () => screen().includes('● live'), 30_000);
    expect(screen()).toContain('nobody in line');

    expectOk(await request(desk, 'queue:checkin', { dept: 'gp' }));
    expectOk(await request(desk, 'queue:checkin', { dept: 'gp', priority: 'urgent' }));
    expectOk(await request(desk, 'queue:call-next', { dept: 'gp', room: 'r1' }));
    const shown = await waitFor('the call on screen', () => {
      const text = screen();
      return /A-002\s+urgent\s+called\s+r1/.test(text) && /A-001\s+waiting\s+0/.test(text) ? text : false;
    });

    const lines = shown.split('\n');
    expect(lines[0]).toMatch(/^Clinic Hub · テストクリニック Test Clinic · ● live · seq 3\s+\d\d:\d\d:\d\d$/);
    expect(lines[1]).toContain('[gp 内科 1]');
    expect(lines[2]).toContain('next → r2 (auto)');
    expect(lines[3]).toBe('Rooms: r1 A-002 called · r2 free');
    expect(shown).toContain('Last: Called A-002 to r1');
    // The key line sits on the last row Ink draws, inside the 24 rows.
    const keyRow = lines.findIndex((l) => l.startsWith('n:next r:recall'));
    expect(keyRow).toBeGreaterThan(4);
    expect(keyRow).toBeLessThan(24);

    tmuxRun('send-keys', '-t', 'watch', 'q');
    const after = await waitFor('the exit', () => {
      const text = screen();
      return text.includes('EXIT=') ? text : false;
    });
    expect(after).toContain('EXIT=0');
    // The alternate screen is left: the shell's screen is back, without the view.
    expect(after).not.toContain('n:next r:recall');
  });
});

describe.skipIf(!tmux)('clinic queue --watch on the demo clinic (tmux, 80×24): connection state and whole messages', () => {
  let demoHub: HubNodeProcess;
  let demoRedis: TestRedis;
  let reception: QueueSocket;
  const session = 'demo';
  const demoScreen = () => tmuxRun('capture-pane', '-p', '-t', session);

  beforeAll(async () => {
    demoRedis = await startTestRedis();
    const redis = new Redis(demoRedis.url);
    await announceMediaNode(redis, { id: 'media-demo', url: 'ws://media-demo.test:7000' });
    redis.disconnect();
    // The clinic a newcomer sees: its long name, its online department.
    demoHub = await startHubProcess({ redisUrl: demoRedis.url, nodeId: 'tmux-demo', env: { ...CONSULT_HUB_ENV, CLINICS_DIR: resolve(REPO_ROOT, 'config/clinics') } });
    reception = await connectQueue(demoHub.url, await tokenFor('staff', 'demo'));
  });

  afterAll(async () => {
    try {
      tmuxRun('kill-session', '-t', session);
    } catch {
      // already gone
    }
    reception?.close();
    await demoHub?.stop();
    await demoRedis?.cleanup();
  });

  /** The message lines: between the last list row and the key line, as one text. */
  function messageOf(text: string): string {
    const lines = text.split('\n');
    const keyRow = lines.findIndex((l) => l.startsWith('n:next r:recall'));
    const listEnd = lines.slice(0, keyRow).map((l) => l.trim()).lastIndexOf('');
    return lines
      .slice(listEnd + 1, keyRow)
      .map((l) => l.trimEnd())
      .join(' ');
  }

  it('keeps the connection state in sight beside a long clinic name, and shows long messages whole', async () => {
    const staff = await tokenFor('staff', 'demo');
    const config = mkdtempSync(join(tmpdir(), 'clinic-cli-tmux-'));
    const command = [
      `env -u NO_COLOR CI=true TERM=xterm-256color XDG_CONFIG_HOME=${config} CLINIC_URL=${demoHub.url} CLINIC_TOKEN=${staff}`,
      `${process.execPath} ${CLI_BIN} queue --watch --dept online;`,
      'echo "EXIT=$?"; sleep 60',
    ].join(' ');
    tmuxRun('new-session', '-d', '-s', session, '-x', '80', '-y', '24', command);
    await waitFor('the live view', () => demoScreen().includes('nobody in line'), 30_000);
    const header = demoScreen().split('\n')[0]!;
    expect(header).toMatch(/^Clinic Hub · さくら内科クリニック Sakura .*… · ● live · seq 0\s+\d\d:\d\d:\d\d$/);
    expect(stringWidth(header)).toBeLessThanOrEqual(80);

    // n in the online department admits to video, and says so in full over two lines.
    const ticket = expectOk(await request(reception, 'queue:checkin', { dept: 'online' })).event.ticket;
    await waitFor('the ticket', () => demoScreen().includes(ticket.number));
    tmuxRun('send-keys', '-t', session, 'n');
    const admitted = `Admitted ${ticket.number} to video in video1: their page shows the join button. Join from the staff console ("Join video").`;
    await waitFor('the admission on screen', () => messageOf(demoScreen()) === admitted || undefined, 15_000).catch((error: Error) => {
      throw new Error(`${error.message}; the screen shows:\n${demoScreen()}`);
    });
    expect(new RegExp(`${ticket.number}\\s+called\\s+video1`).test(demoScreen())).toBe(true);

    // The only room is taken: the refusal and what to do, whole.
    tmuxRun('send-keys', '-t', session, 'n');
    await waitFor('the no-free-room message', () => messageOf(demoScreen()).startsWith('Every room of online has a patient'));
    expect(messageOf(demoScreen())).toBe('Every room of online has a patient: press o to choose one (one in consultation is finished by the call).');
    expectOk(await request(reception, 'queue:checkin', { dept: 'online' }));
    tmuxRun('send-keys', '-t', session, 'o');
    await waitFor('video1 chosen', () => messageOf(demoScreen()) === 'Next calls go to video1.' || undefined);
    tmuxRun('send-keys', '-t', session, 'n');
    const busy = await waitFor('the busy room', () => (messageOf(demoScreen()).startsWith('QUEUE_ROOM_BUSY') ? messageOf(demoScreen()) : undefined), 15_000);
    expect(busy).toMatch(/^QUEUE_ROOM_BUSY: The room already has a called patient who has not started\. .* — .*$/);
    expect(busy.endsWith('…')).toBe(false);
    for (const line of demoScreen().split('\n')) expect(stringWidth(line), line).toBeLessThanOrEqual(80);

    // The hub goes away: the header says so, whatever the clinic's name.
    await demoHub.stop();
    await waitFor('reconnecting', () => demoScreen().split('\n')[0]!.includes('○ reconnecting…'), 15_000);
    expect(demoScreen().split('\n')[0]).toMatch(/ · ○ reconnecting… · seq \d+\s+\d\d:\d\d:\d\d$/);
  });
});
