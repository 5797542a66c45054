/**
 * The consultation page's ways out, in real headless Chromium (fake camera
 * and microphone) against a real hub, a real media-server and Redis, with
 * consultations admitted through the hub as the staff console does:
 *
 * - a normal end shows "The consultation has ended" / 「診察は終了しました」,
 *   not a red "Cannot connect: ended";
 * - consent to recording is given in a dialog that says what is recorded,
 *   who can see it, how long it is kept (the retention the hub puts in the
 *   room token) and how to withdraw; declining changes nothing;
 * - the clinician's AI panel says when the clinic has live transcripts off,
 *   or when no AI worker is running (a real worker heartbeat clears it).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WorkerHeartbeat } from '@clinic-hub/ai-workers';
import { CONSULT_HUB_ENV, TEST_MEDIA_SECRET, connectConsult, consultRequest, type ConsultSocket } from '@clinic-hub/test-kit/consult-client';
import { TEST_CLINICS_DIR, startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { connectQueue, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { joinFromPage, launchMediaChromium } from '@clinic-hub/test-kit/consult-browser';
import { startMediaServerProcess, type MediaServerProcess } from '@clinic-hub/test-kit/media-node';
import { collectPageProblems } from '@clinic-hub/test-kit/browser';

const RETENTION_DAYS = 14;
let redisServer: TestRedis;
let redis: Redis;
let hub: HubNodeProcess;
let media: MediaServerProcess;
let browser: Browser;
let clinicsDir: string;
let recordingsDir: string;
const sockets: { close(): void }[] = [];
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  // The test clinic, and the same clinic with live transcripts off.
  clinicsDir = mkdtempSync(join(tmpdir(), 'consult-dead-ends-clinics-'));
  const clinic = JSON.parse(readFileSync(resolve(TEST_CLINICS_DIR, 'testclinic.json'), 'utf8')) as Record<string, unknown>;
  // How long the clinic keeps recordings: what the consent dialog must say.
  clinic.retention = { recordingDays: RETENTION_DAYS };
  writeFileSync(join(clinicsDir, 'testclinic.json'), JSON.stringify(clinic));
  writeFileSync(join(clinicsDir, 'noaiclinic.json'), JSON.stringify({ ...clinic, id: 'noaiclinic', ai: { enabled: false, language: 'ja' } }));
  recordingsDir = mkdtempSync(join(tmpdir(), 'consult-dead-ends-recordings-'));
  redisServer = await startTestRedis();
  redis = new Redis(redisServer.url);
  [hub, media, browser] = await Promise.all([
    startHubProcess({
      redisUrl: redisServer.url,
      nodeId: 'dead-ends-hub',
      env: { ...CONSULT_HUB_ENV, CLINICS_DIR: clinicsDir },
    }),
    startMediaServerProcess({
      REDIS_URL: redisServer.url,
      MEDIA_NODE_ID: 'dead-ends-media',
      MEDIA_TOKEN_SECRET: TEST_MEDIA_SECRET,
      MEDIA_PING_INTERVAL_MS: '1000',
      LOG_LEVEL: 'warn',
      RECORDING_KEY: Buffer.alloc(32, 5).toString('base64'),
      RECORDINGS_DIR: recordingsDir,
    }),
    launchMediaChromium(),
  ]);
});

afterEach(async () => {
  for (const context of contexts.splice(0)) await context.close().catch(() => undefined);
});

afterAll(async () => {
  for (const socket of sockets) socket.close();
  await browser?.close();
  await media?.stop();
  await hub?.stop();
  redis?.disconnect();
  await redisServer?.cleanup();
  for (const dir of [clinicsDir, recordingsDir]) if (dir) rmSync(dir, { recursive: true, force: true });
});

function ok<T extends { ok: boolean }>(ack: T): Extract<T, { ok: true }> {
  if (!ack.ok) throw new Error(`expected ok, got ${JSON.stringify(ack)}`);
  return ack as Extract<T, { ok: true }>;
}

interface Admitted {
  consult: string;
  doctor: ConsultSocket;
  /** The doctor's page, with their hub token (AI panel), as the staff console opens it. */
  doctorPath: string;
  patientPath: string;
}

/** A patient of the online department checked in, admitted by a doctor, and their own pass fetched as their ticket page does. */
async function admit(clinic: string): Promise<Admitted> {
  const staff: QueueSocket = await connectQueue(hub.url, await tokenFor('staff', clinic));
  const doctorToken = await tokenFor('doctor', clinic, { sub: `doctor:${clinic}` });
  const doctor = await connectConsult(hub.url, doctorToken);
  sockets.push(staff, doctor);
  const checkin = ok(await request(staff, 'queue:checkin', { dept: 'online' }));
  const admitted = ok(await consultRequest(doctor, 'consult:admit', { dept: 'online', room: 'v1', ticketId: checkin.event.ticket.id }));
  const patient = await connectConsult(hub.url, checkin.patientToken);
  sockets.push(patient);
  const joined = ok(await consultRequest(patient, 'consult:join', {}));
  const page = (pass: { pageUrl: string }) => new URL(pass.pageUrl).pathname + new URL(pass.pageUrl).hash;
  return {
    consult: admitted.consultation.id,
    doctor,
    doctorPath: `${page(admitted.pass)}&${new URLSearchParams({ hub: doctorToken, ticket: checkin.event.ticket.id }).toString()}`,
    patientPath: page(joined.pass),
  };
}

async function newContext(): Promise<BrowserContext> {
  const context = await browser.newContext();
  contexts.push(context);
  return context;
}

describe('the consultation page, no dead ends', () => {
  it('asks for recording consent in a dialog that says what, who, how long and how to withdraw; a normal end says the consultation has ended', { timeout: 120_000 }, async () => {
    const { consult, doctor, doctorPath, patientPath } = await admit('testclinic');
    const doctorPage = await joinFromPage(await newContext(), `${hub.url}${doctorPath}`);
    const patientPage = await joinFromPage(await newContext(), `${hub.url}${patientPath}`);
    const problems = collectPageProblems(patientPage);
    const state = (page: Page, value: string) => page.waitForSelector(`html[data-recording="${value}"]`, { timeout: 15_000 });

    await doctorPage.click('#recording-toggle');
    await state(patientPage, 'waiting-consent');

    // The patient reads before agreeing; "Not now" leaves them not consenting.
    await patientPage.click('#consent-toggle');
    const dialog = patientPage.locator('#consent-dialog');
    await dialog.waitFor({ state: 'visible', timeout: 5000 });
    const text = await dialog.innerText();
    for (const expected of [
      '録画するもの', 'What is recorded', '映像と音声',
      '見られる人', 'Who can see it', '医師と管理者',
      '保存期間', 'How long it is kept', `${RETENTION_DAYS} 日間`, `${RETENTION_DAYS} days after the recording stops`,
      '取り消すには', 'How to withdraw', 'Withdraw consent',
    ]) expect(text).toContain(expected);
    expect(await patientPage.getAttribute('#consent-toggle', 'aria-pressed')).toBe('false');
    await patientPage.click('#consent-decline');
    await dialog.waitFor({ state: 'detached', timeout: 5000 });
    await patientPage.waitForTimeout(500);
    expect(await patientPage.getAttribute('#consent-toggle', 'aria-pressed')).toBe('false');
    expect(await patientPage.getAttribute('html', 'data-recording')).toBe('waiting-consent');

    for (const page of [patientPage, doctorPage]) {
      await page.click('#consent-toggle');
      await page.click('#consent-dialog #consent-agree');
    }
    await Promise.all([state(doctorPage, 'recording'), state(patientPage, 'recording')]);
    expect(await patientPage.getAttribute('#consent-toggle', 'aria-pressed')).toBe('true');

    // The doctor ends the consultation from the hub: the patient's page says so, calmly.
    ok(await consultRequest(doctor, 'consult:end', { consult }));
    await patientPage.waitForSelector('html[data-stage="after"]', { timeout: 15_000 });
    expect(await patientPage.getAttribute('html', 'data-closed')).toBe('ended');
    const after = await patientPage.locator('#after').innerText();
    expect(after).toContain('診察は終了しました');
    expect(after).toContain('The consultation has ended');
    expect(after).not.toMatch(/Cannot connect|接続できません/);
    expect(await patientPage.locator('.connection[data-state="rejected"]').count()).toBe(0);
    expect(await patientPage.locator('body').innerText()).not.toContain('Cannot connect');
    expect(await patientPage.locator('#rejoin').count()).toBe(0);
    expect(problems).toEqual([]);
  });

  it('the AI panel says when live transcripts are off, and when no AI worker is running until one is', { timeout: 90_000 }, async () => {
    const off = await admit('noaiclinic');
    const offPage = await joinFromPage(await newContext(), `${hub.url}${off.doctorPath}`);
    const availability = offPage.locator('#ai-availability');
    await availability.waitFor({ state: 'visible', timeout: 15_000 });
    expect(await availability.innerText()).toContain('ライブ文字起こしがオフ');
    expect(await availability.innerText()).toContain('Live transcripts are off');

    const on = await admit('testclinic');
    const page = await joinFromPage(await newContext(), `${hub.url}${on.doctorPath}`);
    await page.locator('#ai-availability').waitFor({ state: 'visible', timeout: 15_000 });
    expect(await page.locator('#ai-availability').innerText()).toContain('No AI worker is running');

    // A worker comes up (its real heartbeat): the panel no longer says so.
    const heartbeat = new WorkerHeartbeat(redis, 'dead-ends-worker', () => ({ concurrency: 1, sessions: 0, recordings: 0, stt: 'test', emotion: 'test', lagSeconds: 0, stopping: false }));
    await heartbeat.start();
    try {
      await page.close();
      const again = await joinFromPage(await newContext(), `${hub.url}${on.doctorPath}`);
      await again.locator('#ai-panel:not([hidden])').waitFor({ timeout: 15_000 });
      await expect.poll(() => again.locator('#ai-availability').isHidden(), { timeout: 10_000 }).toBe(true);
      await again.waitForTimeout(1000);
      expect(await again.locator('#ai-availability').isHidden()).toBe(true);
    } finally {
      await heartbeat.stop();
    }
  });
});
