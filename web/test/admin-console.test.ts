/**
 * The manager's console (/admin) in real Chromium against two real hub
 * processes on one test Redis: a test per section, each checking what it
 * shows in Japanese and in English. Settings changed in the console reach a
 * display connected to the other hub node; the audit viewer filters,
 * exports CSV, and its reads are audited; a token issued in the console
 * works and, revoked in the console, is refused. Staff see only their
 * sections. (axe-core runs on /admin in accessibility.test.ts.)
 */
import { readFileSync } from 'node:fs';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTestHubs, stopTestHubs, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { connectQueue, expectOk, followQueue, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import type { TestRedis } from '@clinic-hub/test-kit/redis';
import { collectPageProblems, launchChromium } from '@clinic-hub/test-kit/browser';
import { waitFor } from '@clinic-hub/test-kit/wait';

const CLINIC = 'testclinic';

let redis: TestRedis;
let hubA: HubNodeProcess;
let hubB: HubNodeProcess;
let browser: Browser;
let context: BrowserContext;
const sockets: QueueSocket[] = [];
const problems: string[] = [];

beforeAll(async () => {
  ({ redis, nodes: [hubA, hubB] } = await startTestHubs(['admin-a', 'admin-b']));
  browser = await launchChromium();
  context = await browser.newContext({ viewport: { width: 1440, height: 1000 }, acceptDownloads: true });
}, 120_000);

afterEach(() => {
  for (const socket of sockets.splice(0)) socket.close();
});

afterAll(async () => {
  await context?.close();
  await browser?.close();
  await stopTestHubs(redis, [hubA, hubB]);
});

async function openConsole(role: 'admin' | 'staff' = 'admin', sub = `${role}:manager`): Promise<Page> {
  const page = await context.newPage();
  problems.push(...collectPageProblems(page));
  await page.goto(`${hubA.url}/admin#token=${await tokenFor(role, CLINIC, { sub })}`);
  await page.waitForSelector('html[data-overview="live"][data-settings]', { timeout: 20_000 });
  return page;
}

/** A section's text has both languages: every pair given appears in it. */
async function expectBilingual(page: Page, section: string, pairs: [string, string][]): Promise<void> {
  const text = await page.locator(section).innerText();
  for (const [ja, en] of pairs) {
    expect(text, `${section}: ${ja}`).toContain(ja);
    expect(text, `${section}: ${en}`).toContain(en);
  }
}

async function api(method: string, path: string, token: string, body?: unknown) {
  const response = await fetch(`${hubA.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

describe('the manager console', () => {
  it('overview: hub nodes, Redis, the queue, media servers, AI workers and job queues, live', async () => {
    const staff = await connectQueue(hubB.url, await tokenFor('staff'));
    sockets.push(staff);
    expectOk(await request(staff, 'queue:checkin', { dept: 'gp' }));
    const page = await openConsole();
    await expectBilingual(page, '#overview', [
      ['ハブノード', 'Hub nodes'],
      ['待ち行列', 'Queues'],
      ['メディアサーバー', 'Media servers'],
      ['AI ワーカー', 'AI workers'],
      ['ジョブキュー', 'Job queues'],
    ]);
    // Both nodes, from the same API as `clinic status`; the check-in on node B counted.
    await expect.poll(() => page.locator('#overview').innerText(), { timeout: 15_000 }).toContain('admin-b');
    expect(await page.locator('#overview').innerText()).toContain('admin-a');
    await expect.poll(async () => (await page.locator('#overview').innerText()).match(/gp\s+(\d+)/)?.[1], { timeout: 10_000 }).toBe('1');
    expect(await page.locator('#overview').innerText()).toContain('notifications');
    await page.close();
  });

  it('settings: a room closed and a language changed in the console reach a display on the other hub node', async () => {
    const display = await connectQueue(hubB.url, await tokenFor('display'));
    sockets.push(display);
    const follower = followQueue(display);
    await follower.resync();
    const page = await openConsole();
    await expectBilingual(page, '#settings', [
      ['クリニック設定', 'Clinic settings'],
      ['診察室', 'Rooms'],
      ['開室', 'open'],
    ]);
    const r2 = page.locator('#settings-rooms button[data-room="r2"]');
    expect(await r2.getAttribute('aria-checked')).toBe('true');
    await r2.click();
    await expect.poll(() => page.locator('#settings-rooms button[data-room="r2"]').getAttribute('aria-checked'), { timeout: 5000 }).toBe('false');
    expect(await page.locator('#settings-rooms button[data-room="r2"]').innerText()).toContain('閉室 / closed');
    await waitFor('r2 closed on the display of the other node', () => follower.openRooms('gp').join() === 'r1', 5000);

    // The whole settings as JSON: a bad edit is refused with the field named, a good one saved and applied everywhere.
    const textarea = page.locator('#settings-json');
    const settings = JSON.parse(await textarea.inputValue());
    await textarea.fill(JSON.stringify({ ...settings, departments: [{ ...settings.departments[0], prefix: 'a' }] }));
    await page.locator('#settings-save').click();
    await expect.poll(() => page.locator('#messages').innerText(), { timeout: 5000 }).toContain('INVALID_PAYLOAD');
    expect(await page.locator('#messages').innerText()).toContain('settings.departments.0.prefix');
    await textarea.fill(JSON.stringify({ ...settings, spokenCallLanguages: ['en', 'ja'] }, null, 2));
    await page.locator('#settings-save').click();
    await expect.poll(() => page.locator('#messages').innerText(), { timeout: 5000 }).toContain('保存しました / Saved');
    await waitFor('the new languages on the display of the other node', () => follower.clinic?.spokenCallLanguages.join() === 'en,ja', 5000);
    await page.close();
  });

  it('audit: filters by action, exports CSV, and reading it is audited', async () => {
    const page = await openConsole();
    await expectBilingual(page, '#audit', [
      ['監査ログ', 'Audit log'],
      ['実行者', 'Actor'],
      ['変更前 → 変更後', 'Before → after'],
    ]);
    await page.locator('#audit-form input[name="action"]').fill('room.close');
    await page.locator('#audit-search').click();
    await expect.poll(() => page.locator('#audit-body table tbody tr').count(), { timeout: 5000 }).toBe(1);
    const row = await page.locator('#audit-body table tbody tr').innerText();
    expect(row).toContain('admin:manager');
    expect(row).toContain('rooms.r2.open');
    expect(row).toContain('{"open":true} → {"open":false}');

    const [download] = await Promise.all([page.waitForEvent('download', { timeout: 10_000 }), page.locator('#audit-csv').click()]);
    const csv = readFileSync((await download.path())!, 'utf8').split('\r\n');
    expect(csv[0]).toBe('id,at,actor,role,action,subject,from,before,after');
    expect(csv.filter((line) => line.includes('room.close'))).toHaveLength(1);
    expect(csv[1]).toContain('"{""open"":true}"');

    const audit = (await api('GET', `/api/clinics/${CLINIC}/audit?actor=admin:manager&count=50`, await tokenFor('admin'))).body.entries as { action: string; subject: string }[];
    expect(audit.some((e) => e.action === 'audit.read' && e.subject === 'action=room.close')).toBe(true);
    expect(audit.some((e) => e.action === 'audit.export' && e.subject === 'action=room.close')).toBe(true);
    await page.close();
  });

  it('recordings: says when this hub cannot export them (no RECORDING_KEY), in both languages', async () => {
    const page = await openConsole();
    await expectBilingual(page, '#recordings', [
      ['録画', 'Recordings'],
      ['このハブには録画の鍵がありません', 'This hub has no recording key'],
    ]);
    await page.close();
  });

  it('notifications: counts and dead letters', async () => {
    const page = await openConsole();
    await expectBilingual(page, '#notifications', [
      ['通知', 'Notifications'],
      ['送信できなかった通知', 'Dead letters'],
    ]);
    expect(await page.locator('#notifications .counts').innerText()).toMatch(/waiting \d+ · delayed \d+ · active \d+ · completed \d+ · failed \d+/);
    await page.close();
  });

  it('tokens: a token issued in the console works, and once revoked there it is refused', async () => {
    const page = await openConsole();
    await expectBilingual(page, '#tokens', [
      ['発行', 'Issue'],
      ['無効化', 'Revoke'],
    ]);
    await page.locator('#token-form select[name="role"]').selectOption('staff');
    await page.locator('#token-form input[name="sub"]').fill('staff:sato');
    await page.locator('#token-form input[name="name"]').fill('佐藤 花子');
    await page.locator('#token-issue').click();
    const issued = (await page.locator('#issued-token').innerText({ timeout: 5000 })).trim();
    expect((await api('GET', `/api/clinics/${CLINIC}/settings`, issued)).status).toBe(200);

    await page.locator('#revoke-form input[name="target"]').fill('staff:sato');
    await page.locator('#revoke-form input[name="reason"]').fill('left the clinic');
    await page.locator('#token-revoke').click();
    await expect.poll(() => page.locator('#revocations-body').innerText(), { timeout: 5000 }).toContain('user staff:sato');
    expect(await page.locator('#revocations-body').innerText()).toContain('left the clinic');
    await expect.poll(async () => (await api('GET', `/api/clinics/${CLINIC}/settings`, issued)).body.error?.code, { timeout: 5000 }).toBe('AUTH_REVOKED');
    await page.close();
  });

  it('staff see the overview, the rooms and the notifications of their clinic, nothing else', async () => {
    const page = await openConsole('staff', 'staff:desk');
    for (const hidden of ['#audit', '#recordings', '#tokens']) expect(await page.locator(hidden).isVisible(), hidden).toBe(false);
    expect(await page.locator('#settings-json').getAttribute('readonly')).not.toBeNull();
    expect(await page.locator('#settings-save').isVisible()).toBe(false);
    const r2 = page.locator('#settings-rooms button[data-room="r2"]');
    const before = await r2.getAttribute('aria-checked');
    await r2.click();
    await expect.poll(() => page.locator('#settings-rooms button[data-room="r2"]').getAttribute('aria-checked'), { timeout: 5000 }).not.toBe(before);
    await page.close();
    expect(problems).toEqual([]);
  });
});
