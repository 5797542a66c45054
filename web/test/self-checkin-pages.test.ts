/**
 * The kiosk (`/kiosk`) and the phone check-in page (`/checkin`) in real
 * headless Chromium against a real hub process and Redis: touch through the
 * screens, read the ticket's QR code as a phone camera would, print the slip
 * (the print dialog's entry point is counted; the slip is checked under print
 * media), and see staff get the same ticket.
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Appointment, QueueEvent } from '@clinic-hub/protocol';
import { startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { connectQueue, recordArrivals, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { collectPageProblems, launchChromium } from '@clinic-hub/test-kit/browser';
import { waitFor } from '@clinic-hub/test-kit/wait';
import { readQr } from './support/read-qr.js';

const C = 'testclinic';
let redis: TestRedis;
let hub: HubNodeProcess;
let browser: Browser;
let staff: QueueSocket;
let staffToken: string;
let arrivals: ReturnType<typeof recordArrivals>;

beforeAll(async () => {
  redis = await startTestRedis();
  hub = await startHubProcess({ redisUrl: redis.url, nodeId: 'kiosk-pages' });
  browser = await launchChromium();
  staffToken = await tokenFor('staff');
  staff = await connectQueue(hub.url, staffToken);
  arrivals = recordArrivals(staff);
});
afterAll(async () => {
  staff?.close();
  await browser?.close();
  await hub?.stop();
  await redis?.cleanup();
});

let context: BrowserContext;
let problems: string[] = [];
beforeEach(async () => {
  context = await browser.newContext();
});
afterEach(async () => {
  await context.close();
});

async function open(path: string, viewport: { width: number; height: number }): Promise<Page> {
  const page = await context.newPage();
  await page.setViewportSize(viewport);
  problems = collectPageProblems(page);
  await page.addInitScript('{ window.__prints = 0; const print = window.print.bind(window); window.print = () => { window.__prints += 1; return print(); }; }');
  await page.goto(`${hub.url}${path}`);
  return page;
}

const screenOf = (page: Page, root = '#kiosk') => page.locator(root).getAttribute('data-screen');

describe('the kiosk', () => {
  it('checks a patient in by touch in English: the number, a QR code of their page, the printed slip; staff get the ticket', async () => {
    const kioskToken = await tokenFor('kiosk', C, { sub: 'kiosk:entrance' });
    const page = await open(`/kiosk#token=${kioskToken}&idle=4`, { width: 1280, height: 800 });
    await expect.poll(() => screenOf(page), { timeout: 15_000 }).toBe('home');
    await page.locator('html[data-connection="live"]').waitFor({ timeout: 10_000 });
    // Large touch targets: every button of the first screen at least 64 px tall.
    for (const box of await page.locator('#kiosk button.big').evaluateAll((els) => els.map((el) => el.getBoundingClientRect().height))) expect(box).toBeGreaterThanOrEqual(64);
    expect(await page.locator('.languages button').allInnerTexts()).toEqual(['日本語', 'English', '中文', '한국어']);
    expect(await page.locator('[data-dept]').allInnerTexts()).toEqual(['内科', '小児科']);

    await page.click('[data-language="en"]');
    expect(await page.locator('[data-dept]').allInnerTexts()).toEqual(['General', 'Pediatrics']);
    await page.click('[data-dept="peds"]');
    await expect.poll(() => screenOf(page)).toBe('notice');
    await page.click('[data-notice="page"]');
    await expect.poll(() => screenOf(page), { timeout: 10_000 }).toBe('ticket');

    const number = (await page.locator('#ticket-number').innerText()).trim();
    expect(number).toMatch(/^B-\d{3}$/);
    expect(await page.locator('#ticket-position').innerText()).toMatch(/You are next · About \d+ min/);
    const event = await waitFor('staff got the ticket', () => arrivals.events.find((e: QueueEvent) => e.ticket.number === number));
    const link = await readQr(page, '#ticket-qr .qr');
    expect(link).not.toBeNull();
    const url = new URL(link!);
    expect(url.pathname).toBe('/ticket');
    const claims = JSON.parse(Buffer.from(new URLSearchParams(url.hash.slice(1)).get('token')!.split('.')[1]!, 'base64url').toString());
    expect(claims).toMatchObject({ role: 'patient', ticket: event.ticket.id });

    // The slip went to the print dialog by itself; printed, it is alone on the page.
    expect(await page.evaluate('window.__prints')).toBe(1);
    await page.emulateMedia({ media: 'print' });
    const slip = page.locator('#print-slip .slip');
    expect(await slip.isVisible()).toBe(true);
    expect(await slip.innerText()).toContain(number);
    expect(await slip.innerText()).toContain('小児科');
    expect(await readQr(page, '#print-slip .slip .qr')).toBe(link);
    expect(await page.locator('#kiosk').isVisible()).toBe(false);
    await page.emulateMedia({ media: 'screen' });

    // Left alone, the kiosk forgets the patient and goes back to its first screen, in Japanese.
    await expect.poll(() => screenOf(page), { timeout: 10_000 }).toBe('home');
    expect(await page.locator('#kiosk').innerText()).not.toContain(number);
    expect(await page.locator('[data-language="ja"]').getAttribute('aria-pressed')).toBe('true');
    expect(problems).toEqual([]);
  });

  it('takes an appointment code and a phone number on the keypad, and says what went wrong in the chosen language', async () => {
    const startsAt = Date.now() + 5 * 60_000;
    const put = await fetch(`${hub.url}/api/clinics/${C}/appointments/kiosk-appt`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${staffToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ startsAt, dept: 'gp' }),
    });
    const { appointment } = (await put.json()) as { appointment: Appointment };
    const kioskToken = await tokenFor('kiosk', C, { sub: 'kiosk:second' });
    const page = await open(`/kiosk#token=${kioskToken}`, { width: 1024, height: 768 });
    await expect.poll(() => screenOf(page), { timeout: 15_000 }).toBe('home');
    await page.click('[data-language="ko"]');
    await page.click('#appointment');
    const type = async (digits: string) => {
      for (const d of digits) await page.click(`.keypad [data-key="${d}"]`);
    };
    // A wrong code first.
    await type('1111111111');
    expect(await page.locator('#code-digits').innerText()).toBe('111-111-1111');
    await page.click('#code-ok');
    await page.click('[data-notice="page"]');
    await expect.poll(() => screenOf(page), { timeout: 10_000 }).toBe('error');
    expect(await page.locator('.prompt.error').innerText()).toContain('예약을 찾을 수 없습니다');
    expect(await page.locator('.error-code').innerText()).toBe('APPOINTMENT_NOT_FOUND');
    await page.click('#error-back');
    await page.click('#appointment');
    await type(appointment.arrivalCode);
    await page.click('#code-ok');
    await page.click('[data-notice="sms"]');
    expect(await page.locator('#phone-ok').isDisabled()).toBe(true);
    await type('09012345678');
    expect(await page.locator('#phone-digits').innerText()).toBe('090-1234-5678');
    await page.click('#phone-ok');
    await expect.poll(() => screenOf(page), { timeout: 10_000 }).toBe('ticket');
    const number = (await page.locator('#ticket-number').innerText()).trim();
    const event = await waitFor('staff got the arrival', () => arrivals.events.find((e: QueueEvent) => e.ticket.number === number && e.ticket.dept === 'gp'));
    expect(event.ticket.appointmentAt).toBe(startsAt);
    expect(await page.locator('.screen-ticket .appointment').innerText()).toMatch(/^예약 \d\d:\d\d$/);
    await page.click('#done');
    await expect.poll(() => screenOf(page)).toBe('home');
    expect(problems).toEqual([]);

    // Staff see which tickets are appointments, and when.
    const console = await open(`/staff#token=${staffToken}`, { width: 1440, height: 1000 });
    const badge = console.locator(`.appointment-badge[data-appointment="${startsAt}"]`);
    await badge.waitFor({ timeout: 10_000 });
    const clock = new Intl.DateTimeFormat('ja-JP', { timeZone: 'Asia/Tokyo', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(startsAt);
    expect([await badge.locator('.ja').innerText(), await badge.locator('.en').innerText()]).toEqual([`予約 ${clock}`, `Appt ${clock}`]);
    expect(await console.locator(`tr:has(.appointment-badge[data-appointment="${startsAt}"]) .number`).innerText()).toContain(number);
    expect(problems).toEqual([]);
  });

  it("reads an appointment card's QR code with a scanner that types like a keyboard", async () => {
    const startsAt = Date.now() + 10 * 60_000;
    const put = await fetch(`${hub.url}/api/clinics/${C}/appointments/scanned-appt`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${staffToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ startsAt, dept: 'peds' }),
    });
    const { appointment } = (await put.json()) as { appointment: Appointment };
    const kioskToken = await tokenFor('kiosk', C, { sub: 'kiosk:scanner' });
    const page = await open(`/kiosk#token=${kioskToken}`, { width: 1024, height: 768 });
    await expect.poll(() => screenOf(page), { timeout: 15_000 }).toBe('home');
    // Another clinic's link, and text that is no code, are ignored.
    await page.keyboard.type(appointment.arrivalUrl.replace(`clinic=${C}`, 'clinic=otherclinic'));
    await page.keyboard.press('Enter');
    await page.keyboard.type('hello');
    await page.keyboard.press('Enter');
    expect(await screenOf(page)).toBe('home');
    // The scanner reads the card's QR code (the arrival link) and ends with Enter.
    await page.keyboard.type(appointment.arrivalUrl);
    await page.keyboard.press('Enter');
    await expect.poll(() => screenOf(page)).toBe('notice');
    await page.click('[data-notice="page"]');
    await expect.poll(() => screenOf(page), { timeout: 10_000 }).toBe('ticket');
    const number = (await page.locator('#ticket-number').innerText()).trim();
    const event = await waitFor('staff got the arrival', () => arrivals.events.find((e: QueueEvent) => e.ticket.number === number && e.ticket.dept === 'peds'));
    expect(event.ticket.appointmentAt).toBe(startsAt);
    // The printed code, dashes and all, works the same on the code screen.
    await page.click('#done');
    await page.click('#appointment');
    await page.keyboard.type(`${appointment.arrivalCode.slice(0, 3)}-${appointment.arrivalCode.slice(3, 6)}-${appointment.arrivalCode.slice(6)}`);
    await page.keyboard.press('Enter');
    await expect.poll(() => screenOf(page)).toBe('notice');
    await page.click('[data-notice="page"]');
    await expect.poll(() => screenOf(page), { timeout: 10_000 }).toBe('ticket');
    // The same appointment again: its ticket, not a second one.
    expect((await page.locator('#ticket-number').innerText()).trim()).toBe(number);
    expect(problems).toEqual([]);
  });
});

describe('the phone check-in page', () => {
  it('checks a walk-in in from the poster\'s link and opens their ticket page; an arrival link checks the appointment in', async () => {
    const created = await fetch(`${hub.url}/api/clinics/${C}/posters`, { method: 'POST', headers: { authorization: `Bearer ${staffToken}`, 'content-type': 'application/json' }, body: '{"label":"door"}' });
    const { poster } = (await created.json()) as { poster: { id: string; url: string } };
    expect(poster.url).toBe(`${hub.url}/checkin#clinic=${C}&poster=${poster.id}`);
    const page = await open(`/checkin#clinic=${C}&poster=${poster.id}`, { width: 390, height: 844 });
    await expect.poll(() => screenOf(page, '#checkin'), { timeout: 15_000 }).toBe('home');
    await page.click('[data-language="en"]');
    await page.click('[data-dept="gp"]');
    await page.click('[data-notice="page"]');
    await page.waitForURL(/\/ticket#/, { timeout: 10_000 });
    expect(new URLSearchParams(new URL(page.url()).hash.slice(1)).get('lang')).toBe('en');
    await expect.poll(() => page.locator('#number').innerText(), { timeout: 10_000 }).toMatch(/^A-\d{3}$/);
    const number = (await page.locator('#number').innerText()).trim();
    await waitFor('staff got it', () => arrivals.events.find((e: QueueEvent) => e.ticket.number === number && e.ticket.dept === 'gp'));

    // The reminder's link on the day: the appointment is shown, one press checks it in.
    const startsAt = Date.now() + 20 * 60_000;
    const put = await fetch(`${hub.url}/api/clinics/${C}/appointments/phone-appt`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${staffToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ startsAt, dept: 'peds' }),
    });
    const { appointment } = (await put.json()) as { appointment: Appointment };
    const arrival = await open(appointment.arrivalUrl.replace(/^https?:\/\/[^/]+/, ''), { width: 390, height: 844 });
    await expect.poll(() => screenOf(arrival, '#checkin'), { timeout: 15_000 }).toBe('notice');
    expect(await arrival.locator('#appointment-facts').innerText()).toContain('小児科');
    await arrival.click('[data-notice="page"]');
    await arrival.waitForURL(/\/ticket#/, { timeout: 10_000 });
    await waitFor('staff got the arrival', () => arrivals.events.find((e: QueueEvent) => e.ticket.appointmentAt === startsAt));
    expect(problems).toEqual([]);
  });
});

describe('the clinic QR poster', () => {
  it('makes a poster whose QR code opens the phone check-in page, prints it alone, and withdraws it', async () => {
    const page = await open(`/poster#token=${staffToken}`, { width: 1280, height: 1000 });
    await page.locator('#make-poster').waitFor({ timeout: 15_000 });
    await page.fill('#make-poster input[name="label"]', '入口 entrance');
    await page.click('#make-poster button[type="submit"]');
    // Posters made earlier are listed (and one shown) before this one exists: wait until the new one is the one shown.
    await page.locator('.poster-list li.selected', { hasText: '入口 entrance' }).waitFor({ timeout: 10_000 });
    await page.locator('#poster-qr .qr').waitFor({ timeout: 10_000 });
    const link = await readQr(page, '#poster-qr .qr');
    const url = new URL(link!);
    expect(url.pathname).toBe('/checkin');
    const fragment = new URLSearchParams(url.hash.slice(1));
    expect(fragment.get('clinic')).toBe(C);
    const posterId = fragment.get('poster')!;
    expect((await fetch(`${hub.url}/api/clinics/${C}/self-checkin?poster=${posterId}`)).status).toBe(200);
    expect(await page.locator('.poster-hours').innerText()).toContain('00:00-24:00');

    await page.click('#print-poster');
    expect(await page.evaluate('window.__prints')).toBe(1);
    await page.emulateMedia({ media: 'print' });
    expect(await page.locator('#controls').isVisible()).toBe(false);
    expect(await page.locator('#poster-qr').isVisible()).toBe(true);
    await page.emulateMedia({ media: 'screen' });

    await page.click(`[data-withdraw="${posterId}"]`);
    await page.locator(`[data-poster="${posterId}"]`).waitFor({ state: 'detached', timeout: 10_000 });
    expect((await fetch(`${hub.url}/api/clinics/${C}/self-checkin?poster=${posterId}`)).status).toBe(403);
    expect(problems).toEqual([]);
  });
});
