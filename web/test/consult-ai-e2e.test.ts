/**
 * AI in a consultation, end to end with every part real: Redis, a hub
 * process, a media-server process (werift SFU and its audio tap), an AI
 * worker process (real Silero VAD; the suite's fixture CTC and emotion
 * models) and two headless Chromiums whose microphones are espeak-ng speech
 * (Chromium's WAV-file microphone).
 *
 * Admission as the people would do it: reception checks the patient in to
 * the online department, the patient waits on their ticket page, the doctor
 * admits them from the staff console (which opens the consultation page with
 * the doctor's hub token), the patient presses "join" on the ticket page.
 *
 * The doctor's page must show the patient's (and the doctor's) transcript
 * lines and an emotion trend per speaker, attributed to the right participant
 * and role, with the text the fixture engine gives for the audio the tap
 * wrote (worked out again here, offline); the history comes back on reload
 * and is audited. The patient's pages must receive none of it: no panel, no
 * AI event on any of their sockets, and a patient token asking the hub gets
 * AUTH_FORBIDDEN.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MEDIA_NODES_KEY, aiWorkerKey } from '@clinic-hub/protocol';
import { CtcModel } from '@clinic-hub/ai-workers';
import { segmenterOptions } from '@clinic-hub/ai-workers';
import { loadAiConfig } from '@clinic-hub/ai-workers';
import { SileroVad } from '@clinic-hub/ai-workers/vad';
import { fixtureWorkerEnv, writeFixtureModels } from '@clinic-hub/test-kit/worker-fixtures';
import { readAudit } from '@clinic-hub/hub';
import { CONSULT_HUB_ENV, TEST_MEDIA_SECRET, connectConsult, consultRequest, recordConsult, testRoomTokens } from '@clinic-hub/test-kit/consult-client';
import { startHubProcess, testTokens, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { connectQueue, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { sleep, waitFor } from '@clinic-hub/test-kit/wait';
import { startMediaServerProcess, type MediaServerProcess } from '@clinic-hub/test-kit/media-node';
import { collectPageProblems } from '@clinic-hub/test-kit/browser';
import { expectedFinalsFromTap, launchSpeakingChromium, speechWav, startAiWorkerProcess, watchAiPanel, type AiWorkerProcess, type SeenOnPage } from './support/consult-ai.js';

const CLINIC = 'testclinic';
const WORKER_ID = 'ai-e2e-worker';
const DOCTOR_SUB = 'doctor:ai-e2e';
/** Looped by Chromium: a second of silence, the sentence, then silence long enough to end the utterance. */
const PATIENT_SPEECH = { text: 'きのうから ねつが あって、のどが いたいです', voice: 'ja', silenceBefore: 1, silenceAfter: 2.5 };
const DOCTOR_SPEECH = { text: 'きょうは どうされましたか', voice: 'ja', silenceBefore: 2.5, silenceAfter: 3 };

const tmp = mkdtempSync(join(tmpdir(), 'consult-ai-e2e-'));
const modelsDir = join(tmp, 'models');
let redisServer: TestRedis;
let redis: Redis;
let hub: HubNodeProcess;
let media: MediaServerProcess;
let worker: AiWorkerProcess;
let patientBrowser: Browser;
let doctorBrowser: Browser;
let vad: SileroVad;
let ctc: CtcModel;
const contexts: BrowserContext[] = [];
const sockets: { close(): void }[] = [];

beforeAll(async () => {
  const patientWav = join(tmp, 'patient.wav');
  const doctorWav = join(tmp, 'doctor.wav');
  speechWav(patientWav, PATIENT_SPEECH.text, PATIENT_SPEECH);
  speechWav(doctorWav, DOCTOR_SPEECH.text, DOCTOR_SPEECH);
  writeFixtureModels(modelsDir);
  redisServer = await startTestRedis();
  redis = new Redis(redisServer.url);
  // The media-server first, on its own: its start-up deadline is short, and the hub bundling its pages takes a core for seconds.
  media = await startMediaServerProcess({ REDIS_URL: redisServer.url, MEDIA_NODE_ID: 'ai-e2e-media', MEDIA_TOKEN_SECRET: TEST_MEDIA_SECRET, LOG_LEVEL: 'warn' });
  worker = startAiWorkerProcess(redisServer.url, modelsDir, WORKER_ID);
  [hub, patientBrowser, doctorBrowser] = await Promise.all([
    startHubProcess({ redisUrl: redisServer.url, nodeId: 'ai-e2e-hub', env: CONSULT_HUB_ENV }),
    launchSpeakingChromium(patientWav),
    launchSpeakingChromium(doctorWav),
  ]);
  [vad, ctc] = await Promise.all([SileroVad.load(), CtcModel.load(modelsDir, 'ctc-fixture-ja', { threads: 1, verify: false })]);
  await waitFor('the AI worker to be up', async () => (await redis.exists(aiWorkerKey(WORKER_ID))) === 1 || worker.process.exitCode !== null, 30_000);
  if (worker.process.exitCode !== null) throw new Error(`AI worker exited: ${worker.logs()}`);
  await waitFor('the media-server to announce itself', async () => (await redis.sismember(MEDIA_NODES_KEY, 'ai-e2e-media')) === 1, 10_000);
}, 90_000);

afterAll(async () => {
  for (const socket of sockets) socket.close();
  for (const context of contexts) await context.close().catch(() => undefined);
  await Promise.all([patientBrowser?.close(), doctorBrowser?.close()]);
  await Promise.all([worker?.stop(), media?.stop(), hub?.stop()]);
  await Promise.all([vad?.release(), ctc?.release()]);
  redis?.disconnect();
  await redisServer?.cleanup();
  rmSync(tmp, { recursive: true, force: true });
});

function ok<T extends { ok: boolean }>(ack: T): Extract<T, { ok: true }> {
  if (!ack.ok) throw new Error(`expected ok, got ${JSON.stringify(ack)}`);
  return ack as Extract<T, { ok: true }>;
}

/** Socket.IO frames every page of a context receives and sends, with the page's path. */
function recordSocketFrames(context: BrowserContext): { path: string; direction: 'in' | 'out'; text: string }[] {
  const frames: { path: string; direction: 'in' | 'out'; text: string }[] = [];
  context.on('page', (page) => {
    page.on('websocket', (ws) => {
      const path = new URL(page.url()).pathname;
      ws.on('framereceived', (frame) => frames.push({ path, direction: 'in', text: String(frame.payload) }));
      ws.on('framesent', (frame) => frames.push({ path, direction: 'out', text: String(frame.payload) }));
    });
  });
  return frames;
}

async function openedTab(context: BrowserContext, click: () => Promise<void>): Promise<Page> {
  const [tab] = await Promise.all([context.waitForEvent('page', { timeout: 15_000 }), click()]);
  await tab.waitForURL(/\/consult#/, { timeout: 15_000 });
  return tab;
}

async function joinRoom(page: Page): Promise<void> {
  await page.waitForSelector('html[data-stage="precheck"]', { timeout: 30_000 });
  await page.click('#join-button');
  await page.waitForSelector('html[data-connection="live"]', { timeout: 30_000 });
}

/** The finals the page shows: who, when and the text (read here, never printed). */
async function finalsOnPage(page: Page): Promise<{ participant: string; role: string; utterance: string; startMs: number; speaker: string; text: string; time: string }[]> {
  // A string: the tests are type-checked without the DOM library.
  return (await page.evaluate(`[...document.querySelectorAll('.ai-line[data-kind="final"]')].map((line) => ({
    participant: line.dataset.participant ?? '',
    role: line.dataset.role ?? '',
    utterance: line.dataset.utterance ?? '',
    startMs: Number(line.dataset.startMs),
    speaker: line.querySelector('.ai-speaker')?.textContent ?? '',
    text: line.querySelector('.ai-text')?.textContent ?? '',
    time: line.querySelector('.ai-line-head time')?.textContent ?? '',
  }))`)) as { participant: string; role: string; utterance: string; startMs: number; speaker: string; text: string; time: string }[];
}

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
};

describe('AI results in a live consultation', () => {
  it('a patient speaks into the browser: transcripts and emotion trends reach the doctor\'s page only', { timeout: 120_000 }, async () => {
    const reception: QueueSocket = await connectQueue(hub.url, await tokenFor('staff', CLINIC, { sub: 'staff:reception' }));
    sockets.push(reception);
    const checkin = ok(await request(reception, 'queue:checkin', { dept: 'online' }));
    const ticket = checkin.event.ticket;
    const patientHubToken = new URLSearchParams(new URL(checkin.patientUrl).hash.slice(1)).get('token')!;
    const patientSub = `patient:${ticket.id}`;

    // The doctor's device is in New York; the clinic (and every time the panel shows) in Tokyo.
    const doctorContext = await doctorBrowser.newContext({ viewport: { width: 1280, height: 800 }, timezoneId: 'America/New_York' });
    const patientContext = await patientBrowser.newContext({ viewport: { width: 390, height: 844 } });
    contexts.push(doctorContext, patientContext);
    type Phase = 'live' | 'reloaded';
    let phase = 'live' as Phase;
    const seen: (SeenOnPage & { page: string; who: 'doctor' | 'patient'; phase: Phase })[] = [];
    await watchAiPanel(doctorContext, (s) => seen.push({ ...s, who: 'doctor', phase }));
    await watchAiPanel(patientContext, (s) => seen.push({ ...s, who: 'patient', phase }));
    const doctorFrames = recordSocketFrames(doctorContext);
    const patientFrames = recordSocketFrames(patientContext);

    // The patient waits at home on their ticket page; the doctor admits them from the staff console.
    const ticketPage = await patientContext.newPage();
    await ticketPage.goto(`${hub.url}/ticket${new URL(checkin.patientUrl).hash}`);
    await ticketPage.waitForSelector('html[data-connection="live"]', { timeout: 15_000 });
    const staffPage = await doctorContext.newPage();
    await staffPage.goto(`${hub.url}/staff#token=${await tokenFor('doctor', CLINIC, { sub: DOCTOR_SUB })}`);
    await staffPage.locator('#call-dept option[value="online"]').waitFor({ state: 'attached', timeout: 15_000 });
    await staffPage.selectOption('#call-dept', 'online');
    await staffPage.selectOption('#call-room', 'v1');
    const doctorPage = await openedTab(doctorContext, () => staffPage.click('#call-submit'));
    const doctorProblems = collectPageProblems(doctorPage);
    const doctorFragment = new URLSearchParams(new URL(doctorPage.url()).hash.slice(1));
    const consult = testRoomTokens.verify(doctorFragment.get('token')).consult;
    expect(doctorFragment.get('hub'), 'the staff console hands the doctor\'s hub token to the page').toBeTruthy();

    await ticketPage.locator('#join-consult').waitFor({ timeout: 10_000 });
    const patientPage = await openedTab(patientContext, () => ticketPage.locator('#join-consult').click());
    const patientProblems = collectPageProblems(patientPage);
    // The patient's page carries only the patient's own hub token (for their chat with the clinic), never a clinician's.
    const patientHub = new URLSearchParams(new URL(patientPage.url()).hash.slice(1)).get('hub');
    expect(patientHub === null || testTokens.verifySync(patientHub).role === 'patient', 'a patient\'s page carries no clinician token').toBe(true);
    expect(testRoomTokens.verify(new URLSearchParams(new URL(patientPage.url()).hash.slice(1)).get('token'))).toMatchObject({ consult, part: 'patient', sub: patientSub });

    await Promise.all([joinRoom(doctorPage), joinRoom(patientPage)]);
    const joinedAt = Date.now();
    await doctorPage.locator('#ai-panel').waitFor({ state: 'visible', timeout: 10_000 });

    // At the hub: a patient's own token cannot follow the AI results or read them.
    const patientSocket = await connectConsult(hub.url, patientHubToken);
    sockets.push(patientSocket);
    const patientSocketGot = recordConsult(patientSocket);
    for (const event of ['consult:subscribe', 'consult:ai-history'] as const) {
      expect(await consultRequest(patientSocket, event, { consult }), event).toMatchObject({ ok: false, error: { code: 'AUTH_FORBIDDEN' } });
    }

    // Both speak (their WAVs loop): wait for finals and emotion of both on the doctor's page.
    const shown = (who: string, kind: SeenOnPage['kind']) => seen.filter((s) => s.who === 'doctor' && s.phase === 'live' && s.participant === who && s.kind === kind);
    // Where the video is once both are in and the first line is shown: arriving lines must not move it.
    await doctorPage.waitForSelector('#grid[data-count="2"]', { timeout: 10_000 });
    await waitFor('a first transcript line', () => seen.some((s) => s.who === 'doctor' && s.kind !== 'emotion'), 30_000);
    const gridBox = async () => JSON.stringify(await doctorPage.locator('#grid').boundingBox());
    const gridWithFirstLine = await gridBox();
    await waitFor(
      'the patient\'s final transcript and both speakers\' emotion trends on the doctor\'s page',
      () => shown(patientSub, 'final').length >= 2 && shown(patientSub, 'emotion').length >= 2 && shown(DOCTOR_SUB, 'emotion').length >= 1,
      60_000,
    ).catch((error: Error) => {
      throw new Error(`${error.message}; seen: ${JSON.stringify(seen.map(({ kind, participant, who }) => ({ kind, participant, who })))}; worker: ${worker.logs().slice(-2000)}`);
    });
    expect(await gridBox(), 'the video grid stays put while lines and trends arrive').toBe(gridWithFirstLine);
    const firstResultsAfterJoinMs = Math.min(...seen.filter((s) => s.who === 'doctor').map((s) => s.at)) - joinedAt;

    // Attribution: every line and trend is the patient's or the doctor's, with their role, labelled in both languages.
    const roleOf: Record<string, string> = { [patientSub]: 'patient', [DOCTOR_SUB]: 'doctor' };
    for (const s of seen) expect(s.role, `${s.kind} of ${s.participant}`).toBe(roleOf[s.participant]);
    const finals = await finalsOnPage(doctorPage);
    const patientFinals = finals.filter((f) => f.participant === patientSub);
    expect(patientFinals.length).toBeGreaterThanOrEqual(2);
    for (const f of patientFinals) {
      expect(f.role).toBe('patient');
      expect(f.speaker).toContain('患者');
      expect(f.speaker).toContain('Patient');
      expect(f.text.length).toBeGreaterThan(0);
      expect(f.time).toBe(new Intl.DateTimeFormat('ja-JP', { timeZone: 'Asia/Tokyo', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' }).format(f.startMs));
    }
    for (const f of finals.filter((f) => f.participant === DOCTOR_SUB)) expect(f.speaker).toContain('医師');
    const trend = doctorPage.locator(`.ai-speaker-trend[data-participant="${patientSub}"]`);
    expect(await trend.getAttribute('data-role')).toBe('patient');
    expect(Number(await trend.getAttribute('data-utterances'))).toBeGreaterThanOrEqual(2);
    const stress = Number(await trend.getAttribute('data-stress'));
    expect(stress).toBeGreaterThanOrEqual(0);
    expect(stress).toBeLessThanOrEqual(1);
    expect((await trend.locator('svg.ai-sparkline polyline').getAttribute('points'))!.split(' ').length).toBeGreaterThanOrEqual(2);
    expect(await trend.locator('svg.ai-sparkline').getAttribute('aria-label')).toContain('Stress index');
    expect(await trend.locator('.ai-top-label').count()).toBe(1);
    expect(await doctorPage.locator(`.ai-speaker-trend[data-participant="${DOCTOR_SUB}"]`).getAttribute('data-role')).toBe('doctor');

    // The text is what the fixture engine makes of the audio the tap wrote, utterance by utterance, and none is missing.
    const config = loadAiConfig(fixtureWorkerEnv(redisServer.url, modelsDir));
    const expected = await expectedFinalsFromTap(redis, CLINIC, consult, vad, ctc, segmenterOptions(config));
    for (const participant of [patientSub, DOCTOR_SUB]) {
      const got = finals.filter((f) => f.participant === participant);
      const lastShownStart = Math.max(...got.map((f) => f.startMs), 0);
      const due = expected.filter((e) => e.participant === participant && e.text !== '' && e.startMs <= lastShownStart);
      expect(got.map((f) => Math.round(f.startMs / 10)), `utterance starts of ${participant}`).toEqual(due.map((e) => Math.round(e.startMs / 10)));
      expect(got.map((f) => f.text), `texts of ${participant}`).toEqual(due.map((e) => e.text));
    }

    // The patient's pages: no panel, nothing shown, no AI event on any socket; their consultation page never opened the hub's /consult.
    expect(await patientPage.locator('#ai-panel').isHidden()).toBe(true);
    expect(await patientPage.locator('.ai-line, .ai-speaker-trend').count()).toBe(0);
    expect(seen.filter((s) => s.who === 'patient')).toEqual([]);
    const aiFrame = (f: { text: string }) => f.text.includes('consult:transcript') || f.text.includes('consult:emotion');
    expect(patientFrames.filter(aiFrame)).toEqual([]);
    expect(patientFrames.some((f) => f.path === '/ticket' && f.text.startsWith('40/consult')), 'the ticket page does follow /consult').toBe(true);
    expect(patientFrames.filter((f) => f.path === '/consult' && f.text.includes('/consult,'))).toEqual([]);
    // …while the same check sees them on the doctor's page.
    expect(doctorFrames.filter((f) => f.path === '/consult' && aiFrame(f)).length).toBeGreaterThan(0);

    // At phone width the panel goes below the video, within the screen.
    await doctorPage.setViewportSize({ width: 390, height: 844 });
    expect(await doctorPage.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    const panelBox = (await doctorPage.locator('#ai-panel').boundingBox())!;
    expect(panelBox.x).toBeGreaterThanOrEqual(0);
    expect(panelBox.x + panelBox.width).toBeLessThanOrEqual(390);
    expect(panelBox.y).toBeGreaterThanOrEqual((await doctorPage.locator('#grid').boundingBox())!.y);

    // Reopened, the doctor's page shows the finals so far before anything new is said: the hub's history, audited.
    const shownBefore = patientFinals.map((f) => f.utterance);
    phase = 'reloaded';
    const reloadedAt = Date.now();
    await doctorPage.reload();
    await waitFor('the history on the reopened page', async () => {
      const utterances = new Set((await finalsOnPage(doctorPage)).map((f) => f.utterance));
      return shownBefore.every((u) => utterances.has(u));
    }, 10_000);
    const historyShownMs = Date.now() - reloadedAt;
    const audit = (await readAudit(redis, CLINIC, 200)).filter((a) => a.actor === DOCTOR_SUB && a.subject === consult);
    expect(audit.filter((a) => a.action === 'consult.ai.subscribe').length).toBeGreaterThanOrEqual(2);
    expect(audit.filter((a) => a.action === 'consult.ai.read').length).toBeGreaterThanOrEqual(2);
    expect(audit.every((a) => a.role === 'doctor')).toBe(true);

    // The doctor ends the consultation from the console: the reopened page (still at its device check) notes it; still nothing reached the patient.
    await staffPage.locator('.dept[data-dept="online"] table.calls tr', { hasText: ticket.number }).locator('button[data-action="end-video"]').click();
    await expect.poll(() => doctorPage.locator('#ai-session-status').textContent(), { timeout: 10_000 }).toContain('診察は終了しました');
    await patientPage.waitForSelector('html[data-stage="after"]', { timeout: 10_000 });
    await sleep(300);
    expect(patientFrames.filter(aiFrame)).toEqual([]);
    expect(patientSocketGot.transcripts).toEqual([]);
    expect(patientSocketGot.emotions).toEqual([]);
    expect(seen.filter((s) => s.who === 'patient')).toEqual([]);

    // No transcript text in any service's log.
    for (const text of new Set(finals.map((f) => f.text).filter((t) => t.length >= 4))) {
      for (const [name, logs] of [['hub', hub.logs()], ['media-server', media.logs()], ['AI worker', worker.logs()]] as const) expect(logs.includes(text), `${name} log`).toBe(false);
    }
    expect(doctorProblems.filter((p) => !p.includes('net::ERR'))).toEqual([]);
    expect(patientProblems).toEqual([]);

    // Figures: from the utterance's start (its first audio at the tap) and end to the doctor's page.
    const live = seen.filter((s) => s.who === 'doctor' && s.phase === 'live');
    const firstShown = new Map<string, { startMs: number; at: number }>();
    const finalShown: number[] = [];
    for (const s of live) {
      if (s.kind === 'emotion') continue;
      const key = `${s.participant}/${s.utterance}`;
      if (!firstShown.has(key)) firstShown.set(key, { startMs: s.startMs, at: s.at });
      if (s.kind === 'final') finalShown.push(s.at - s.endMs);
    }
    const startToFirst = [...firstShown.values()].map((f) => f.at - f.startMs);
    const emotionShown = live.filter((s): s is Extract<typeof s, { kind: 'emotion' }> => s.kind === 'emotion').map((s) => s.at - s.endMs);
    const partialsShown = live.filter((s) => s.kind === 'partial').length;
    const line = (name: string, values: number[]) => `${name}: p50 ${percentile(values, 50)} ms, max ${Math.max(...values)} ms (n=${values.length})`;
    process.stdout.write(
      [
        'consultation page AI (browser → media-server tap → AI worker → hub → doctor\'s page; fixture engines):',
        `  first result on the doctor's page ${firstResultsAfterJoinMs} ms after both joined; ${partialsShown} partial and ${finalShown.length} final line(s)`,
        `  ${line('speech start → first transcript line', startToFirst)}`,
        `  ${line('speech end → final on the page', finalShown)}`,
        `  ${line('speech end → emotion trend updated', emotionShown)}`,
        `  history on the reopened page after ${historyShownMs} ms`,
        '',
      ].join('\n'),
    );
    // Live, not after the fact: a generous bound, because the full suite runs beside this test on two cores.
    // DESIGN.md's budgets (1 s to a transcript, 2 s to emotion) are shown by `npm run bench:ai` on a quiet machine;
    // the figures printed above are this path's, browser and SFU included.
    expect(percentile(startToFirst, 50)).toBeLessThan(10_000);
    expect(percentile(emotionShown, 50)).toBeLessThan(10_000);
    expect(partialsShown).toBeGreaterThan(0);
  });
});
