/**
 * The browser pages in real headless Chromium against a real hub process and
 * a real Redis: the waiting-room display, the patient's ticket page and the
 * staff console.
 */
import { createHmac } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { estimateWaitMinutes, openRoomsOf, type ClinicConfig, type QueueSnapshot } from '@clinic-hub/protocol';
import { REPO_ROOT, TEST_CLINICS_DIR, TEST_SECRET, startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { connectQueue, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { startTcpProxy, type TcpProxy } from '@clinic-hub/test-kit/tcp-proxy';
import { collectPageProblems, launchChromium, recordFrames } from '@clinic-hub/test-kit/browser';
import { startNoWebSocketProxy } from './support/no-websocket-proxy.js';
import { readQr } from './support/read-qr.js';

const CLINIC = 'testclinic';
const clinic = JSON.parse(readFileSync(resolve(TEST_CLINICS_DIR, `${CLINIC}.json`), 'utf8')) as ClinicConfig;
const roomName = (id: string) => {
  const room = clinic.departments.flatMap((d) => d.rooms).find((r) => r.id === id);
  if (!room) throw new Error(`no room ${id} in ${CLINIC}.json`);
  return room.name;
};
const ARTIFACTS = resolve(REPO_ROOT, 'test-artifacts');

let redis: TestRedis;
let hub: HubNodeProcess;
/** The browser reaches the hub through this proxy, so a test can take the network away. */
let proxy: TcpProxy;
let browser: Browser;
let staff: QueueSocket;
let staffToken: string;

beforeAll(async () => {
  redis = await startTestRedis();
  hub = await startHubProcess({ redisUrl: redis.url, nodeId: 'web-test' });
  proxy = await startTcpProxy(hub.port);
  browser = await launchChromium();
  staffToken = await tokenFor('staff');
  staff = await connectQueue(hub.url, staffToken);
});

afterAll(async () => {
  staff?.close();
  await browser?.close();
  await proxy?.close();
  await hub?.stop();
  await redis?.cleanup();
});

let context: BrowserContext;
let problems: string[] = [];
beforeEach(async () => {
  await clearQueue();
  context = await browser.newContext();
  problems = [];
});
afterEach(async () => {
  await context.close();
});

async function openPage(path: string, viewport = { width: 1920, height: 1080 }): Promise<Page> {
  const page = await context.newPage();
  await page.setViewportSize(viewport);
  problems = collectPageProblems(page);
  await page.goto(`${proxy.url}${path}`);
  return page;
}

async function snapshot(): Promise<QueueSnapshot> {
  const res = await fetch(`${hub.url}/api/clinics/${CLINIC}/queue`, { headers: { authorization: `Bearer ${staffToken}` } });
  expect(res.status).toBe(200);
  return (await res.json()) as QueueSnapshot;
}

/** Ends every active ticket, so each test starts from an empty queue (through the hub, like any client). */
async function clearQueue(): Promise<void> {
  for (const ticket of (await snapshot()).tickets) {
    const ack =
      ticket.status === 'in_consultation'
        ? await request(staff, 'queue:done', { ticketId: ticket.id })
        : await request(staff, 'queue:cancel', { ticketId: ticket.id });
    expect(ack.ok).toBe(true);
  }
}

function ok<T extends { ok: boolean }>(ack: T): Extract<T, { ok: true }> {
  if (!ack.ok) throw new Error(`expected ok, got ${JSON.stringify(ack)}`);
  return ack as Extract<T, { ok: true }>;
}

async function waitUntilLive(page: Page): Promise<void> {
  await page.waitForSelector('html[data-connection="live"]', { timeout: 10_000 });
}

/** The little of the page's globals the tests read (the test code is compiled without the DOM library). */
interface InPage {
  document: { querySelector(selector: string): { textContent: string | null } | null };
  __clinicHub: { appliedSeqs: number[] };
}

async function debugHook<T>(page: Page): Promise<T> {
  return (await page.evaluate('JSON.parse(JSON.stringify(window.__clinicHub))')) as T;
}

/** An HS256 token as the hub signs them, with whatever iat and exp a test needs. */
function signHubToken(claims: Record<string, unknown>): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const unsigned = `${part({ alg: 'HS256' })}.${part(claims)}`;
  return `${unsigned}.${createHmac('sha256', TEST_SECRET).update(unsigned).digest('base64url')}`;
}

/** The tokens the page presents in its Socket.IO CONNECT packets (`40/queue,{"token":…}`). */
function hubConnectionsSeen(page: Page): { tokens: string[] } {
  const seen = { tokens: [] as string[] };
  page.on('websocket', (ws) =>
    ws.on('framesent', (frame) => {
      const match = /^40\/queue,(\{.*\})$/.exec(String(frame.payload));
      if (match) seen.tokens.push((JSON.parse(match[1]!) as { token: string }).token);
    }),
  );
  return seen;
}

function expectStrictlyIncreasing(seqs: number[]): void {
  for (let i = 1; i < seqs.length; i++) expect(seqs[i]!, `seqs ${seqs.join(',')}`).toBeGreaterThan(seqs[i - 1]!);
}

describe('display page', () => {
  it('shows a call within 1 s of it being made, and never any patient data', async () => {
    const page = await openPage(`/display#token=${await tokenFor('display')}`);
    const frames = recordFrames(page);
    await page.waitForSelector('html[data-connection="live"][data-synced="true"]', { timeout: 10_000 });

    const patients = [
      { name: '山田 太郎', phone: '090-1234-5678', note: '花粉症の薬を希望' },
      { name: 'Suzuki Hanako', phone: '03-5555-0199' },
      { name: '佐藤 健', phone: '080-2468-1357' },
    ];
    const issued = [];
    for (const patient of patients) issued.push(ok(await request(staff, 'queue:checkin', { dept: 'gp', patient })).event.ticket);
    await page.locator('.dept .next li', { hasText: issued.at(-1)!.number }).waitFor({ timeout: 5000 });

    const started = performance.now();
    const call = ok(await request(staff, 'queue:call-next', { dept: 'gp', room: 'r1' }));
    const { number } = call.event.ticket;
    const room = roomName('r1');
    await page.waitForFunction(
      ([expectedNumber, expectedRoom]) => {
        const latest = (globalThis as unknown as InPage).document.querySelector('#calls .call.latest')?.textContent ?? '';
        return latest.includes(expectedNumber) && latest.includes(expectedRoom);
      },
      [number, room.ja] as const,
      { polling: 'raf', timeout: 5000 },
    );
    const elapsed = performance.now() - started;
    console.log(`display: call-next → ${number} ${room.ja} on screen in ${elapsed.toFixed(0)} ms`);
    expect(elapsed).toBeLessThan(1000);
    expect(await page.locator('#calls .call.latest').innerText()).toContain(room.en);
    expect((await debugHook<{ announcedSeqs: number[] }>(page)).announcedSeqs).toContain(call.event.seq);

    // Nothing about the patients reached the page, in its text, its markup or its socket.
    const text = (await page.evaluate('document.body.innerText')) as string;
    const html = await page.content();
    expect(frames.received.length).toBeGreaterThan(0);
    const received = frames.received.join('\n');
    for (const patient of patients) {
      for (const value of [patient.name, patient.name.split(' ')[0]!, patient.phone, patient.note].filter(Boolean) as string[]) {
        expect(text).not.toContain(value);
        expect(html).not.toContain(value);
        expect(received).not.toContain(value);
      }
    }
    expect(received).not.toContain('"patient"');

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: resolve(ARTIFACTS, 'display.png') });
    expect(problems).toEqual([]);
  });

  it('reconnects by itself and shows calls made while it was offline, each once', async () => {
    const page = await openPage(`/display#token=${await tokenFor('display')}`);
    await page.waitForSelector('html[data-connection="live"][data-synced="true"]', { timeout: 10_000 });
    const tickets = [];
    for (let i = 0; i < 4; i++) tickets.push(ok(await request(staff, 'queue:checkin', { dept: 'gp' })).event.ticket);
    await page.locator('.dept .next li', { hasText: tickets.at(-1)!.number }).waitFor({ timeout: 5000 });
    const before = await debugHook<{ appliedSeqs: number[] }>(page);

    await proxy.cut();
    await page.waitForSelector('html[data-connection="reconnecting"]', { timeout: 10_000 });
    expect(await page.locator('.connection').innerText()).toContain('再接続中');

    const first = ok(await request(staff, 'queue:call-next', { dept: 'gp', room: 'r1' }));
    const second = ok(await request(staff, 'queue:call-next', { dept: 'gp', room: 'r2' }));
    ok(await request(staff, 'queue:start', { ticketId: first.event.ticket.id }));
    // Ends the consultation in r1 and calls the next ticket: two events in one step.
    const third = ok(await request(staff, 'queue:call-next', { dept: 'gp', room: 'r1' }));
    const recall = ok(await request(staff, 'queue:recall', { ticketId: second.event.ticket.id }));
    await proxy.restore();

    await waitUntilLive(page);
    for (const ticket of [second.event.ticket, third.event.ticket]) {
      await page.locator(`#calls .call[data-ticket="${ticket.number}"]`).waitFor({ timeout: 10_000 });
    }
    await page.waitForFunction((seq) => (globalThis as unknown as InPage).__clinicHub.appliedSeqs.includes(seq), recall.event.seq, { timeout: 5000 });

    const hook = await debugHook<{ appliedSeqs: number[]; announcedSeqs: number[] }>(page);
    expect(hook.appliedSeqs.slice(0, before.appliedSeqs.length)).toEqual(before.appliedSeqs);
    expectStrictlyIncreasing(hook.appliedSeqs);
    // Every event from the first one seen to the recall, none skipped and none twice.
    const firstSeq = hook.appliedSeqs[0]!;
    expect(hook.appliedSeqs).toEqual(Array.from({ length: recall.event.seq - firstSeq + 1 }, (_, i) => firstSeq + i));
    // Announced: each ticket still called, once, with its latest call. Not the one that went in while the screen was away.
    expect(hook.announcedSeqs).toEqual([third.event.seq, recall.event.seq]);

    // On screen: the two current calls once each, and the finished one gone.
    expect(await page.locator(`#calls .call[data-ticket="${second.event.ticket.number}"]`).count()).toBe(1);
    expect(await page.locator(`#calls .call[data-ticket="${third.event.ticket.number}"]`).count()).toBe(1);
    expect(await page.locator(`#calls .call[data-ticket="${first.event.ticket.number}"]`).count()).toBe(0);
    // The recall made the second ticket the most recent call.
    expect(await page.locator('#calls .call.latest').getAttribute('data-ticket')).toBe(second.event.ticket.number);
    expect(problems.filter((p) => !p.includes('ERR_CONNECTION'))).toEqual([]);
  });

  it('refreshes its token past half its life and reconnects with the new one', async () => {
    // Issued 40 s ago, valid 20 s more: already past half of its life.
    const now = Math.floor(Date.now() / 1000);
    const oldToken = signHubToken({ role: 'display', clinic: CLINIC, iss: 'clinic-hub', sub: 'display:refresh-test', iat: now - 40, exp: now + 20 });
    const page = await openPage(`/display#token=${oldToken}`);
    await waitUntilLive(page);

    const tokenInAddress = async () => new URLSearchParams(new URL(page.url()).hash.slice(1)).get('token');
    await expect.poll(tokenInAddress, { timeout: 5000 }).not.toBe(oldToken);
    const newToken = (await tokenInAddress())!;
    const claims = JSON.parse(Buffer.from(newToken.split('.')[1]!, 'base64url').toString()) as { role: string; clinic: string; exp: number };
    expect(claims).toMatchObject({ role: 'display', clinic: CLINIC });
    expect(claims.exp).toBeGreaterThan(now + 20);

    // A reconnect must present the new token: the hub then accepts it and the page syncs again.
    const connections = hubConnectionsSeen(page);
    await proxy.cut();
    await page.waitForSelector('html[data-connection="reconnecting"]', { timeout: 10_000 });
    await proxy.restore();
    await waitUntilLive(page);
    expect(connections.tokens.at(-1)).toBe(newToken);
    const checkedIn = ok(await request(staff, 'queue:checkin', { dept: 'peds' })).event.ticket;
    await page.locator('.dept .next li', { hasText: checkedIn.number }).waitFor({ timeout: 5000 });
  });
});

describe('transports', () => {
  it('falls back to long-polling where WebSocket is refused', async () => {
    const noWebSocket = await startNoWebSocketProxy(hub.port);
    try {
      const page = await context.newPage();
      problems = collectPageProblems(page);
      await page.goto(`${noWebSocket.url}/display#token=${await tokenFor('display')}`);
      await page.waitForSelector('html[data-connection="live"][data-synced="true"]', { timeout: 15_000 });
      const ticket = ok(await request(staff, 'queue:checkin', { dept: 'gp' })).event.ticket;
      ok(await request(staff, 'queue:call-next', { dept: 'gp', room: 'r2' }));
      await page.locator(`#calls .call.latest[data-ticket="${ticket.number}"]`).waitFor({ timeout: 5000 });
      expect(await page.locator('#calls .call.latest').innerText()).toContain(roomName('r2').ja);
      expect(problems.filter((p) => !/WebSocket/i.test(p))).toEqual([]);
    } finally {
      await noWebSocket.close();
    }
  });
});

describe('patient ticket page', () => {
  it('shows its position, follows the queue live and then the room it is called to', async () => {
    const ahead = [];
    for (let i = 0; i < 2; i++) ahead.push(ok(await request(staff, 'queue:checkin', { dept: 'gp' })).event.ticket);
    const mine = ok(await request(staff, 'queue:checkin', { dept: 'gp', patient: { name: 'Tanaka Yuki' } }));
    const url = new URL(mine.patientUrl);
    expect(url.pathname).toBe('/ticket');
    expect(url.search).toBe('');

    const page = await openPage(`${url.pathname}${url.hash}`, { width: 390, height: 844 });
    await waitUntilLive(page);
    const number = page.locator('#number');
    const status = page.locator('#status');
    await expect.poll(() => number.innerText(), { timeout: 5000 }).toBe(mine.event.ticket.number);

    const stats = (await snapshot()).deptStats.gp ?? { avgConsultMinutes: 10, samples: 0 };
    await expect.poll(() => status.innerText(), { timeout: 5000 }).toContain('あと 2 人');
    expect(await status.innerText()).toContain('2 ahead');
    // Both rooms of gp are open (the clinic's settings): two count, whoever is called where.
    expect(await status.innerText()).toContain(`約 ${estimateWaitMinutes(2, 2, stats)} 分`);

    ok(await request(staff, 'queue:call-next', { dept: 'gp', room: 'r1' }));
    await expect.poll(() => status.innerText(), { timeout: 3000 }).toContain('あと 1 人');
    expect(await status.innerText()).toContain(`約 ${estimateWaitMinutes(1, 2, stats)} 分`);

    ok(await request(staff, 'queue:call-next', { dept: 'gp', room: 'r2' }));
    await expect.poll(() => status.innerText(), { timeout: 3000 }).toContain('次にお呼びします');
    expect((await debugHook<{ alerts: number }>(page)).alerts).toBe(0);

    ok(await request(staff, 'queue:start', { ticketId: ahead[0]!.id }));
    const called = ok(await request(staff, 'queue:call-next', { dept: 'gp', room: 'r1' }));
    expect(called.event.ticket.id).toBe(mine.event.ticket.id);
    const room = roomName('r1');
    await expect.poll(() => status.getAttribute('data-status'), { timeout: 3000 }).toBe('called');
    expect(await status.innerText()).toContain(`${room.ja}へお越しください`);
    expect(await status.innerText()).toContain(`Please go to ${room.en}`);
    expect((await debugHook<{ alerts: number }>(page)).alerts).toBe(1);

    // Finished tickets leave the queue; the page still says how this one ended.
    ok(await request(staff, 'queue:done', { ticketId: mine.event.ticket.id }));
    await expect.poll(() => status.getAttribute('data-status'), { timeout: 3000 }).toBe('done');
    expect(await status.innerText()).toContain('診察は終了しました');
    expect(await number.innerText()).toBe(mine.event.ticket.number);
    expect(await page.evaluate('document.body.innerText')).not.toContain('Tanaka');
    expect(problems).toEqual([]);
  });
});

describe('staff page', () => {
  it('checks in and calls next through its buttons, and shows an error ack with its code', async () => {
    const page = await openPage(`/staff#token=${staffToken}`, { width: 1440, height: 1000 });
    const frames = recordFrames(page);
    await waitUntilLive(page);
    await page.locator('#checkin-dept option[value="gp"]').waitFor({ state: 'attached', timeout: 5000 });

    await page.selectOption('#checkin-dept', 'gp');
    await page.fill('#checkin-name', 'Takahashi Ken');
    await page.click('#checkin-submit');
    const issuedNumber = (await page.locator('#issued-number').innerText({ timeout: 5000 })).trim();
    const issued = (await snapshot()).tickets.find((t) => t.number === issuedNumber);
    expect(issued, `ticket ${issuedNumber} in the hub's queue`).toMatchObject({ dept: 'gp', status: 'waiting', priority: 'normal' });
    const link = new URL((await page.locator('#patient-link').getAttribute('href'))!);
    expect(link.pathname).toBe('/ticket');
    const patientClaims = JSON.parse(Buffer.from(new URLSearchParams(link.hash.slice(1)).get('token')!.split('.')[1]!, 'base64url').toString());
    expect(patientClaims).toMatchObject({ role: 'patient', ticket: issued!.id });
    const patient = ok(await request(staff, 'queue:patient', { ticketId: issued!.id }));
    expect(patient.patient?.name).toBe('Takahashi Ken');
    await page.locator('.dept[data-dept="gp"] table.waiting', { hasText: issuedNumber }).waitFor({ timeout: 5000 });

    await page.selectOption('#call-dept', 'gp');
    await page.selectOption('#call-room', 'r1');
    await page.click('#call-submit');
    const calledRow = page.locator('.dept[data-dept="gp"] table.calls tr', { hasText: issuedNumber });
    await calledRow.waitFor({ timeout: 5000 });
    expect(await calledRow.innerText()).toContain(roomName('r1').ja);
    expect((await snapshot()).tickets.find((t) => t.id === issued!.id)).toMatchObject({ status: 'called', room: 'r1' });

    // The name is shown only when asked for.
    expect(await page.evaluate('document.body.innerText')).not.toContain('Takahashi Ken');
    await calledRow.locator('button[data-action="show-name"]').click();
    await expect.poll(() => calledRow.innerText(), { timeout: 5000 }).toContain('Takahashi Ken');

    await calledRow.locator('button[data-action="start"]').click();
    await expect.poll(async () => (await snapshot()).tickets.find((t) => t.id === issued!.id)?.status, { timeout: 5000 }).toBe('in_consultation');
    await calledRow.locator('button[data-action="done"]').click();
    await expect.poll(async () => (await snapshot()).tickets.some((t) => t.id === issued!.id), { timeout: 5000 }).toBe(false);
    await calledRow.waitFor({ state: 'detached', timeout: 5000 });

    // Nobody waits in pediatrics: the hub's QUEUE_EMPTY ack is shown with its code.
    expect((await snapshot()).tickets.filter((t) => t.dept === 'peds')).toEqual([]);
    await page.selectOption('#call-dept', 'peds');
    await page.selectOption('#call-room', 'r3');
    await page.click('#call-submit');
    const error = page.locator('#messages .message.error').first();
    await error.waitFor({ timeout: 5000 });
    expect(await error.getAttribute('data-code')).toBe('QUEUE_EMPTY');
    expect(await error.innerText()).toContain('QUEUE_EMPTY');

    // Every action went out with its own requestId.
    const requestIds = frames.sent
      .filter((f) => /"queue:(checkin|call-next|start|done)"/.test(f))
      .map((f) => /"requestId":"([^"]+)"/.exec(f)?.[1]);
    expect(requestIds).toHaveLength(5);
    for (const id of requestIds) expect(id).toMatch(/^[A-Za-z0-9_-]{8,64}$/);
    expect(new Set(requestIds).size).toBe(requestIds.length);
    expect(problems).toEqual([]);
  });
});

describe('staff page, handing the ticket to the patient', () => {
  it('shows a QR code of the patient page after check-in and on every waiting ticket, and prints a slip through the print dialog', async () => {
    const page = await context.newPage();
    await page.setViewportSize({ width: 1440, height: 1000 });
    problems = collectPageProblems(page);
    // The print dialog is the browser's: only its entry point is watched.
    await page.addInitScript('{ window.__prints = 0; const print = window.print.bind(window); window.print = () => { window.__prints += 1; return print(); }; }');
    await page.goto(`${proxy.url}/staff#token=${staffToken}`);
    await waitUntilLive(page);
    await page.locator('#checkin-dept option[value="gp"]').waitFor({ state: 'attached', timeout: 5000 });
    const before = ok(await request(staff, 'queue:checkin', { dept: 'gp' })).event.ticket;

    await page.selectOption('#checkin-dept', 'gp');
    await page.click('#checkin-submit');
    const number = (await page.locator('#issued-number').innerText({ timeout: 5000 })).trim();
    const link = (await page.locator('#patient-link').getAttribute('href'))!;
    await page.locator('#issued-qr svg.qr').waitFor({ timeout: 5000 });
    expect(await readQr(page, '#issued-qr')).toBe(link);

    // The slip: number, department, estimate and the same QR code, alone on the printed page.
    await page.click('#issued-print');
    await expect.poll(() => page.evaluate('window.__prints'), { timeout: 5000 }).toBe(1);
    await page.emulateMedia({ media: 'print' });
    const slip = page.locator('#print-slip .slip');
    expect(await slip.isVisible()).toBe(true);
    const slipText = await slip.innerText();
    expect(slipText).toContain(number);
    expect(slipText).toContain('内科');
    expect(slipText).toContain('General');
    const state = await snapshot();
    const issued = state.tickets.find((t) => t.number === number)!;
    // The estimate counts the rooms open in the clinic's settings, as every screen does.
    const rooms = openRoomsOf('gp', state.clinic).length;
    const stats = state.deptStats.gp ?? { avgConsultMinutes: 10, samples: 0 };
    expect(slipText).toContain(`約 ${estimateWaitMinutes(1, rooms, stats)} 分`);
    expect(await readQr(page, '#print-slip .slip .qr')).toBe(link);
    for (const hidden of ['header.bar', '#departments', '.controls']) expect(await page.locator(hidden).isVisible()).toBe(false);
    await page.emulateMedia({ media: 'screen' });
    expect(await slip.isVisible()).toBe(false);

    // A ticket already waiting (checked in elsewhere): its QR code and slip from its row.
    await page.locator(`.dept[data-dept="gp"] table.waiting button[data-action="handout"][data-ticket="${before.id}"]`).click();
    await page.locator('#handout-dialog[open] #ticket-qr svg.qr').waitFor({ timeout: 5000 });
    const url = new URL((await readQr(page, '#ticket-qr'))!);
    expect(url.pathname).toBe('/ticket');
    const claims = JSON.parse(Buffer.from(new URLSearchParams(url.hash.slice(1)).get('token')!.split('.')[1]!, 'base64url').toString());
    expect(claims).toMatchObject({ role: 'patient', ticket: before.id });
    await page.click('#ticket-print');
    await expect.poll(() => page.evaluate('window.__prints'), { timeout: 5000 }).toBe(2);
    expect(await page.locator('#print-slip .slip').innerText()).toContain(before.number);
    await page.click('#handout-close');
    expect(issued.status).toBe('waiting');
    expect(problems).toEqual([]);
  });
});

describe('landing page and missing token', () => {
  it('serves the landing page and explains a missing token, under the hub CSP', async () => {
    const res = await fetch(`${hub.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toContain("default-src 'self'");
    const page = await openPage('/', { width: 1280, height: 800 });
    for (const path of ['/display', '/staff', '/ticket']) expect(await page.locator(`a[href="${path}"]`).count()).toBe(1);
    expect(await page.locator('body').innerText()).toContain('#token=');

    await page.goto(`${proxy.url}/display`);
    await expect.poll(() => page.locator('.fatal').innerText(), { timeout: 5000 }).toContain('トークン');
    await page.goto(`${proxy.url}/display#token=${staffToken}`);
    await page.reload();
    await expect.poll(() => page.locator('.fatal').innerText(), { timeout: 5000 }).toContain('This token cannot open this page');
    expect(problems).toEqual([]);
  });
});
