/**
 * One wait estimate (protocol/src/wait.ts), the same on every screen: for
 * one waiting ticket at one moment, the waiting-room display, the patient's
 * ticket page and the staff console (real Chromium) and the CLI (`clinic
 * queue --json` and its table) show the same minutes. The department has
 * two rooms of which staff have closed one (the clinic's settings): it does
 * not count as capacity. When it opens again every screen shows the new
 * figure live, without a reload. The mean consultation is measured
 * (durations in Redis).
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { estimateWaitMinutes, type PublicTicket } from '@clinic-hub/protocol';
import { startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { connectQueue, expectOk, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { cleanEnv, runCli } from '@clinic-hub/test-kit/run-cli';
import { collectPageProblems, launchChromium } from '@clinic-hub/test-kit/browser';

const CLINIC = 'testclinic';
/** Two measured consultations of 6 and 8 minutes: a mean of 7. */
const MEASURED_MS = [6 * 60_000, 8 * 60_000];

let redis: TestRedis;
let hub: HubNodeProcess;
let browser: Browser;
let context: BrowserContext;
let staff: QueueSocket;
let staffToken: string;
const problems: string[] = [];

beforeAll(async () => {
  redis = await startTestRedis();
  hub = await startHubProcess({ redisUrl: redis.url, nodeId: 'wait-test' });
  browser = await launchChromium();
  context = await browser.newContext();
  staffToken = await tokenFor('staff');
  staff = await connectQueue(hub.url, staffToken);
}, 120_000);

afterAll(async () => {
  staff?.close();
  await context?.close();
  await browser?.close();
  await hub?.stop();
  await redis?.cleanup();
});

async function openPage(path: string): Promise<Page> {
  const page = await context.newPage();
  await page.setViewportSize({ width: 1920, height: 1080 });
  problems.push(...collectPageProblems(page));
  await page.goto(`${hub.url}${path}`);
  await page.waitForSelector('html[data-connection="live"]', { timeout: 15_000 });
  return page;
}

/** The whole minutes in a text such as "約 18 分 / about 18 min" or "~18 min": each figure it shows. */
function minutesIn(text: string | null): number[] {
  return [...(text ?? '').matchAll(/(?:約\s*|about\s+|~)(\d+)\s*(?:分|min)/g)].map((m) => Number(m[1]));
}

describe('one wait estimate', () => {
  it('display, ticket page, staff console and CLI show the same minutes for the same ticket', async () => {
    const writer = new Redis(redis.url);
    // The department's measured consultations, newest first (hub/src/queue/queue-keys.ts: one `durations` hash per clinic).
    await writer.hset(`ch:{${CLINIC}}:durations`, 'gp', MEASURED_MS.join(','));
    writer.disconnect();
    const issued: PublicTicket[] = [];
    for (let i = 0; i < 5; i++) issued.push(expectOk(await request(staff, 'queue:checkin', { dept: 'gp' })).event.ticket);
    // Staff close room r2 (nobody works there today); r1's doctor calls the first patient and starts.
    const closed = await setRoom('r2', false);
    expect(closed).toMatchObject({ room: 'r2', open: false });
    const first = expectOk(await request(staff, 'queue:call-next', { dept: 'gp', room: 'r1' })).event.ticket;
    expectOk(await request(staff, 'queue:start', { ticketId: first.id }));
    const ticket = issued[3]!; // two ahead of it
    const expected = estimateWaitMinutes(2, 1, { avgConsultMinutes: 7, samples: 2 });
    expect(expected).toBe(18); // (2 + 0.5) × 7 / 1 open room; counting the closed room too would give 9

    const patientToken = await tokenFor('patient', CLINIC, { ticket: ticket.id, sub: `patient:${ticket.id}` });

    const display = await openPage(`/display#token=${await tokenFor('display')}`);
    const ticketPage = await openPage(`/ticket#token=${patientToken}`);
    const console = await openPage(`/staff#token=${staffToken}`);

    const onDisplay = minutesIn(await display.locator(`#departments .next li[data-ticket="${ticket.number}"]`).textContent({ timeout: 10_000 }));
    const onTicketPage = minutesIn(await ticketPage.locator('#status .wait').textContent({ timeout: 10_000 }));
    const row = console.locator(`section.dept[data-dept="gp"] table.waiting tr`, { hasText: ticket.number });
    const onConsole = minutesIn(await row.locator('td').nth(2).textContent({ timeout: 10_000 }));

    const env = cleanEnv({ CLINIC_URL: hub.url, CLINIC_TOKEN: staffToken });
    const json = await runCli(['queue', '--dept', 'gp', '--json'], { env });
    expect(json.code, json.stderr).toBe(0);
    const cliRow = (json.json().departments[0].tickets as { number: string; waitMinutes: number | null }[]).find((t) => t.number === ticket.number);
    const tableRun = await runCli(['queue', '--dept', 'gp'], { env: { ...env, NO_COLOR: '1' } });
    expect(tableRun.code, tableRun.stderr).toBe(0);
    const tableLine = tableRun.stdout.split('\n').find((line) => line.trimStart().startsWith(ticket.number)) ?? '';

    expect({
      display: onDisplay,
      ticketPage: onTicketPage,
      staffConsole: onConsole,
      cliJson: cliRow?.waitMinutes,
      cliTable: minutesIn(tableLine),
    }).toEqual({
      display: [expected, expected], // Japanese and English
      ticketPage: [expected, expected], // Japanese and English
      staffConsole: [expected, expected],
      cliJson: expected,
      cliTable: [expected],
    });

    // Staff open r2 again from the console's room switch: the three pages follow live (queue:clinic), the CLI on
    // its next run, all with the same figure.
    const roomSwitch = console.locator('section.dept[data-dept="gp"] button[data-room-switch="r2"]');
    expect(await roomSwitch.getAttribute('aria-checked')).toBe('false');
    expect(await roomSwitch.innerText()).toContain('閉室');
    await roomSwitch.click();
    await expect.poll(() => console.locator('section.dept[data-dept="gp"] button[data-room-switch="r2"]').getAttribute('aria-checked'), { timeout: 5000 }).toBe('true');
    const reopened = estimateWaitMinutes(2, 2, { avgConsultMinutes: 7, samples: 2 });
    expect(reopened).toBe(9);
    await expect.poll(async () => minutesIn(await display.locator(`#departments .next li[data-ticket="${ticket.number}"]`).textContent()), { timeout: 5000 }).toEqual([reopened, reopened]);
    await expect.poll(async () => minutesIn(await ticketPage.locator('#status .wait').textContent()), { timeout: 5000 }).toEqual([reopened, reopened]);
    await expect.poll(async () => minutesIn(await row.locator('td').nth(2).textContent()), { timeout: 5000 }).toEqual([reopened, reopened]);
    const after = await runCli(['queue', '--dept', 'gp', '--json'], { env });
    expect((after.json().departments[0].tickets as { number: string; waitMinutes: number | null }[]).find((t) => t.number === ticket.number)?.waitMinutes).toBe(reopened);
    expect(problems).toEqual([]);
  });
});

/** Opens or closes a room as the staff console does (PUT /api/clinics/:id/rooms/:room). */
async function setRoom(room: string, open: boolean): Promise<unknown> {
  const response = await fetch(`${hub.url}/api/clinics/${CLINIC}/rooms/${room}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${staffToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ open }),
  });
  expect(response.status).toBe(200);
  return response.json();
}
