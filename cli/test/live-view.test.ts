import { tmpdir } from 'node:os';
import stringWidth from 'string-width';
import { createElement } from 'react';
import { render } from 'ink-testing-library';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { QueueSnapshot } from '@clinic-hub/protocol';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { connectQueue, expectOk, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import { waitFor } from '@clinic-hub/test-kit/wait';
import { resolveConnection } from '../src/connection.js';
import { LiveQueue } from '../src/views/live-queue.js';
import { LiveStatus } from '../src/views/live-status.js';
import { QueueApp } from '../src/views/queue-view.js';
import { StatusApp } from '../src/views/status-view.js';
import { cleanEnv } from '@clinic-hub/test-kit/run-cli';

let redis: TestRedis;
let hub: HubNodeProcess;
let staff: string;
let elsewhere: QueueSocket;
const closers: (() => void)[] = [];
const SIZE = { columns: 80, rows: 24 };

async function hubQueue(): Promise<QueueSnapshot> {
  const res = await fetch(`${hub.url}/api/clinics/testclinic/queue`, { headers: { authorization: `Bearer ${staff}` } });
  return (await res.json()) as QueueSnapshot;
}

/** The frame fits an 80×24 terminal: no line wider than 80 columns, and one row to spare. */
function expectFits(frame: string) {
  const lines = frame.split('\n');
  expect(lines.length).toBeLessThanOrEqual(SIZE.rows - 1);
  for (const line of lines) expect(stringWidth(line), line).toBeLessThanOrEqual(SIZE.columns);
}

beforeAll(async () => {
  redis = await startTestRedis();
  hub = await startHubProcess({ redisUrl: redis.url, nodeId: 'live-a' });
  staff = await tokenFor('staff');
  elsewhere = await connectQueue(hub.url, staff);
});

afterAll(async () => {
  for (const close of closers) close();
  elsewhere?.close();
  await hub?.stop();
  await redis?.cleanup();
});

describe('clinic queue --watch (Ink)', () => {
  it('shows calls made elsewhere as they happen, and n calls the next ticket', async () => {
    const live = await LiveQueue.connect(resolveConnection({ url: hub.url, token: staff }, cleanEnv(), tmpdir()));
    closers.push(() => live.close());
    const app = render(createElement(QueueApp, { live, color: false, size: SIZE }));
    closers.push(() => app.unmount());
    const frame = () => app.lastFrame() ?? '';

    await waitFor('the empty queue', () => frame().includes('nobody in line'));
    expect(frame()).toContain('テストクリニック Test Clinic');
    expect(frame()).toContain('● live');
    expect(frame()).toMatch(/n:next r:recall .* q:quit/);

    expectOk(await request(elsewhere, 'queue:checkin', { dept: 'gp' }));
    expectOk(await request(elsewhere, 'queue:checkin', { dept: 'gp' }));
    await waitFor('both tickets', () => frame().includes('A-001') && frame().includes('A-002'));
    expect(frame()).toMatch(/\[gp 内科 2\]/);

    // A call from another socket (another desk, another hub node) shows up without any key press.
    expectOk(await request(elsewhere, 'queue:call-next', { dept: 'gp', room: 'r1' }));
    await waitFor('A-001 called to r1 on screen', () => /A-001\s+called\s+r1/.test(frame()));
    expect(frame()).toContain('next → r2 (auto)');
    expectFits(frame());

    // n: the next ticket to the first free room.
    app.stdin.write('n');
    await waitFor('A-002 called to r2 on screen', () => /A-002\s+called\s+r2/.test(frame()));
    expect(frame()).toContain('Called A-002 to r2');
    expect((await hubQueue()).tickets.find((t) => t.number === 'A-002')).toMatchObject({ status: 'called', room: 'r2' });
    expectFits(frame());

    // Every room busy: n says so instead of guessing.
    app.stdin.write('n');
    await waitFor('the no-free-room message', () => frame().includes('Every room of gp has a patient'));

    // j selects A-002, d finishes it.
    app.stdin.write('j');
    await waitFor('A-002 selected', () => />\s+A-002/.test(frame()));
    app.stdin.write('d');
    await waitFor('A-002 gone', () => !frame().includes('A-002') || frame().includes('A-002 done'));
    expect((await hubQueue()).tickets.some((t) => t.number === 'A-002')).toBe(false);

    // c asks first; y cancels.
    app.stdin.write('c');
    await waitFor('the confirmation', () => frame().includes('Cancel A-001? y to confirm'));
    app.stdin.write('y');
    await waitFor('A-001 cancelled', () => frame().includes('Cancelled A-001'));
    expect((await hubQueue()).tickets).toHaveLength(0);

    // Keys that arrive together are taken one by one; ? shows the help, any key closes it.
    app.stdin.write('l?');
    await waitFor('help', () => frame().includes('select a ticket'));
    expectFits(frame());
    app.stdin.write('x');
    await waitFor('help closed, on peds', () => !frame().includes('select a ticket') && frame().includes('[peds 小児科 0]'));
  });

  it('scrolls a long line within the screen and says how many more there are', async () => {
    for (let i = 0; i < 25; i++) expectOk(await request(elsewhere, 'queue:checkin', { dept: 'peds' }));
    const live = await LiveQueue.connect(resolveConnection({ url: hub.url, token: staff }, cleanEnv(), tmpdir()));
    closers.push(() => live.close());
    const app = render(createElement(QueueApp, { live, color: false, size: SIZE, dept: 'peds' }));
    closers.push(() => app.unmount());
    const frame = () => app.lastFrame() ?? '';
    await waitFor('the peds line', () => frame().includes('B-001'));
    expect(frame()).toMatch(/… \d+ more: 0 above/);
    expectFits(frame());
    app.stdin.write('j'.repeat(24));
    await waitFor('B-025 selected', () => />\s+B-025/.test(frame()));
    expect(frame()).not.toContain('B-001 ');
    expectFits(frame());
  });
});

describe('a live view that runs for hours', () => {
  it('refreshes its token before it expires and keeps following', async () => {
    // 70 s to live: the refresh is due at once (10 min before expiry, at least 5 s after start).
    const shortLived = await tokenFor('staff', 'testclinic', { ttlSeconds: 70 });
    const live = await LiveQueue.connect(resolveConnection({ url: hub.url, token: shortLived }, cleanEnv(), tmpdir()));
    closers.push(() => live.close());
    const auth = live.socket.auth as { token: string };
    const refreshed = await waitFor('a fresh token in socket.auth', () => auth.token !== shortLived && auth.token, 15_000);
    const claims = JSON.parse(Buffer.from(refreshed.split('.')[1]!, 'base64url').toString()) as { exp: number; role: string };
    expect(claims.role).toBe('staff');
    expect(claims.exp * 1000 - Date.now()).toBeGreaterThan(3600_000);
    const seq = live.follower.seq!;
    expectOk(await request(elsewhere, 'queue:checkin', { dept: 'gp' }));
    await waitFor('the next event', () => live.follower.seq === seq + 1);
  });
});

describe('clinic status --watch (Ink)', () => {
  it('shows nodes and Redis, and the followed clinic’s numbers follow the events', async () => {
    const admin = await tokenFor('admin', '*');
    const connection = resolveConnection({ url: hub.url, token: admin, clinic: 'testclinic' }, cleanEnv(), tmpdir());
    // A long refresh interval: the queue numbers below can only come from the event stream.
    const status = new LiveStatus(connection, 600_000);
    await status.start();
    const live = await LiveQueue.connect(connection);
    closers.push(() => status.close(), () => live.close());
    const app = render(createElement(StatusApp, { status, live, url: hub.url, color: false, size: SIZE }));
    closers.push(() => app.unmount());
    const frame = () => app.lastFrame() ?? '';
    await waitFor('the status screen', () => frame().includes('live-a'));
    expect(frame()).toMatch(/Redis: up · version \d/);
    expect(frame()).toContain('AOF on');
    const waitingBefore = live.view()!.departments.find((d) => d.id === 'gp')!.waiting;

    expectOk(await request(elsewhere, 'queue:checkin', { dept: 'gp' }));
    await waitFor('gp waiting + 1', () => new RegExp(`gp 内科\\s+${waitingBefore + 1}\\s`).test(frame()));
    expectFits(frame());

    app.stdin.write('n');
    await waitFor('the call', () => /Called [A-Z]-\d+ to r1/.test(frame()));
    expect((await hubQueue()).tickets.filter((t) => t.dept === 'gp' && t.status === 'called').map((t) => t.room)).toContain('r1');
  });
});
