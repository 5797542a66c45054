/**
 * Finals made again on the clinician's consultation page, in real headless
 * Chromium against a real hub process and Redis; the results SPUBLISHed
 * here exactly as an AI worker does (hub/test/consult-ai.test.ts).
 *
 * After a lossy failover an AI worker makes again finals a clinician was
 * already sent (docs/ai-workers.md, "A failover that rewinds a run"); one
 * whose VAD start moved a few ms is another utterance with maybe other
 * text. The page shows the later of two finals of one speaker that overlap
 * in time, in its place by time; finals that do not overlap, or are
 * another speaker's, all show.
 */
import { Redis } from 'ioredis';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consultAiChannel, type AiEmotion, type AiResultMessage, type AiTranscript, type ConsultRole } from '@clinic-hub/protocol';
import { CONSULT_HUB_ENV, announceMediaNode, connectConsult, consultRequest, testRoomTokens, type ConsultSocket } from '@clinic-hub/test-kit/consult-client';
import { startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { connectQueue, expectOk, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { collectPageProblems, launchChromium } from '@clinic-hub/test-kit/browser';
import { sleep, waitFor } from '@clinic-hub/test-kit/wait';

const CLINIC = 'testclinic';
const MEDIA_URL = 'ws://media-finals.test:7443';
const DOCTOR_SUB = 'doctor:finals';

let redisServer: TestRedis;
let redis: Redis;
let hub: HubNodeProcess;
let browser: Browser;
let staff: QueueSocket;
let doctor: ConsultSocket;

beforeAll(async () => {
  redisServer = await startTestRedis();
  redis = new Redis(redisServer.url);
  await announceMediaNode(redis, { id: 'media-finals', url: MEDIA_URL });
  hub = await startHubProcess({ redisUrl: redisServer.url, nodeId: 'web-finals', env: CONSULT_HUB_ENV });
  browser = await launchChromium();
  staff = await connectQueue(hub.url, await tokenFor('staff'));
  doctor = await connectConsult(hub.url, await tokenFor('doctor', CLINIC, { sub: DOCTOR_SUB }));
});

afterAll(async () => {
  staff?.close();
  doctor?.close();
  await browser?.close();
  await hub?.stop();
  redis?.disconnect();
  await redisServer?.cleanup();
});

describe('finals on the clinician’s consultation page', () => {
  it('a final replaces an earlier final of the same speaker it overlaps in time; others all show, in order of time', async () => {
    const ticket = expectOk(await request(staff, 'queue:checkin', { dept: 'online' })).event.ticket.id;
    const consult = expectOk(await consultRequest(doctor, 'consult:admit', { dept: 'online', room: 'v1', ticketId: ticket })).consultation.id;
    const patient = `patient:${ticket}`;
    const t0 = Date.now() - 60_000;
    const result = (participant: string, role: ConsultRole, utterance: string, from: number, to: number) => ({ consult, participant, role, utterance, startMs: t0 + from, endMs: t0 + to, engine: 'test' });
    const final = (participant: string, role: ConsultRole, utterance: string, from: number, to: number, text: string): AiResultMessage => ({
      type: 'transcript',
      payload: { ...result(participant, role, utterance, from, to), kind: 'final', text, language: 'ja' } satisfies AiTranscript,
    });
    const emotion = (participant: string, role: ConsultRole, utterance: string, from: number, to: number, stress: number): AiResultMessage => ({
      type: 'emotion',
      payload: { ...result(participant, role, utterance, from, to), labels: [{ label: 'calm', p: 1 }], arousal: 0.1, stress } satisfies AiEmotion,
    });
    const publish = (message: AiResultMessage) => redis.spublish(consultAiChannel(CLINIC), JSON.stringify(message));

    const context = await browser.newContext();
    const page: Page = await context.newPage();
    const problems = collectPageProblems(page);
    const roomToken = testRoomTokens.issue({ clinic: CLINIC, consult, sub: DOCTOR_SUB, part: 'doctor', name: 'doctor' }, 300).token;
    await page.goto(`${hub.url}/consult#${new URLSearchParams({ media: MEDIA_URL, token: roomToken, hub: await tokenFor('doctor', CLINIC, { sub: DOCTOR_SUB }) }).toString()}`);
    // Subscribed (the panel unhidden), though out of sight behind the device check: no media-server here to enter the room.
    await page.locator('#ai-panel:not([hidden])').waitFor({ state: 'attached', timeout: 15_000 });
    // A string: tests are type-checked without the DOM library; it runs in the page.
    const shown = () =>
      page.evaluate(`[...document.querySelectorAll('#ai-transcript .ai-line')].map((li) => li.dataset.participant + '/' + li.dataset.kind + ': ' + (li.querySelector('.ai-text')?.textContent ?? ''))`) as Promise<string[]>;

    // As the clinician saw them live: the patient twice, the doctor over the end of the patient's first, the
    // patient again from where their second ends (edges that touch do not overlap).
    await publish(final(patient, 'patient', 'u-1000', 1000, 2600, 'きのうから ねつが あります'));
    await publish(emotion(patient, 'patient', 'u-1000', 1000, 2600, 0.3));
    await publish(final(DOCTOR_SUB, 'doctor', 'u-2400', 2400, 3400, 'のどは いたいですか'));
    await publish(final(patient, 'patient', 'u-3600', 3600, 5000, 'はい すこし'));
    await publish(final(patient, 'patient', 'u-5000', 5000, 6000, 'せきも でます'));
    await waitFor('four finals on the page', async () => (await shown()).length === 4, 10_000);

    // A failover lost the patient's first final, and the worker made it again from the audio: 4 ms earlier, so
    // another utterance id, and the text a little different.
    await publish(final(patient, 'patient', 'u-996', 996, 2590, 'きのうから ねつが あって'));
    await publish(emotion(patient, 'patient', 'u-996', 996, 2590, 0.4));
    // And the doctor says something new, to know when the page has taken in the one before.
    await publish(final(DOCTOR_SUB, 'doctor', 'u-6200', 6200, 7000, 'わかりました'));
    await waitFor('the doctor’s new final', async () => (await shown()).some((line) => line.endsWith('わかりました')), 10_000);
    await sleep(300);

    expect(await shown()).toEqual([
      `${patient}/final: きのうから ねつが あって`,
      `${DOCTOR_SUB}/final: のどは いたいですか`,
      `${patient}/final: はい すこし`,
      `${patient}/final: せきも でます`,
      `${DOCTOR_SUB}/final: わかりました`,
    ]);
    // The patient's stress trend has one point for that speech too.
    expect(await page.locator(`#ai-emotions .ai-speaker-trend[data-participant="${patient}"]`).getAttribute('data-utterances')).toBe('1');
    expect(problems).toEqual([]);
    await context.close();
    expectOk(await consultRequest(doctor, 'consult:end', { consult }));
  });
});
