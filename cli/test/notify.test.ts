import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { NotifyOverview } from '@clinic-hub/protocol';
import { startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { connectQueue, expectOk, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import { waitFor } from '@clinic-hub/test-kit/wait';
import { WITHOUT_SMS, startNotifyFixture, startWorkerProcess, type NotifyFixture, type WorkerProcess } from '@clinic-hub/test-kit/notify-fixture';
import { cleanEnv, runCli } from '@clinic-hub/test-kit/run-cli';

vi.setConfig({ testTimeout: 120_000 });

/**
 * `clinic notify` and `clinic notify retry` against a real hub, Redis and
 * notification worker. The hub takes SMS contacts; the first worker has no
 * SMS configured, so a patient's "1 ahead" notice dead-letters at once
 * (NOTIFY_CHANNEL_DISABLED). A worker with SMS then delivers it on retry.
 */
const PHONE = '+819055507777';

let fixture: NotifyFixture;
let hub: HubNodeProcess;
let worker: WorkerProcess;
let socket: QueueSocket;
let staff: string;
let otherStaff: string;
let admin: string;
let deadLetterId: string;
let ticketNumber: string;

const as = (token: string, extra: Record<string, string | undefined> = {}) => cleanEnv({ CLINIC_URL: hub.url, CLINIC_TOKEN: token, ...extra });

beforeAll(async () => {
  fixture = await startNotifyFixture();
  hub = await startHubProcess({ redisUrl: fixture.redisUrl, nodeId: 'cli-notify', env: fixture.env() });
  worker = await startWorkerProcess(fixture.env(WITHOUT_SMS));
  staff = await tokenFor('staff');
  otherStaff = await tokenFor('staff', 'otherclinic');
  admin = await tokenFor('admin', '*');
  socket = await connectQueue(hub.url, staff);
  const checkin = expectOk(await request(socket, 'queue:checkin', { dept: 'peds', notify: { channel: 'sms', address: PHONE } }));
  ticketNumber = checkin.event.ticket.number;
  deadLetterId = `testclinic.ticket.${checkin.event.ticket.id}.queue_1_ahead`;
  // The contact is stored after the check-in's own queue event, so the watcher sees it on the next change.
  expectOk(await request(socket, 'queue:checkin', { dept: 'gp' }));
});
afterAll(async () => {
  socket?.close();
  await worker?.stop();
  await hub?.stop();
  await fixture?.stop();
});

describe('clinic notify', () => {
  it('--json shows the dead letter with its code, channel and attempts, and no address', async () => {
    const view = await waitFor('the dead letter in clinic notify --json', async () => {
      const run = await runCli(['notify', '--json'], { env: as(staff) });
      expect(run.code, run.stderr).toBe(0);
      const parsed = run.json<NotifyOverview>();
      return parsed.deadLetters.length > 0 ? { parsed, stdout: run.stdout } : false;
    }, 20_000);
    expect(view.parsed).toMatchObject({ clinic: 'testclinic', counts: { failed: 1, active: 0 } });
    expect(view.parsed.deadLetters).toEqual([
      expect.objectContaining({
        id: deadLetterId,
        kind: 'queue_1_ahead',
        channel: 'sms',
        ticketNumber,
        code: 'NOTIFY_CHANNEL_DISABLED',
        reason: 'NOTIFY_CHANNEL_DISABLED: sms',
        attempts: 1,
      }),
    ]);
    expect(view.stdout).not.toContain(PHONE.slice(1));
  });

  it('prints a table for people, without colour when stdout is not a terminal', async () => {
    const run = await runCli(['notify'], { env: as(staff) });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^testclinic: 1 dead letter · 0 pending/m);
    expect(run.stdout).toMatch(new RegExp(`queue_1_ahead\\s+sms\\s+${ticketNumber}\\s+NOTIFY_CHANNEL_DISABLED\\s+sms\\s+1\\s+${deadLetterId.replaceAll('.', '\\.')}`));
    expect(run.stdout).not.toContain('\u001B[');
  });

  it('shows staff of another clinic nothing of it; an all-clinics admin sees it, or the clinic named', async () => {
    const other = await runCli(['notify', '--json'], { env: as(otherStaff) });
    expect(other.code, other.stderr).toBe(0);
    expect(other.json<NotifyOverview>()).toMatchObject({ clinic: 'otherclinic', counts: { failed: 0 }, deadLetters: [] });

    const all = await runCli(['notify', '--json'], { env: as(admin) });
    expect(all.json<NotifyOverview>().clinic).toBe('*');
    expect(all.json<NotifyOverview>().deadLetters.map((d) => d.id)).toEqual([deadLetterId]);
    const named = await runCli(['notify', '--json', '--clinic', 'otherclinic'], { env: as(admin) });
    expect(named.json<NotifyOverview>()).toMatchObject({ clinic: 'otherclinic', deadLetters: [] });
  });

  it('has help with examples; a bad --count is a usage error', async () => {
    const help = await runCli(['notify', '--help'], { env: as(staff) });
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Examples:');
    expect(help.stdout).toContain('clinic notify retry');
    const retryHelp = await runCli(['notify', 'retry', '--help'], { env: as(staff) });
    expect(retryHelp.stdout).toContain('$ clinic notify retry ');
    const root = await runCli(['--help'], { env: as(staff) });
    expect(root.stdout).toMatch(/notify\s+notifications: pending, failed and dead-lettered/);
    expect(root.stdout).not.toContain('`clinic notify`, `clinic rooms`');
    const bad = await runCli(['notify', '--count', '0', '--json'], { env: as(staff) });
    expect(bad.code).toBe(2);
    expect(bad.error().code).toBe('USAGE');
  });
});

describe('clinic notify retry', () => {
  it('refuses another clinic’s staff (exit 3) and an unknown id (exit 4)', async () => {
    const foreign = await runCli(['notify', 'retry', deadLetterId, '--json'], { env: as(otherStaff) });
    expect(foreign.code).toBe(3);
    expect(foreign.error().code).toBe('AUTH_WRONG_CLINIC');
    const unknown = await runCli(['notify', 'retry', 'testclinic.no-such-notice', '--json'], { env: as(staff) });
    expect(unknown.code).toBe(4);
    expect(unknown.error()).toMatchObject({ code: 'NOTIFY_DEAD_LETTER_NOT_FOUND', detail: 'testclinic.no-such-notice' });
    expect(unknown.error().hint).toContain('clinic notify');
  });

  it('moves the dead letter back to the queue; a worker with SMS delivers it', async () => {
    await worker.stop();
    worker = await startWorkerProcess(fixture.env());
    const run = await runCli(['notify', 'retry', deadLetterId, '--json'], { env: as(staff) });
    expect(run.code, run.stderr).toBe(0);
    expect(run.json()).toEqual({ action: 'notify-retry', id: deadLetterId });

    const sms = await waitFor('the SMS after the retry', () => fixture.sms.accepted.find((m) => m.to === PHONE), 20_000);
    expect(sms.body).toContain(ticketNumber);
    const after = await waitFor('the dead letter to be gone', async () => {
      const view = (await runCli(['notify', '--json'], { env: as(staff) })).json<NotifyOverview>();
      return view.counts.failed === 0 && view.counts.completed >= 1 ? view : false;
    });
    expect(after.deadLetters).toEqual([]);

    const again = await runCli(['notify', 'retry', deadLetterId], { env: as(staff) });
    expect(again.code).toBe(4);
    expect(again.stderr).toContain('error NOTIFY_DEAD_LETTER_NOT_FOUND');
  });
});
