/**
 * Video consultations from the pages, in real headless Chromium against a
 * real hub process and Redis: the patient's ticket page shows "join the
 * consultation" as soon as a doctor admits them and opens the consultation
 * page with their own room token; the staff console admits a patient of an
 * online department and opens the consultation page for the doctor.
 */
import { Redis } from 'ioredis';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { QueueSnapshot } from '@clinic-hub/protocol';
import { CONSULT_HUB_ENV, announceMediaNode, connectConsult, consultRequest, testRoomTokens, type ConsultSocket } from '@clinic-hub/test-kit/consult-client';
import { startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { connectQueue, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { collectPageProblems, launchChromium } from '@clinic-hub/test-kit/browser';

const CLINIC = 'testclinic';
const MEDIA_URL = 'ws://media-web.test:7443';

let redisServer: TestRedis;
let redis: Redis;
let hub: HubNodeProcess;
let browser: Browser;
let staff: QueueSocket;
let staffToken: string;
let doctor: ConsultSocket;

beforeAll(async () => {
  redisServer = await startTestRedis();
  redis = new Redis(redisServer.url);
  await announceMediaNode(redis, { id: 'media-web', url: MEDIA_URL });
  hub = await startHubProcess({ redisUrl: redisServer.url, nodeId: 'web-consult', env: CONSULT_HUB_ENV });
  browser = await launchChromium();
  staffToken = await tokenFor('staff');
  staff = await connectQueue(hub.url, staffToken);
  doctor = await connectConsult(hub.url, await tokenFor('doctor', CLINIC, { sub: 'doctor:web' }));
});

afterAll(async () => {
  staff?.close();
  doctor?.close();
  await browser?.close();
  await hub?.stop();
  redis?.disconnect();
  await redisServer?.cleanup();
});

let context: BrowserContext;
let problems: string[] = [];
beforeEach(async () => {
  for (const ticket of (await snapshot()).tickets) {
    const ack = ticket.status === 'in_consultation' ? await request(staff, 'queue:done', { ticketId: ticket.id }) : await request(staff, 'queue:cancel', { ticketId: ticket.id });
    expect(ack.ok).toBe(true);
  }
  context = await browser.newContext();
});
afterEach(async () => {
  await context.close();
});

async function snapshot(): Promise<QueueSnapshot> {
  const res = await fetch(`${hub.url}/api/clinics/${CLINIC}/queue`, { headers: { authorization: `Bearer ${staffToken}` } });
  return (await res.json()) as QueueSnapshot;
}

async function openPage(path: string, viewport: { width: number; height: number }): Promise<Page> {
  const page = await context.newPage();
  await page.setViewportSize(viewport);
  problems = collectPageProblems(page);
  await page.goto(`${hub.url}${path}`);
  await page.waitForSelector('html[data-connection="live"]', { timeout: 10_000 });
  return page;
}

function ok<T extends { ok: boolean }>(ack: T): Extract<T, { ok: true }> {
  if (!ack.ok) throw new Error(`expected ok, got ${JSON.stringify(ack)}`);
  return ack as Extract<T, { ok: true }>;
}

/** The consultation page a click opened: its address, once it has left about:blank. */
async function openedConsultPage(page: Page, click: () => Promise<void>): Promise<URL> {
  const [tab] = await Promise.all([context.waitForEvent('page', { timeout: 10_000 }), click()]);
  try {
    await tab.waitForURL(/\/consult#/, { timeout: 10_000 });
  } catch (error) {
    // The page closes the tab when the hub refused: say what it showed.
    const shown = await page.locator('#messages, #consult').allInnerTexts();
    throw new Error(`no consultation page opened (${(error as Error).message}); the page shows: ${shown.join(' | ')}`);
  }
  const url = new URL(tab.url());
  await tab.close();
  return url;
}

describe('patient ticket page, online department', () => {
  it('shows the join button as soon as the doctor admits, and opens the consultation with its own room token', async () => {
    const mine = ok(await request(staff, 'queue:checkin', { dept: 'online', patient: { name: 'Ishikawa Rin' } }));
    const other = ok(await request(staff, 'queue:checkin', { dept: 'online' }));
    const page = await openPage(`/ticket${new URL(mine.patientUrl).hash}`, { width: 390, height: 844 });
    const otherPage = await openPage(`/ticket${new URL(other.patientUrl).hash}`, { width: 390, height: 844 });
    const status = page.locator('#status');
    await expect.poll(() => status.innerText(), { timeout: 5000 }).toContain('オンライン診療です');
    expect(await page.locator('#join-consult').count()).toBe(0);

    const admittedAt = Date.now();
    const admitted = ok(await consultRequest(doctor, 'consult:admit', { dept: 'online', room: 'v1' }));
    expect(admitted.consultation.ticket).toBe(mine.event.ticket.id);
    const button = page.locator('#join-consult');
    await button.waitFor({ timeout: 3000 });
    const shownAfterMs = Date.now() - admittedAt;
    expect(shownAfterMs).toBeLessThan(2000);
    expect(await button.innerText()).toContain('診察に参加する');
    expect(await button.innerText()).toContain('Join the consultation');
    expect(await page.locator('#consult').innerText()).toContain('医師の準備ができました');

    const url = await openedConsultPage(page, () => button.click());
    const fragment = new URLSearchParams(url.hash.slice(1));
    expect(url.pathname).toBe('/consult');
    expect(fragment.get('media')).toBe(MEDIA_URL);
    expect(testRoomTokens.verify(fragment.get('token'))).toMatchObject({
      aud: 'media',
      clinic: CLINIC,
      consult: admitted.consultation.id,
      part: 'patient',
      sub: `patient:${mine.event.ticket.id}`,
    });
    // The patient's own hub token and ticket ride along for their chat with the clinic on that page.
    expect(fragment.get('ticket')).toBe(mine.event.ticket.id);
    expect(fragment.get('hub')).toBe(new URLSearchParams(new URL(mine.patientUrl).hash.slice(1)).get('token'));
    // Joining started the ticket.
    await expect.poll(async () => (await snapshot()).tickets.find((t) => t.id === mine.event.ticket.id)?.status, { timeout: 5000 }).toBe('in_consultation');

    // The other patient waiting in the same department was told nothing.
    expect(await otherPage.locator('#join-consult').count()).toBe(0);
    expect(await otherPage.locator('#consult').isHidden()).toBe(true);

    ok(await consultRequest(doctor, 'consult:end', { consult: admitted.consultation.id }));
    await page.locator('#consult[data-state="ended"]').waitFor({ timeout: 5000 });
    expect(await page.locator('#join-consult').count()).toBe(0);
    expect(await page.locator('#consult').innerText()).toContain('オンライン診察は終了しました');
    expect(await page.evaluate('document.body.innerText')).not.toContain('Ishikawa');
    expect(problems).toEqual([]);
    process.stdout.write(`ticket page: join button shown ${shownAfterMs} ms after the admission\n`);
  });

  it('a page opened after the admission shows the button at once', async () => {
    const mine = ok(await request(staff, 'queue:checkin', { dept: 'online' }));
    ok(await consultRequest(doctor, 'consult:admit', { dept: 'online', room: 'v2' }));
    const page = await openPage(`/ticket${new URL(mine.patientUrl).hash}`, { width: 390, height: 844 });
    await page.locator('#join-consult').waitFor({ timeout: 5000 });
    ok(await consultRequest(doctor, 'consult:end', { ticketId: mine.event.ticket.id }));
    await page.locator('#consult[data-state="ended"]').waitFor({ timeout: 5000 });
  });
});

describe('staff page, online department', () => {
  it('admits the next patient and opens the consultation page for the doctor; ends it from the ticket row', async () => {
    const doctorToken = await tokenFor('doctor', CLINIC, { sub: 'doctor:console' });
    const patient = ok(await request(staff, 'queue:checkin', { dept: 'online' })).event.ticket;
    const page = await openPage(`/staff#token=${doctorToken}`, { width: 1440, height: 1000 });
    await page.locator('#call-dept option[value="online"]').waitFor({ state: 'attached', timeout: 5000 });
    await page.selectOption('#call-dept', 'online');
    await page.selectOption('#call-room', 'v2');
    await expect.poll(() => page.locator('#call-submit').innerText(), { timeout: 3000 }).toContain('オンライン診察へ');

    const url = await openedConsultPage(page, () => page.click('#call-submit'));
    const fragment = new URLSearchParams(url.hash.slice(1));
    expect(fragment.get('media')).toBe(MEDIA_URL);
    const claims = testRoomTokens.verify(fragment.get('token'));
    expect(claims).toMatchObject({ part: 'doctor', sub: 'doctor:console', clinic: CLINIC });
    // The doctor's hub token rides along for the AI panel.
    expect(fragment.get('hub')).toBe(doctorToken);
    expect((await snapshot()).tickets.find((t) => t.id === patient.id)).toMatchObject({ status: 'called', room: 'v2' });

    const row = page.locator('.dept[data-dept="online"] table.calls tr', { hasText: patient.number });
    await row.waitFor({ timeout: 5000 });
    const joinUrl = await openedConsultPage(page, () => row.locator('button[data-action="join-video"]').click());
    expect(testRoomTokens.verify(new URLSearchParams(joinUrl.hash.slice(1)).get('token'))).toMatchObject({ consult: claims.consult, part: 'doctor' });

    await row.locator('button[data-action="end-video"]').click();
    await expect.poll(async () => (await snapshot()).tickets.some((t) => t.id === patient.id), { timeout: 5000 }).toBe(false);
    expect(await redis.hget(`ch:{${CLINIC}}:consult:${claims.consult}`, 'status')).toBe('ended');
    expect(problems).toEqual([]);
  });

  it('calling in an online department admits to video, never a dead end; the next admission finishes the patient in consultation', async () => {
    const first = ok(await request(staff, 'queue:checkin', { dept: 'online' }));
    const second = ok(await request(staff, 'queue:checkin', { dept: 'online' }));
    const firstPage = await openPage(`/ticket${new URL(first.patientUrl).hash}`, { width: 390, height: 844 });
    const secondPage = await openPage(`/ticket${new URL(second.patientUrl).hash}`, { width: 390, height: 844 });
    // A staff member's console, as `npm start` prints it.
    const console = await openPage(`/staff#token=${staffToken}`, { width: 1440, height: 1000 });
    await console.locator('#call-dept option[value="online"]').waitFor({ state: 'attached', timeout: 5000 });
    await console.selectOption('#call-dept', 'online');
    await console.selectOption('#call-room', 'v1');
    const one = await openedConsultPage(console, () => console.click('#call-submit'));
    const oneClaims = testRoomTokens.verify(new URLSearchParams(one.hash.slice(1)).get('token'));
    expect(oneClaims).toMatchObject({ part: 'nurse' });

    // The patient is told to join, and the button is there.
    await firstPage.locator('#join-consult').waitFor({ timeout: 5000 });
    expect(await firstPage.locator('#status').innerText()).toContain('下のボタンからビデオ診察に参加してください');
    const joined = await openedConsultPage(firstPage, () => firstPage.locator('#join-consult').click());
    expect(testRoomTokens.verify(new URLSearchParams(joined.hash.slice(1)).get('token'))).toMatchObject({ part: 'patient', consult: oneClaims.consult });
    await expect.poll(async () => (await snapshot()).tickets.find((t) => t.id === first.event.ticket.id)?.status, { timeout: 5000 }).toBe('in_consultation');

    // The next admission into v1 finishes the first patient, as "call next" does.
    const two = await openedConsultPage(console, () => console.click('#call-submit'));
    const twoClaims = testRoomTokens.verify(new URLSearchParams(two.hash.slice(1)).get('token'));
    expect(twoClaims.consult).not.toBe(oneClaims.consult);
    await firstPage.locator('#consult[data-state="ended"]').waitFor({ timeout: 5000 });
    await secondPage.locator('#join-consult').waitFor({ timeout: 5000 });
    const tickets = (await snapshot()).tickets;
    expect(tickets.some((t) => t.id === first.event.ticket.id)).toBe(false);
    expect(tickets.find((t) => t.id === second.event.ticket.id)).toMatchObject({ status: 'called', room: 'v1' });

    // "Join video" on the new patient's row opens their consultation.
    const row = console.locator('.dept[data-dept="online"] table.calls tr', { hasText: second.event.ticket.number });
    const joinUrl = await openedConsultPage(console, () => row.locator('button[data-action="join-video"]').click());
    expect(testRoomTokens.verify(new URLSearchParams(joinUrl.hash.slice(1)).get('token'))).toMatchObject({ consult: twoClaims.consult, part: 'nurse' });
    expect(await console.locator('#messages .message.error').count()).toBe(0);
    ok(await consultRequest(doctor, 'consult:end', { consult: twoClaims.consult }));
    expect(problems).toEqual([]);
  });

  it('admits a named waiting patient from their row', async () => {
    const first = ok(await request(staff, 'queue:checkin', { dept: 'online' })).event.ticket;
    const second = ok(await request(staff, 'queue:checkin', { dept: 'online' })).event.ticket;
    const page = await openPage(`/staff#token=${await tokenFor('doctor', CLINIC, { sub: 'doctor:row' })}`, { width: 1440, height: 1000 });
    const row = page.locator('.dept[data-dept="online"] table.waiting tr', { hasText: second.number });
    await row.waitFor({ timeout: 5000 });
    const url = await openedConsultPage(page, () => row.locator('button[data-action="admit"]').click());
    expect(testRoomTokens.verify(new URLSearchParams(url.hash.slice(1)).get('token'))).toMatchObject({ part: 'doctor' });
    const tickets = (await snapshot()).tickets;
    expect(tickets.find((t) => t.id === second.id)).toMatchObject({ status: 'called' });
    expect(tickets.find((t) => t.id === first.id)).toMatchObject({ status: 'waiting' });
    expect(problems).toEqual([]);
  });
});

describe('the consultation page', () => {
  it('carries the patient’s chat with the clinic on both sides, and no AI panel for the patient', async () => {
    const mine = ok(await request(staff, 'queue:checkin', { dept: 'online' }));
    const ticketId = mine.event.ticket.id;
    const admitted = ok(await consultRequest(doctor, 'consult:admit', { dept: 'online', room: 'v1', ticketId }));
    const consultPage = async (part: 'patient' | 'doctor', sub: string, hubToken: string) => {
      const token = testRoomTokens.issue({ clinic: CLINIC, consult: admitted.consultation.id, sub, part, name: part }, 300).token;
      const page = await context.newPage();
      await page.goto(`${hub.url}/consult#${new URLSearchParams({ media: MEDIA_URL, token, hub: hubToken, ticket: ticketId }).toString()}`);
      await page.locator('#consult-chat:not([hidden]) .chat-input').waitFor({ timeout: 10_000 });
      return page;
    };
    const patientHub = new URLSearchParams(new URL(mine.patientUrl).hash.slice(1)).get('token')!;
    const patientPage = await consultPage('patient', `patient:${ticketId}`, patientHub);
    const doctorPage = await consultPage('doctor', 'doctor:chat', await tokenFor('doctor', CLINIC, { sub: 'doctor:chat' }));

    const patientInput = patientPage.locator('#consult-chat .chat-input');
    await patientInput.fill('画面の資料をもう一度送ってください');
    await patientInput.press('Enter');
    const received = doctorPage.locator('#consult-chat .chat-message.theirs', { hasText: '画面の資料をもう一度送ってください' });
    await received.waitFor({ timeout: 5000 });

    const doctorInput = doctorPage.locator('#consult-chat .chat-input');
    await doctorInput.fill('チャットに送りました');
    await doctorInput.press('Enter');
    await patientPage.locator('#consult-chat .chat-message.theirs', { hasText: 'チャットに送りました' }).waitFor({ timeout: 5000 });

    expect(await patientPage.locator('#ai-panel').isHidden()).toBe(true);
    ok(await consultRequest(doctor, 'consult:end', { consult: admitted.consultation.id }));
  });
});

