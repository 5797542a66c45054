/**
 * `clinic settings` against a real hub and Redis: read (table and --json),
 * change by path and from a file, compare with a file, and every refusal
 * with its code, exit status and what to do (a misspelt path, a bad value,
 * someone saving meanwhile, a room with a live ticket, a staff token).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ClinicSettingsRecord } from '@clinic-hub/protocol';
import { startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { connectQueue, expectOk, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import { startTestRedis } from '@clinic-hub/test-kit/redis';
import { cleanEnv, runCli } from '@clinic-hub/test-kit/run-cli';

vi.setConfig({ testTimeout: 120_000 });

let redisServer: Awaited<ReturnType<typeof startTestRedis>>;
let hub: HubNodeProcess;
let reception: QueueSocket;
let admin: NodeJS.ProcessEnv;
const dir = mkdtempSync(join(tmpdir(), 'cli-settings-'));

beforeAll(async () => {
  redisServer = await startTestRedis();
  hub = await startHubProcess({ redisUrl: redisServer.url, nodeId: 'cli-settings' });
  reception = await connectQueue(hub.url, await tokenFor('staff'));
  admin = cleanEnv({ CLINIC_URL: hub.url, CLINIC_TOKEN: await tokenFor('admin', 'testclinic', { sub: 'admin:cli' }), NO_COLOR: '1' });
}, 120_000);

afterAll(async () => {
  reception?.close();
  await hub?.stop();
  await redisServer?.cleanup();
});

const current = async () => (await runCli(['settings', '--json'], { env: admin })).json<ClinicSettingsRecord>();

describe('clinic settings', () => {
  it('prints the settings as JSON and as a table (rooms open or closed, every other setting by path)', async () => {
    const json = await runCli(['settings', '--json'], { env: admin });
    expect(json.code, json.stderr).toBe(0);
    const record = json.json<ClinicSettingsRecord>();
    expect(record).toMatchObject({ clinic: 'testclinic', updatedBy: 'seed' });
    expect(record.settings.departments.map((d) => d.id)).toEqual(['gp', 'peds', 'online']);
    const table = await runCli(['settings', 'get'], { env: admin });
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toContain(`settings version ${record.version}`);
    expect(table.stdout).toMatch(/gp\s+A\s+no\s+r1\s+open/);
    expect(table.stdout).toMatch(/noShowAfterRecalls\s+2/);
    // Staff read them too.
    expect((await runCli(['settings', '--json'], { env: cleanEnv({ CLINIC_URL: hub.url, CLINIC_TOKEN: await tokenFor('staff') }) })).code).toBe(0);
  });

  it('set changes settings by path (rooms by id), in one audited save', async () => {
    const before = await current();
    const run = await runCli(['settings', 'set', 'noShowAfterRecalls', '3', 'departments.gp.rooms.r2.open', 'false', '--json'], { env: admin });
    expect(run.code, run.stderr).toBe(0);
    const result = run.json();
    expect(result).toMatchObject({ clinic: 'testclinic', changed: true, version: before.version + 1, previousVersion: before.version });
    expect(result.changes).toEqual([
      { path: 'departments.gp.rooms.r2.open', before: true, after: false },
      { path: 'noShowAfterRecalls', before: 2, after: 3 },
    ]);
    const after = await current();
    expect(after.settings.noShowAfterRecalls).toBe(3);
    expect(after.updatedBy).toBe('admin:cli');
    // The same again changes nothing.
    const again = await runCli(['settings', 'set', 'noShowAfterRecalls', '3'], { env: admin });
    expect(again.stdout).toContain(`Nothing changed: version ${after.version}`);
  });

  it('refuses, saying what to do: a misspelt path, a bad value, a stale version, a staff token', async () => {
    const misspelt = await runCli(['settings', 'set', 'noShowAfterRecall', '3', '--json'], { env: admin });
    expect(misspelt.code).toBe(2);
    expect(misspelt.error()).toMatchObject({ code: 'USAGE', message: 'No setting noShowAfterRecall.', hint: expect.stringContaining('clinic settings') });
    const noRoom = await runCli(['settings', 'set', 'departments.gp.rooms.r9.open', 'false', '--json'], { env: admin });
    expect(noRoom.error().message).toContain('no "r9" in departments.gp.rooms (it has r1, r2)');
    const bad = await runCli(['settings', 'set', 'noShowAfterRecalls', '99', '--json'], { env: admin });
    expect(bad.code).toBe(2);
    expect(bad.error()).toMatchObject({ code: 'INVALID_PAYLOAD', detail: expect.stringContaining('settings.noShowAfterRecalls') });
    const odd = await runCli(['settings', 'set', 'noShowAfterRecalls'], { env: admin });
    expect(odd.code).toBe(2);
    expect(odd.stderr).toContain('PATH VALUE pairs');

    const { version } = await current();
    const stale = await runCli(['settings', 'set', 'minMeasuredConsultSeconds', '45', '--if-version', String(version - 1), '--json'], { env: admin });
    expect(stale.code).toBe(5);
    expect(stale.error()).toMatchObject({ code: 'SETTINGS_VERSION_CONFLICT', hint: expect.stringContaining('run the command again') });

    const asStaff = await runCli(['settings', 'set', 'noShowAfterRecalls', '1', '--json'], { env: cleanEnv({ CLINIC_URL: hub.url, CLINIC_TOKEN: await tokenFor('staff') }) });
    expect(asStaff.code).toBe(3);
    expect(asStaff.error().code).toBe('AUTH_FORBIDDEN');
    expect((await current()).version).toBe(version);
  });

  it('diff compares a file with the hub (defaults filled in) and saves nothing; set --file saves it; a room with a live ticket is not removed', async () => {
    const record = await current();
    const file = join(dir, 'clinic.json');
    const edited = {
      ...record.settings,
      spokenCallLanguages: ['en'],
      departments: record.settings.departments.map((d) => (d.id === 'gp' ? { ...d, rooms: d.rooms.filter((r) => r.id !== 'r1') } : d)),
    };
    writeFileSync(file, JSON.stringify(edited));
    const diff = await runCli(['settings', 'diff', file, '--json'], { env: admin });
    expect(diff.code, diff.stderr).toBe(0);
    expect(diff.json().changes).toEqual([
      { path: 'departments.gp.rooms.r1.id', before: 'r1' },
      { path: 'departments.gp.rooms.r1.name.en', before: expect.any(String) },
      { path: 'departments.gp.rooms.r1.name.ja', before: expect.any(String) },
      { path: 'departments.gp.rooms.r1.open', before: true },
      { path: 'spokenCallLanguages', before: ['ja', 'en'], after: ['en'] },
    ]);
    const table = await runCli(['settings', 'diff', file], { env: admin });
    expect(table.stdout).toContain(`clinic settings set --file ${file} --if-version ${record.version}`);
    expect((await current()).version).toBe(record.version);

    // r1 has a called patient: removing it is refused, and nothing is saved.
    expectOk(await request(reception, 'queue:checkin', { dept: 'gp' }));
    const called = expectOk(await request(reception, 'queue:call-next', { dept: 'gp', room: 'r1' })).event.ticket;
    const refused = await runCli(['settings', 'set', '--file', file, '--json'], { env: admin });
    expect(refused.code).toBe(5);
    expect(refused.error()).toMatchObject({ code: 'SETTINGS_ROOM_HAS_TICKETS', detail: expect.stringContaining(called.number), hint: expect.stringContaining('close the room instead') });
    expect((await current()).version).toBe(record.version);

    expectOk(await request(reception, 'queue:done', { ticketId: called.id }));
    const saved = await runCli(['settings', 'set', '--file', file], { env: admin });
    expect(saved.code, saved.stderr).toBe(0);
    expect(saved.stdout).toContain(`version ${record.version} → ${record.version + 1}`);
    expect((await runCli(['settings', 'diff', file, '--json'], { env: admin })).json().changes).toEqual([]);

    const missing = await runCli(['settings', 'diff', join(dir, 'nope.json'), '--json'], { env: admin });
    expect(missing.code).toBe(2);
    expect(missing.error()).toMatchObject({ code: 'USAGE', detail: 'ENOENT' });
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ ...edited, departments: [] }));
    const invalid = await runCli(['settings', 'diff', join(dir, 'bad.json'), '--json'], { env: admin });
    expect(invalid.error()).toMatchObject({ code: 'INVALID_PAYLOAD', detail: expect.stringContaining('departments') });
  });
});
