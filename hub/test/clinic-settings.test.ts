/**
 * Clinic settings in Redis (hub/src/settings): seeded from the clinic file,
 * read and changed over HTTP, validated with the file's schema, applied on
 * every hub node without a restart (a display on the other node hears
 * `queue:clinic` within a second), every change audited with before and
 * after. Two hub processes on one test Redis.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ClinicSettingsRecord, PublicClinic } from '@clinic-hub/protocol';
import { startHubProcess, startTestHubs, stopTestHubs, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { connectQueue, expectOk, followQueue, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import type { TestRedis } from '@clinic-hub/test-kit/redis';
import { waitFor } from '@clinic-hub/test-kit/wait';

const CLINIC = 'testclinic';
/** The promise: a change reaches every node within a second (measured here with generous slack for a loaded machine). */
const APPLY_BUDGET_MS = 1000;

let redis: TestRedis;
let nodeA: HubNodeProcess;
let nodeB: HubNodeProcess;
const sockets: QueueSocket[] = [];

beforeAll(async () => {
  ({ redis, nodes: [nodeA, nodeB] } = await startTestHubs(['settings-a', 'settings-b']));
}, 120_000);

afterEach(() => {
  for (const socket of sockets.splice(0)) socket.close();
});

afterAll(async () => {
  await stopTestHubs(redis, [nodeA, nodeB]);
});

async function api(node: HubNodeProcess, method: string, path: string, token: string, body?: unknown) {
  const response = await fetch(`${node.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

/** A display on `node` and every `queue:clinic` it hears, with the time it arrived. */
async function displayOn(node: HubNodeProcess) {
  const socket = await connectQueue(node.url, await tokenFor('display'));
  sockets.push(socket);
  const heard: { clinic: PublicClinic; at: number }[] = [];
  socket.on('queue:clinic', (clinic) => heard.push({ clinic, at: Date.now() }));
  const follower = followQueue(socket);
  await follower.resync();
  return { heard, follower };
}

describe('clinic settings', () => {
  it('are seeded from the clinic file once, and every node serves them', async () => {
    const admin = await tokenFor('admin');
    const [a, b] = await Promise.all([api(nodeA, 'GET', `/api/clinics/${CLINIC}/settings`, admin), api(nodeB, 'GET', `/api/clinics/${CLINIC}/settings`, admin)]);
    expect(a.status).toBe(200);
    const record = a.body as ClinicSettingsRecord;
    expect(record).toMatchObject({ clinic: CLINIC, updatedBy: 'seed' });
    expect(record.version).toBeGreaterThanOrEqual(1);
    expect(record.settings.departments.map((d) => d.id)).toEqual(['gp', 'peds', 'online']);
    // Defaults of the schema are filled in: a room is open unless closed.
    expect(record.settings.departments[0]!.rooms.map((r) => r.open)).toEqual([true, true]);
    expect(b.body).toEqual(a.body);
    // Staff read them (the console shows rooms); displays and patients do not.
    expect((await api(nodeA, 'GET', `/api/clinics/${CLINIC}/settings`, await tokenFor('staff'))).status).toBe(200);
    expect((await api(nodeA, 'GET', `/api/clinics/${CLINIC}/settings`, await tokenFor('display'))).body.error.code).toBe('AUTH_FORBIDDEN');
    expect((await api(nodeA, 'GET', `/api/clinics/${CLINIC}/settings`, await tokenFor('admin', 'otherclinic'))).body.error.code).toBe('AUTH_WRONG_CLINIC');
  });

  it('refuse bad changes with a code naming what is wrong, and change nothing', async () => {
    const admin = await tokenFor('admin');
    const { body: before } = await api(nodeA, 'GET', `/api/clinics/${CLINIC}/settings`, admin);
    const settings = before.settings as Record<string, any>;
    const put = (token: string, body: unknown) => api(nodeA, 'PUT', `/api/clinics/${CLINIC}/settings`, token, body);

    expect((await put(await tokenFor('staff'), { settings })).body.error.code).toBe('AUTH_FORBIDDEN');
    expect((await put(admin, 'not json')).body.error).toMatchObject({ code: 'INVALID_PAYLOAD', detail: 'body is not JSON' });
    const badPrefix = await put(admin, { settings: { ...settings, departments: [{ ...settings.departments[0], prefix: 'a1' }] } });
    expect(badPrefix.status).toBe(400);
    expect(badPrefix.body.error).toMatchObject({ code: 'INVALID_PAYLOAD', detail: expect.stringContaining('settings.departments.0.prefix') });
    const duplicate = await put(admin, { settings: { ...settings, departments: [settings.departments[0], settings.departments[0]] } });
    expect(duplicate.body.error.detail).toContain('duplicate department id gp');
    const otherId = await put(admin, { settings: { ...settings, id: 'otherclinic' } });
    expect(otherId.body.error.detail).toContain('settings.id');
    const stale = await put(admin, { settings: { ...settings, noShowAfterRecalls: 3 }, ifVersion: before.version - 1 || 999 });
    expect(stale.status).toBe(409);
    expect(stale.body.error.code).toBe('SETTINGS_VERSION_CONFLICT');

    const { body: after } = await api(nodeB, 'GET', `/api/clinics/${CLINIC}/settings`, admin);
    expect(after).toEqual(before);
  });

  it('apply a change made on one node to a display on the other within a second, without a restart, audited', async () => {
    const admin = await tokenFor('admin', CLINIC, { sub: 'admin:manager' });
    const display = await displayOn(nodeB);
    const { body: current } = await api(nodeA, 'GET', `/api/clinics/${CLINIC}/settings`, admin);
    const settings = current.settings as Record<string, any>;
    const renamed = {
      ...settings,
      spokenCallLanguages: ['en'],
      departments: settings.departments.map((d: any) => (d.id === 'peds' ? { ...d, name: { ja: '小児科外来', en: 'Children' } } : d)),
    };
    const sentAt = Date.now();
    const saved = await api(nodeA, 'PUT', `/api/clinics/${CLINIC}/settings`, admin, { settings: renamed, ifVersion: current.version });
    expect(saved.status, JSON.stringify(saved.body)).toBe(200);
    expect(saved.body).toMatchObject({ version: current.version + 1, updatedBy: 'admin:manager', changed: true });

    const heard = await waitFor('queue:clinic on the display of the other node', () => display.heard[0], 5000);
    expect(heard.at - sentAt).toBeLessThan(APPLY_BUDGET_MS + 500);
    expect(heard.clinic.spokenCallLanguages).toEqual(['en']);
    expect(heard.clinic.departments.find((d) => d.id === 'peds')!.name.en).toBe('Children');
    expect(display.follower.clinic?.departments.find((d) => d.id === 'peds')!.name.en).toBe('Children');
    // Every node serves the new settings, and what any page reads (GET /api/clinics/:id) too.
    expect((await api(nodeB, 'GET', `/api/clinics/${CLINIC}/settings`, admin)).body.version).toBe(current.version + 1);
    expect((await api(nodeB, 'GET', `/api/clinics/${CLINIC}`, admin)).body.spokenCallLanguages).toEqual(['en']);

    // Saving the same settings again changes nothing: no new version, no audit entry, no event.
    const again = await api(nodeA, 'PUT', `/api/clinics/${CLINIC}/settings`, admin, { settings: renamed });
    expect(again.body).toMatchObject({ version: current.version + 1, changed: false });

    const audit = (await api(nodeB, 'GET', `/api/clinics/${CLINIC}/audit?count=10`, admin)).body.entries as Record<string, string>[];
    const entry = audit.find((e) => e.action === 'settings.update')!;
    expect(entry).toMatchObject({ actor: 'admin:manager', role: 'admin', subject: 'departments,spokenCallLanguages', from: '127.0.0.1' });
    expect(JSON.parse(entry.before!).spokenCallLanguages).toEqual(['ja', 'en']);
    expect(JSON.parse(entry.after!).spokenCallLanguages).toEqual(['en']);
    expect(audit.filter((e) => e.action === 'settings.update')).toHaveLength(1);
    expect(display.heard).toHaveLength(1);
  });

  it('open and close rooms (staff and admins), which every node counts in its wait estimates at once', async () => {
    const staff = await tokenFor('staff', CLINIC, { sub: 'staff:desk' });
    const display = await displayOn(nodeA);
    expect(display.follower.openRooms('gp')).toEqual(['r1', 'r2']);

    const closed = await api(nodeB, 'PUT', `/api/clinics/${CLINIC}/rooms/r2`, staff, { open: false });
    expect(closed.status, JSON.stringify(closed.body)).toBe(200);
    expect(closed.body).toMatchObject({ room: 'r2', dept: 'gp', open: false });
    await waitFor('r2 closed on the display of the other node', () => display.follower.openRooms('gp').join() === 'r1', 5000);

    // Closing a closed room is no change; unknown rooms and bad bodies are refused.
    expect((await api(nodeB, 'PUT', `/api/clinics/${CLINIC}/rooms/r2`, staff, { open: false })).body.version).toBe(closed.body.version);
    expect((await api(nodeB, 'PUT', `/api/clinics/${CLINIC}/rooms/r9`, staff, { open: false })).body.error.code).toBe('QUEUE_ROOM_NOT_FOUND');
    expect((await api(nodeB, 'PUT', `/api/clinics/${CLINIC}/rooms/r2`, staff, { open: 'no' })).body.error.code).toBe('INVALID_PAYLOAD');
    expect((await api(nodeB, 'PUT', `/api/clinics/${CLINIC}/rooms/r2`, await tokenFor('doctor'), { open: true })).body.error.code).toBe('AUTH_FORBIDDEN');

    const reopened = await api(nodeA, 'PUT', `/api/clinics/${CLINIC}/rooms/r2`, await tokenFor('admin'), { open: true });
    expect(reopened.body.version).toBe(closed.body.version + 1);
    await waitFor('r2 open again', () => display.follower.openRooms('gp').join() === 'r1,r2', 5000);

    const audit = (await api(nodeA, 'GET', `/api/clinics/${CLINIC}/audit?count=10`, await tokenFor('admin'))).body.entries as Record<string, string>[];
    const close = audit.find((e) => e.action === 'room.close')!;
    expect(close).toMatchObject({ actor: 'staff:desk', role: 'staff', subject: 'rooms.r2.open', before: '{"open":true}', after: '{"open":false}' });
    expect(audit.some((e) => e.action === 'room.open')).toBe(true);
  });

  it('outlive the file: a node started later serves what Redis holds', async () => {
    const nodeC = await startHubProcess({ redisUrl: redis.url, nodeId: 'settings-c' });
    try {
      const admin = await tokenFor('admin');
      const [b, c] = await Promise.all([api(nodeB, 'GET', `/api/clinics/${CLINIC}/settings`, admin), api(nodeC, 'GET', `/api/clinics/${CLINIC}/settings`, admin)]);
      expect(c.body.settings.spokenCallLanguages).toEqual(['en']);
      expect(c.body).toEqual(b.body);
    } finally {
      await nodeC.stop();
    }
  }, 90_000);

  it('refuse removing a department or a room that live tickets are in (a clear code naming them), and allow it once they are gone', async () => {
    const admin = await tokenFor('admin');
    const staff = await connectQueue(nodeA.url, await tokenFor('staff'));
    sockets.push(staff);
    const save = async (edit: (settings: Record<string, any>) => Record<string, any>) => {
      const { body: current } = await api(nodeA, 'GET', `/api/clinics/${CLINIC}/settings`, admin);
      return api(nodeB, 'PUT', `/api/clinics/${CLINIC}/settings`, admin, { settings: edit(current.settings), ifVersion: current.version });
    };
    const withoutPeds = (s: Record<string, any>) => ({ ...s, departments: s.departments.filter((d: any) => d.id !== 'peds') });
    const withoutR2 = (s: Record<string, any>) => ({ ...s, departments: s.departments.map((d: any) => (d.id === 'gp' ? { ...d, rooms: d.rooms.filter((r: any) => r.id !== 'r2') } : d)) });

    const waiting = expectOk(await request(staff, 'queue:checkin', { dept: 'peds' })).event.ticket;
    const refusedDept = await save(withoutPeds);
    expect(refusedDept.status).toBe(409);
    expect(refusedDept.body.error).toMatchObject({ code: 'SETTINGS_DEPT_HAS_TICKETS', detail: expect.stringContaining(`department peds has 1 live ticket (${waiting.number})`) });

    // A waiting gp ticket is in no room: removing r2 is refused only once it is called there.
    expectOk(await request(staff, 'queue:checkin', { dept: 'gp' }));
    const gp = expectOk(await request(staff, 'queue:call-next', { dept: 'gp', room: 'r2' })).event.ticket;
    const refusedRoom = await save(withoutR2);
    expect(refusedRoom.status).toBe(409);
    expect(refusedRoom.body.error).toMatchObject({ code: 'SETTINGS_ROOM_HAS_TICKETS', detail: expect.stringContaining(`room r2 of gp has 1 live ticket (${gp.number})`) });
    const { body: unchanged } = await api(nodeB, 'GET', `/api/clinics/${CLINIC}/settings`, admin);
    expect(unchanged.settings.departments.map((d: any) => d.id)).toContain('peds');

    expectOk(await request(staff, 'queue:cancel', { ticketId: waiting.id }));
    expectOk(await request(staff, 'queue:done', { ticketId: gp.id }));
    const removed = await save((s) => withoutR2(withoutPeds(s)));
    expect(removed.status, JSON.stringify(removed.body)).toBe(200);
    expect(removed.body.settings.departments.map((d: any) => d.id)).toEqual(['gp', 'online']);
    expect(removed.body.settings.departments[0].rooms.map((r: any) => r.id)).toEqual(['r1']);
  });
});
