/**
 * Chat in real headless Chromium against a real hub process and Redis: a
 * patient on their ticket page and a member of staff on the staff chat page
 * talk both ways, with presence, typing, read receipts and an image.
 */
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, afterEach, describe, expect, it } from 'vitest';
import { patientThreadId } from '@clinic-hub/protocol';
import { REPO_ROOT, startHubProcess, testTokens, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { connectQueue, expectOk, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { startTcpProxy, type TcpProxy } from '@clinic-hub/test-kit/tcp-proxy';
import { collectPageProblems, launchChromium } from '@clinic-hub/test-kit/browser';

const ARTIFACTS = resolve(REPO_ROOT, 'test-artifacts');

/** A real 1×1 PNG: the staff page must be able to decode and show it. */
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');

/** The little of the page's globals the tests read (the test code is compiled without the DOM library). */
interface InPage {
  document: { querySelector(selector: string): { naturalWidth?: number } | null };
}

let redis: TestRedis;
let hub: HubNodeProcess;
let proxy: TcpProxy;
let browser: Browser;
let reception: QueueSocket;

beforeAll(async () => {
  redis = await startTestRedis();
  hub = await startHubProcess({ redisUrl: redis.url, nodeId: 'chat-web-test' });
  proxy = await startTcpProxy(hub.port);
  browser = await launchChromium();
  reception = await connectQueue(hub.url, await tokenFor('staff'));
});

afterAll(async () => {
  reception?.close();
  await browser?.close();
  await proxy?.close();
  await hub?.stop();
  await redis?.cleanup();
});

let context: BrowserContext;
const problems = new Map<Page, string[]>();
beforeEach(async () => {
  context = await browser.newContext();
  problems.clear();
});
afterEach(async () => {
  await context.close();
});

async function openPage(path: string, viewport: { width: number; height: number }): Promise<Page> {
  const page = await context.newPage();
  await page.setViewportSize(viewport);
  problems.set(page, collectPageProblems(page));
  await page.goto(`${proxy.url}${path}`);
  await page.waitForSelector('html[data-connection="live"]', { timeout: 10_000 });
  return page;
}

describe('chat pages, first contact', () => {
  it('says "no staff available" only once the patient has written, shows times in the clinic\'s timezone, and names the clinic and the staff member in the header', async () => {
    // The reader's device is in New York; the clinic (testclinic) is in Tokyo.
    await context.close();
    context = await browser.newContext({ timezoneId: 'America/New_York' });
    const checkin = expectOk(await request(reception, 'queue:checkin', { dept: 'gp' }));
    const patientUrl = new URL(checkin.patientUrl);
    const patient = await openPage(`${patientUrl.pathname}${patientUrl.hash}`, { width: 390, height: 844 });
    await patient.locator('#chat-slot .chat-input').waitFor({ timeout: 10_000 });
    await patient.locator('#chat-slot .chat-empty').waitFor({ timeout: 10_000 });
    // Nobody on duty and nothing written yet: no discouraging notice on an empty chat.
    await patient.waitForTimeout(1000);
    expect(await patient.locator('#chat-presence').isHidden()).toBe(true);
    expect(await patient.locator('body').innerText()).not.toContain('対応できるスタッフはいません');

    const input = patient.locator('#chat-slot .chat-input');
    await input.fill('今日は何時まで開いていますか');
    await input.press('Enter');
    const mine = patient.locator('.chat-message.mine[data-seq="1"]');
    await mine.waitFor({ timeout: 5000 });
    // Now that they have written, they learn nobody is available right now.
    await patient.locator('#chat-presence').waitFor({ state: 'visible', timeout: 5000 });
    expect(await patient.locator('#chat-presence').innerText()).toContain('ただいま対応できるスタッフはいません');
    expect(await patient.locator('#chat-presence').innerText()).toContain('No staff are available right now');

    const clockIn = (zone: string, at: string) =>
      new Intl.DateTimeFormat('ja-JP', { timeZone: zone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(new Date(at));
    const time = mine.locator('time');
    const at = (await time.getAttribute('datetime'))!;
    expect(await time.innerText()).toBe(clockIn('Asia/Tokyo', at));
    expect(clockIn('Asia/Tokyo', at)).not.toBe(clockIn('America/New_York', at));

    // Staff with a name in their token: the header shows the clinic's name and theirs, not ids.
    const { token: namedToken } = await testTokens.issue({ sub: 'staff:sato', role: 'staff', clinic: 'testclinic', name: '佐藤 花子' }, 3600);
    const staff = await openPage(`/chat#token=${namedToken}`, { width: 1280, height: 900 });
    const header = staff.locator('header.bar');
    await expect.poll(() => staff.locator('#clinic-name').innerText(), { timeout: 5000 }).toContain('テストクリニック');
    expect(await staff.locator('#clinic-name').innerText()).toContain('Test Clinic');
    expect(await staff.locator('#self-name').innerText()).toContain('佐藤 花子');
    expect(await header.innerText()).not.toContain('staff:sato');
    expect(await header.innerText()).not.toContain('testclinic');
    const listed = staff.locator(`#patient-threads button[data-thread="${patientThreadId(checkin.event.ticket.id)}"]`);
    await listed.waitFor({ timeout: 5000 });
    await listed.click();
    const received = staff.locator('.chat-message.theirs[data-seq="1"] time');
    await received.waitFor({ timeout: 5000 });
    await expect.poll(() => received.innerText(), { timeout: 5000 }).toBe(clockIn('Asia/Tokyo', at));
    for (const page of [patient, staff]) expect(problems.get(page)).toEqual([]);
  });
});

describe('chat pages', () => {
  it('a patient on /ticket and staff on /chat exchange messages both ways, with presence, typing, receipts and an image', async () => {
    const checkin = expectOk(await request(reception, 'queue:checkin', { dept: 'gp', patient: { name: 'Yamada Hanako' } }));
    const threadId = patientThreadId(checkin.event.ticket.id);
    const { number } = checkin.event.ticket;
    const staffToken = await tokenFor('staff', 'testclinic', { sub: 'staff:hanako' });

    const staff = await openPage(`/chat#token=${staffToken}`, { width: 1280, height: 900 });
    const patientUrl = new URL(checkin.patientUrl);
    const patient = await openPage(`${patientUrl.pathname}${patientUrl.hash}`, { width: 390, height: 844 });

    // The patient sees that staff are available (the staff page is open).
    const presence = patient.locator('#chat-presence');
    await expect.poll(() => presence.getAttribute('data-available'), { timeout: 5000 }).toBe('true');
    expect(await presence.innerText()).toContain('対応可能');

    // Patient → staff.
    const patientInput = patient.locator('#chat-slot .chat-input');
    await patientInput.fill('薬について質問があります');
    await patientInput.press('Enter');
    await patient.locator('.chat-message.mine[data-seq="1"]').waitFor({ timeout: 5000 });
    expect(await patientInput.inputValue()).toBe('');

    const listed = staff.locator(`#patient-threads button[data-thread="${threadId}"]`);
    await listed.waitFor({ timeout: 5000 });
    expect(await listed.innerText()).toContain(number);
    await expect.poll(() => listed.innerText(), { timeout: 5000 }).toContain('未読');
    await listed.click();
    const received = staff.locator('.chat-message.theirs[data-seq="1"]');
    await received.waitFor({ timeout: 5000 });
    expect(await received.innerText()).toContain('薬について質問があります');
    expect(await received.innerText()).toContain(`患者さん（${number}）`);
    expect(await listed.innerText()).not.toContain('未読');

    // Staff opened it: the patient sees it was read.
    await patient.locator('.chat-message.mine[data-seq="1"] .chat-read').waitFor({ timeout: 5000 });

    // Staff types: the patient sees it; staff sends: the patient gets the reply.
    const staffInput = staff.locator('.chat-panel .chat-input');
    await staffInput.pressSequentially('どのお薬でしょうか？', { delay: 15 });
    await expect.poll(() => patient.locator('.chat-typing').innerText(), { timeout: 5000 }).toContain('入力中');
    await staffInput.press('Enter');
    const reply = patient.locator('.chat-message.theirs[data-seq="2"]');
    await reply.waitFor({ timeout: 5000 });
    expect(await reply.innerText()).toContain('どのお薬でしょうか？');
    expect(await reply.innerText()).toContain('スタッフ');
    await expect.poll(() => patient.locator('.chat-typing').innerText(), { timeout: 8000 }).toBe('');

    // The patient attaches a photo; staff see the picture itself.
    await patient.setInputFiles('#chat-slot .chat-file-input', { name: 'rash.png', mimeType: 'image/png', buffer: PNG });
    await patient.locator('#chat-slot .chat-chip', { hasText: 'rash.png' }).waitFor({ timeout: 2000 });
    await patient.locator('#chat-slot .chat-send').click();
    await staff.waitForFunction(
      () => (globalThis as unknown as InPage).document.querySelector('.chat-message[data-seq="3"] img.chat-image')?.naturalWidth === 1,
      undefined,
      { timeout: 10_000 },
    );
    expect(await staff.locator('.chat-message[data-seq="3"] figcaption').innerText()).toBe('rash.png');

    // Staff mark themselves busy: the patient sees it.
    await staff.selectOption('#my-status', 'busy');
    await expect.poll(() => presence.innerText(), { timeout: 5000 }).toContain('対応中');
    expect(await presence.getAttribute('data-available')).toBe('false');

    mkdirSync(ARTIFACTS, { recursive: true });
    await staff.screenshot({ path: resolve(ARTIFACTS, 'chat-staff.png') });
    await patient.screenshot({ path: resolve(ARTIFACTS, 'chat-patient.png'), fullPage: true });

    // Nothing of the patient's name reached the chat pages.
    for (const page of [staff, patient]) expect(await page.evaluate('document.body.innerText')).not.toContain('Yamada');
    for (const [, found] of problems) expect(found).toEqual([]);
  });

  it('a patient page that loses its connection shows the messages sent meanwhile, once each', async () => {
    const checkin = expectOk(await request(reception, 'queue:checkin', { dept: 'gp' }));
    const threadId = patientThreadId(checkin.event.ticket.id);
    const patientUrl = new URL(checkin.patientUrl);
    const patient = await openPage(`${patientUrl.pathname}${patientUrl.hash}`, { width: 390, height: 844 });
    await patient.locator('#chat-box:not([hidden])').waitFor({ timeout: 5000 });

    const { connectChat, chatRequest, newClientMessageId } = await import('@clinic-hub/test-kit/chat-client');
    const staffSocket = await connectChat(hub.url, await tokenFor('staff', 'testclinic', { sub: 'staff:night' }));
    try {
      const send = async (text: string) => expectOk(await chatRequest(staffSocket, 'chat:send', { threadId, clientMessageId: newClientMessageId(), text }));
      await send('一通目');
      await patient.locator('.chat-message.theirs[data-seq="1"]').waitFor({ timeout: 5000 });

      await proxy.cut();
      await patient.waitForSelector('html[data-connection="reconnecting"]', { timeout: 10_000 });
      for (const text of ['二通目', '三通目', '四通目']) await send(text);
      await proxy.restore();
      await patient.waitForSelector('html[data-connection="live"]', { timeout: 15_000 });
      await patient.locator('.chat-message.theirs[data-seq="4"]').waitFor({ timeout: 10_000 });
      const seqs = await patient.locator('.chat-message').evaluateAll((items) => items.map((item) => (item as unknown as { dataset: { seq: string } }).dataset.seq));
      expect(seqs).toEqual(['1', '2', '3', '4']);
      expect(await patient.locator('.chat-messages').innerText()).toMatch(/一通目[\s\S]*二通目[\s\S]*三通目[\s\S]*四通目/);
    } finally {
      staffSocket.close();
    }
    expect([...problems.values()].flat().filter((p) => !p.includes('ERR_CONNECTION'))).toEqual([]);
  });
});
