import { statSync, readFileSync, mkdirSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { estimateWaitMinutes, type QueueSnapshot, type Announcement } from '@clinic-hub/protocol';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { startHubProcess, testTokens, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { connectQueue, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import { waitFor } from '@clinic-hub/test-kit/wait';
import { freePort } from '@clinic-hub/platform/redis-server';
import { TokenIssuer } from '@clinic-hub/platform/token-issuer';
import { cleanEnv, runCli } from '@clinic-hub/test-kit/run-cli';

// Each test runs the CLI as a process several times: on a busy two-core machine that takes a while.
vi.setConfig({ testTimeout: 120_000 });

let redis: TestRedis;
let hub: HubNodeProcess;
let staff: string;
let admin: string;
let observer: QueueSocket;
const announcements: Announcement[] = [];
const sockets: QueueSocket[] = [];

/** What the hub holds, read over its own HTTP API. */
async function hubQueue(): Promise<QueueSnapshot> {
  const res = await fetch(`${hub.url}/api/clinics/testclinic/queue`, { headers: { authorization: `Bearer ${staff}` } });
  return (await res.json()) as QueueSnapshot;
}

const asStaff = (extra: Record<string, string | undefined> = {}) => cleanEnv({ CLINIC_URL: hub.url, CLINIC_TOKEN: staff, ...extra });

beforeAll(async () => {
  redis = await startTestRedis();
  hub = await startHubProcess({ redisUrl: redis.url, nodeId: 'cli-a' });
  staff = await tokenFor('staff');
  admin = await tokenFor('admin', '*');
  observer = await connectQueue(hub.url, staff);
  observer.on('queue:announcement', (a) => announcements.push(a));
});

afterAll(async () => {
  observer?.close();
  for (const s of sockets) s.close();
  await hub?.stop();
  await redis?.cleanup();
});

describe('reading', () => {
  it('status --json: the node, Redis and the clinic queues, as the hub reports them', async () => {
    const run = await runCli(['status', '--json'], { env: asStaff() });
    expect(run.code, run.stderr).toBe(0);
    const status = run.json();
    expect(status.nodes.map((n: { nodeId: string }) => n.nodeId)).toEqual(['cli-a']);
    expect(status.nodes[0].up).toBe(true);
    expect(status.redis).toMatchObject({ up: true, aof: true });
    expect(status.redis.version).toMatch(/^\d+\.\d+/);
    expect(status.clinics.map((c: { id: string }) => c.id)).toEqual(['testclinic']);
    expect(status.clinics[0].waiting).toEqual({ gp: 0, peds: 0, online: 0 });
  });

  it('status for people: a table without colour codes when stdout is not a terminal', async () => {
    const run = await runCli(['status'], { env: asStaff() });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Hub nodes');
    expect(run.stdout).toMatch(/cli-a\s+up\s+uws/);
    expect(run.stdout).toContain('AOF on');
    expect(run.stdout).not.toContain('\u001B[');
  });

  it('displays --json lists a connected screen with its node, and it shows as gone after it leaves', async () => {
    const screen = await connectQueue(hub.url, (await testTokens.issue({ sub: 'display:lobby-tv', role: 'display', clinic: 'testclinic' }, 600)).token);
    const online = await waitFor('the screen in clinic displays', async () => {
      const run = await runCli(['displays', '--json'], { env: asStaff() });
      const found = run.json().displays.find((d: { sub: string; online: boolean }) => d.sub === 'display:lobby-tv' && d.online);
      return found ?? false;
    });
    expect(online).toMatchObject({ node: 'cli-a', online: true });
    screen.close();
    const gone = await waitFor('the screen to be gone', async () => {
      const run = await runCli(['displays', '--json'], { env: asStaff() });
      return run.json().displays.find((d: { sub: string; online: boolean }) => d.sub === 'display:lobby-tv' && !d.online) ?? false;
    });
    expect(gone.lastSeen).toBeGreaterThan(0);
    const human = await runCli(['displays'], { env: asStaff() });
    expect(human.stdout).toMatch(/display:lobby-tv\s+gone\s+cli-a/);
  });
});

describe('queue actions', () => {
  it('checkin prints the ticket and the patient page, and the hub holds it', async () => {
    const run = await runCli(['checkin', '--dept', 'gp', '--name', '山田 花子', '--json'], { env: asStaff() });
    expect(run.code, run.stderr).toBe(0);
    const result = run.json();
    expect(result.ticket).toMatchObject({ number: 'A-001', dept: 'gp', status: 'waiting', priority: 'normal' });
    expect(result.patientUrl).toBe(`${hub.url}/ticket#token=${result.patientUrl.split('#token=')[1]}`);
    expect(result).toMatchObject({ action: 'checkin', replayed: false, ahead: 0, waitMinutes: estimateWaitMinutes(0, 2, { avgConsultMinutes: 10, samples: 0 }) });
    expect(JSON.stringify(result)).not.toContain('山田');
    const held = (await hubQueue()).tickets.find((t) => t.id === result.ticket.id);
    expect(held).toMatchObject({ number: 'A-001', status: 'waiting' });

    const human = await runCli(['checkin', '--dept', 'gp', '--urgent'], { env: asStaff() });
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^A-002 · 内科 General · urgent · 0 ahead · about \d+ min$/m);
    expect(human.stdout).toMatch(/^Patient page: http:\/\/127\.0\.0\.1:\d+\/ticket#token=/m);
  });

  it('queue --json gives every active ticket in calling order with the waits the protocol computes', async () => {
    const run = await runCli(['queue', '--json'], { env: asStaff() });
    expect(run.code, run.stderr).toBe(0);
    const view = run.json();
    const snapshot = await hubQueue();
    expect(view.seq).toBe(snapshot.seq);
    expect(view.clinic.id).toBe('testclinic');
    const gp = view.departments.find((d: { id: string }) => d.id === 'gp');
    // The urgent A-002 goes before A-001.
    expect(gp.tickets.map((t: { number: string }) => t.number)).toEqual(['A-002', 'A-001']);
    expect(gp.tickets.map((t: { ahead: number }) => t.ahead)).toEqual([0, 1]);
    // Both rooms of gp are open (the clinic's settings), whether or not they see a patient.
    expect(gp.tickets.map((t: { waitMinutes: number }) => t.waitMinutes)).toEqual([0, 1].map((ahead) => estimateWaitMinutes(ahead, 2, snapshot.deptStats.gp!)));
    expect(gp).toMatchObject({ waiting: 2, called: 0, openRooms: ['r1', 'r2'], typicalWaitMinutes: estimateWaitMinutes(2, 2, snapshot.deptStats.gp!) });
    expect(gp.rooms.map((r: { id: string; ticket: unknown }) => [r.id, r.ticket])).toEqual([['r1', null], ['r2', null]]);

    const only = await runCli(['queue', '--dept', 'peds', '--json'], { env: asStaff() });
    expect(only.json().departments.map((d: { id: string }) => d.id)).toEqual(['peds']);

    const human = await runCli(['queue', '--dept', 'gp'], { env: asStaff() });
    expect(human.stdout).toMatch(/A-002\s+urgent\s+waiting\s+0\s+~\d+ min/);
  });

  it('call-next, recall, start and done by ticket number, each checked against the hub', async () => {
    const call = await runCli(['call-next', '--dept', 'gp', '--room', 'r1', '--json'], { env: asStaff() });
    expect(call.code, call.stderr).toBe(0);
    expect(call.json().ticket).toMatchObject({ number: 'A-002', status: 'called', room: 'r1' });
    expect((await hubQueue()).tickets.find((t) => t.number === 'A-002')).toMatchObject({ status: 'called', room: 'r1' });

    const recall = await runCli(['recall', 'a2', '--json'], { env: asStaff() });
    expect(recall.code, recall.stderr).toBe(0);
    expect(recall.json()).toMatchObject({ action: 'recall', ticket: { number: 'A-002', recalls: 1 }, event: { type: 'ticket.recalled' } });

    const start = await runCli(['start', 'A-002'], { env: asStaff() });
    expect(start.code, start.stderr).toBe(0);
    expect(start.stdout).toContain('A-002 is in consultation in r1 (第1診察室 Room 1)');
    expect((await hubQueue()).tickets.find((t) => t.number === 'A-002')?.status).toBe('in_consultation');

    const done = await runCli(['done', 'A-002', '--json'], { env: asStaff() });
    expect(done.code, done.stderr).toBe(0);
    expect(done.json().event.type).toBe('ticket.done');
    expect((await hubQueue()).tickets.some((t) => t.number === 'A-002')).toBe(false);
  });

  it('skip and cancel by ticket id', async () => {
    await runCli(['call-next', '--dept', 'gp', '--room', 'r2'], { env: asStaff() });
    const a1 = (await hubQueue()).tickets.find((t) => t.number === 'A-001')!;
    expect(a1).toMatchObject({ status: 'called', room: 'r2' });
    const skip = await runCli(['skip', a1.id, '--json'], { env: asStaff() });
    expect(skip.code, skip.stderr).toBe(0);
    expect(skip.json().ticket).toMatchObject({ id: a1.id, status: 'waiting', room: null });

    const cancel = await runCli(['cancel', a1.id], { env: asStaff() });
    expect(cancel.code, cancel.stderr).toBe(0);
    expect(cancel.stdout.trim()).toBe('Cancelled A-001');
    expect((await hubQueue()).tickets.some((t) => t.id === a1.id)).toBe(false);
  });

  it('an id beginning with "-" is read as an option unless after --, and the error says so', async () => {
    const asOption = await runCli(['skip', '-abcdefghijk', '--json'], { env: asStaff() });
    expect(asOption.code).toBe(2);
    expect(asOption.error()).toMatchObject({ code: 'USAGE', hint: expect.stringContaining('put -- before it') });
    const asId = await runCli(['skip', '--json', '--', '-abcdefghijk'], { env: asStaff() });
    expect(asId.code, asId.stderr).toBe(4);
    expect(asId.error().code).toBe('QUEUE_TICKET_NOT_FOUND');
  });

  it('broadcast reaches the clinic’s sockets', async () => {
    const run = await runCli(['broadcast', '--ja', '本日は17時まで', '--en', 'Open until 17:00 today', '--seconds', '30', '--json'], { env: asStaff() });
    expect(run.code, run.stderr).toBe(0);
    const { announcement } = run.json();
    const received = await waitFor('the announcement on another socket', () => announcements.find((a) => a.id === announcement.id));
    expect(received).toMatchObject({ text: { ja: '本日は17時まで', en: 'Open until 17:00 today' }, durationSeconds: 30 });
  });

  it('token issue (admin) prints a working token; staff may not issue', async () => {
    const run = await runCli(['token', 'issue', '--role', 'display', '--clinic', 'testclinic', '--sub', 'display:2f', '--ttl', '600', '--json'], {
      env: cleanEnv({ CLINIC_URL: hub.url, CLINIC_TOKEN: admin }),
    });
    expect(run.code, run.stderr).toBe(0);
    const issued = run.json();
    expect(issued).toMatchObject({ role: 'display', clinic: 'testclinic', sub: 'display:2f' });
    expect(issued.pageUrl).toBe(`${hub.url}/display#token=${issued.token}`);
    expect(issued.expiresAt - Date.now()).toBeLessThanOrEqual(600_000);
    const screen = await connectQueue(hub.url, issued.token);
    sockets.push(screen);
    expect(screen.connected).toBe(true);

    const plain = await runCli(['token', 'issue', '--role', 'staff', '--clinic', 'testclinic'], { env: cleanEnv({ CLINIC_URL: hub.url, CLINIC_TOKEN: admin }) });
    expect(plain.stdout.trim()).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(plain.stderr).toContain('staff token for clinic testclinic');

    const refused = await runCli(['token', 'issue', '--role', 'display', '--clinic', 'testclinic', '--json'], { env: asStaff() });
    expect(refused.code).toBe(3);
    expect(refused.error().code).toBe('AUTH_FORBIDDEN');
  });

  it('token revoke (admin) ends the token’s sockets at once and lists the revocation; it needs one target', async () => {
    const env = cleanEnv({ CLINIC_URL: hub.url, CLINIC_TOKEN: admin });
    const issued = (await runCli(['token', 'issue', '--role', 'display', '--clinic', 'testclinic', '--sub', 'display:lost', '--json'], { env })).json();
    expect(issued.id).toMatch(/^[\w-]{22}$/);
    const screen = await connectQueue(hub.url, issued.token);
    sockets.push(screen);
    const ended = new Promise<{ code: string }>((resolve) => screen.once('hub:session-ended', resolve));

    const run = await runCli(['token', 'revoke', '--id', issued.id, '--reason', 'stolen TV', '--json'], { env });
    expect(run.code, run.stderr).toBe(0);
    expect(run.json().revocation).toMatchObject({ kind: 'token', id: issued.id, reason: 'stolen TV' });
    expect(await ended).toMatchObject({ code: 'AUTH_REVOKED' });
    await waitFor('the screen disconnected', () => !screen.connected);

    const listed = await runCli(['token', 'revocations', '--json'], { env });
    expect(listed.json().revocations).toContainEqual(expect.objectContaining({ kind: 'token', id: issued.id }));
    const plain = await runCli(['token', 'revoke', '--user', 'staff:gone', '--clinic', 'testclinic'], { env });
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout).toContain('every token of staff:gone in testclinic');

    const none = await runCli(['token', 'revoke', '--json'], { env });
    expect(none.code).toBe(2);
    expect(none.error().message).toMatch(/exactly one of --id/);
    const staff = await runCli(['token', 'revoke', '--all', '--clinic', 'testclinic', '--json'], { env: asStaff() });
    expect(staff.code).toBe(3);
    expect(staff.error().code).toBe('AUTH_FORBIDDEN');
  });
});

describe('errors: code, message, next step and exit code', () => {
  it('a token signed with another secret: exit 3, AUTH_INVALID', async () => {
    const forged = (await new TokenIssuer('another-secret-that-is-long-enough-0123456789').issue({ sub: 'x', role: 'staff', clinic: 'testclinic' }, 600)).token;
    for (const args of [['queue', '--json'], ['status', '--json'], ['call-next', '--dept', 'gp', '--room', 'r1', '--json']]) {
      const run = await runCli(args, { env: asStaff({ CLINIC_TOKEN: forged }) });
      expect(run.code, `${args.join(' ')}: ${run.stderr}`).toBe(3);
      expect(run.stdout).toBe('');
      expect(run.error()).toMatchObject({ code: 'AUTH_INVALID' });
      expect(run.error().hint).toContain('clinic login');
    }
    const garbage = await runCli(['queue', '--json'], { env: asStaff({ CLINIC_TOKEN: 'not-a-token' }) });
    expect(garbage.code).toBe(3);
    expect(garbage.error().code).toBe('AUTH_INVALID');
  });

  it('an expired token: exit 3, AUTH_EXPIRED', async () => {
    const expired = (await testTokens.issue({ sub: 'x', role: 'staff', clinic: 'testclinic' }, -10)).token;
    const run = await runCli(['status', '--json'], { env: asStaff({ CLINIC_TOKEN: expired }) });
    expect(run.code).toBe(3);
    expect(run.error().code).toBe('AUTH_EXPIRED');
  });

  it('an unknown ticket, department or room: exit 4', async () => {
    const ticket = await runCli(['done', 'Z-999', '--json'], { env: asStaff() });
    expect(ticket.code).toBe(4);
    expect(ticket.error().code).toBe('QUEUE_TICKET_NOT_FOUND');
    const dept = await runCli(['queue', '--dept', 'cardio', '--json'], { env: asStaff() });
    expect(dept.code).toBe(4);
    expect(dept.error()).toMatchObject({ code: 'QUEUE_DEPT_NOT_FOUND' });
    const room = await runCli(['call-next', '--dept', 'gp', '--room', 'r3', '--json'], { env: asStaff() });
    expect(room.code).toBe(4);
    expect(room.error().code).toBe('QUEUE_ROOM_NOT_FOUND');
  });

  it('nobody waiting, a busy room, a wrong state: exit 5', async () => {
    const empty = await runCli(['call-next', '--dept', 'peds', '--room', 'r3', '--json'], { env: asStaff() });
    expect(empty.code).toBe(5);
    expect(empty.error().code).toBe('QUEUE_EMPTY');
    const human = await runCli(['call-next', '--dept', 'peds', '--room', 'r3'], { env: asStaff() });
    expect(human.code).toBe(5);
    expect(human.stderr).toContain('error QUEUE_EMPTY: Nobody is waiting in this department.');

    await runCli(['checkin', '--dept', 'peds'], { env: asStaff() });
    await runCli(['checkin', '--dept', 'peds'], { env: asStaff() });
    expect((await runCli(['call-next', '--dept', 'peds', '--room', 'r3'], { env: asStaff() })).code).toBe(0);
    const busy = await runCli(['call-next', '--dept', 'peds', '--room', 'r3', '--json'], { env: asStaff() });
    expect(busy.code).toBe(5);
    expect(busy.error().code).toBe('QUEUE_ROOM_BUSY');
    const waiting = (await hubQueue()).tickets.find((t) => t.dept === 'peds' && t.status === 'waiting')!;
    const wrong = await runCli(['recall', waiting.number], { env: asStaff() });
    expect(wrong.code).toBe(5);
    expect(wrong.stderr).toContain(`${waiting.number} is waiting; recall needs a called ticket`);
  });

  it('hub down: exit 69, HUB_UNREACHABLE, for HTTP and socket commands', async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const http = await runCli(['status', '--json'], { env: asStaff({ CLINIC_URL: closed }) });
    expect(http.code).toBe(69);
    expect(http.error()).toMatchObject({ code: 'HUB_UNREACHABLE' });
    const socket = await runCli(['call-next', '--dept', 'gp', '--room', 'r1'], { env: asStaff({ CLINIC_URL: closed }) });
    expect(socket.code).toBe(69);
    expect(socket.stderr).toContain('error HUB_UNREACHABLE');
    expect(socket.stderr).toContain('next:');
  });

  it('nothing configured: exit 3 with what to do next', async () => {
    const run = await runCli(['status'], { env: cleanEnv() });
    expect(run.code).toBe(3);
    expect(run.stderr).toContain('NOT_CONFIGURED');
    expect(run.stderr).toContain('clinic login --url URL --token TOKEN');
    expect(run.stderr).toContain('npm start');
  });

  it('bad usage: exit 2', async () => {
    expect((await runCli(['call-next', '--dept', 'gp'], { env: asStaff() })).code).toBe(2);
    expect((await runCli(['queue', '--no-such-option'], { env: asStaff() })).code).toBe(2);
    const watch = await runCli(['queue', '--watch'], { env: asStaff() });
    expect(watch.code).toBe(2);
    expect(watch.stderr).toContain('NOT_A_TERMINAL');
    const json = await runCli(['checkin', '--json'], { env: asStaff() });
    expect(json.code).toBe(2);
    expect(json.error().code).toBe('USAGE');
  });

  it('an all-clinics admin token needs a clinic for queue commands', async () => {
    const run = await runCli(['queue', '--json'], { env: cleanEnv({ CLINIC_URL: hub.url, CLINIC_TOKEN: admin }) });
    expect(run.code).toBe(2);
    expect(run.error().code).toBe('CLINIC_REQUIRED');
    const withClinic = await runCli(['queue', '--json', '--clinic', 'testclinic'], { env: cleanEnv({ CLINIC_URL: hub.url, CLINIC_TOKEN: admin }) });
    expect(withClinic.code, withClinic.stderr).toBe(0);
    const fromEnv = await runCli(['queue', '--json'], { env: cleanEnv({ CLINIC_URL: hub.url, CLINIC_TOKEN: admin, CLINIC_ID: 'otherclinic' }) });
    expect(fromEnv.json().clinic.id).toBe('otherclinic');
  });
});

describe('profiles and the local stack', () => {
  it('login checks the hub and saves a 0600 profile that later commands use; logout forgets it', async () => {
    const env = cleanEnv();
    const login = await runCli(['login', '--url', `${hub.url}/`, '--token', staff, '--json'], { env });
    expect(login.code, login.stderr).toBe(0);
    expect(login.json()).toMatchObject({ profile: 'default', url: hub.url, clinic: 'testclinic', role: 'staff', node: 'cli-a', redis: 'up' });
    const file = join(env.XDG_CONFIG_HOME!, 'clinic-hub', 'config.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ current: 'default', profiles: { default: { url: hub.url, token: staff } } });

    const queue = await runCli(['queue', '--json'], { env });
    expect(queue.code, queue.stderr).toBe(0);
    expect(queue.json().seq).toBe((await hubQueue()).seq);
    const whoami = await runCli(['whoami', '--json'], { env });
    expect(whoami.json()).toMatchObject({ source: 'profile', profile: 'default', clinic: 'testclinic', role: 'staff' });

    const adminLogin = await runCli(['login', '--url', hub.url, '--token', admin, '--clinic', 'otherclinic', '--profile', 'ops'], { env });
    expect(adminLogin.code, adminLogin.stderr).toBe(0);
    const profiles = await runCli(['profiles', '--json'], { env });
    expect(profiles.json()).toMatchObject({ current: 'ops' });
    expect(profiles.json().profiles.map((p: { name: string }) => p.name).sort()).toEqual(['default', 'ops']);
    expect(profiles.stdout).not.toContain(admin);
    expect((await runCli(['queue', '--json'], { env })).json().clinic.id).toBe('otherclinic');
    expect((await runCli(['queue', '--json', '--profile', 'default'], { env })).json().clinic.id).toBe('testclinic');
    expect((await runCli(['profiles', 'use', 'default'], { env })).code).toBe(0);
    expect((await runCli(['whoami', '--json'], { env })).json().profile).toBe('default');

    const badClinic = await runCli(['login', '--url', hub.url, '--token', admin, '--clinic', 'nowhere', '--json'], { env });
    expect(badClinic.code).toBe(4);
    expect(badClinic.error().code).toBe('CLINIC_NOT_FOUND');
    const badToken = await runCli(['login', '--url', hub.url, '--token', 'nope', '--json'], { env });
    expect(badToken.code).toBe(3);
    expect(badToken.error().code).toBe('AUTH_INVALID');
    const unknownProfile = await runCli(['status', '--profile', 'staging', '--json'], { env });
    expect(unknownProfile.code).toBe(4);
    expect(unknownProfile.error().code).toBe('PROFILE_NOT_FOUND');

    expect((await runCli(['logout'], { env })).code).toBe(0);
    expect((await runCli(['logout', '--profile', 'ops'], { env })).code).toBe(0);
    const after = await runCli(['status', '--json'], { env });
    expect(after.code).toBe(3);
    expect(after.error().code).toBe('NOT_CONFIGURED');
  });

  it('finds var/local.json of the stack started with npm start, from the directory or a parent', async () => {
    const stack = mkdtempSync(join(tmpdir(), 'clinic-stack-'));
    mkdirSync(join(stack, 'var'));
    mkdirSync(join(stack, 'docs', 'deep'), { recursive: true });
    writeFileSync(
      join(stack, 'var', 'local.json'),
      JSON.stringify({ url: hub.url, clinic: 'testclinic', adminToken: admin, expiresAt: Date.now() + 3600_000, pid: process.pid }),
      { mode: 0o600 },
    );
    const env = cleanEnv({ CLINIC_LOCAL_FILE: undefined });
    const status = await runCli(['status', '--json'], { env, cwd: join(stack, 'docs', 'deep') });
    expect(status.code, status.stderr).toBe(0);
    expect(status.json().nodes[0].nodeId).toBe('cli-a');
    const queue = await runCli(['queue', '--json'], { env, cwd: stack });
    expect(queue.code, queue.stderr).toBe(0);
    expect(queue.json().clinic.id).toBe('testclinic');
    const whoami = await runCli(['whoami', '--json'], { env, cwd: stack });
    expect(whoami.json()).toMatchObject({ source: 'local', localFile: join(stack, 'var', 'local.json'), role: 'admin', clinic: 'testclinic' });
    // Flags and the environment come first.
    const flags = await runCli(['whoami', '--json', '--url', hub.url, '--token', staff], { env, cwd: stack });
    expect(flags.json()).toMatchObject({ source: 'flags', role: 'staff' });
  });
});
