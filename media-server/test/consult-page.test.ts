/**
 * The consultation page in real headless Chromium (fake camera and
 * microphone), served by a real hub process, against a real media-server
 * (mediasoup, the default engine) and a real Redis: three people in a room, a late joiner, a page
 * that drops and comes back, and a signalling connection that is cut.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import type { TestRedis } from '@clinic-hub/test-kit/redis';
import { startTcpProxy, type TcpProxy } from '@clinic-hub/test-kit/tcp-proxy';
import { collectPageProblems, recordFrames } from '@clinic-hub/test-kit/browser';
import { consultUrl, hook, joinFromPage, startConsultStack, waitForFrames, type ConsultStack } from '@clinic-hub/test-kit/consult-browser';
import { roomToken, startMediaServerProcess, type MediaServerProcess } from '@clinic-hub/test-kit/media-node';

let stack: ConsultStack;
let redis: TestRedis;
let hub: HubNodeProcess;
let media: MediaServerProcess;

beforeAll(async () => {
  stack = await startConsultStack('consult-page', { MEDIA_PING_INTERVAL_MS: '1000' });
  ({ redis, hub, media } = stack);
});

afterEach(() => stack.closeContexts());

afterAll(() => stack?.stop());

const newContext = () => stack.newContext();

const people = [
  { sub: 'doctor-1', part: 'doctor' as const, name: '山田 医師' },
  { sub: 'patient-1', part: 'patient' as const, name: '佐藤 花子' },
  { sub: 'interp-1', part: 'interpreter' as const, name: 'Interpreter Lee' },
];

function pageFor(consult: string, person: (typeof people)[number], mediaUrl = media.url): string {
  return consultUrl(hub.url, mediaUrl, roomToken({ ...person, consult }));
}

async function remoteIds(page: Page): Promise<string[]> {
  return (await hook(page)).media.participants.sort();
}

async function waitForParticipants(page: Page, expected: string[], timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ids = await remoteIds(page);
    if (JSON.stringify(ids) === JSON.stringify([...expected].sort())) return;
    if (Date.now() > deadline) throw new Error(`expected participants ${expected.join(', ')}, page shows ${ids.join(', ')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('the consultation page', () => {
  it('three browsers in one room each decode video from the other two, and a late joiner gets a picture at once', { timeout: 90_000 }, async () => {
    const consult = 'page-three-1';
    const pages: Page[] = [];
    const problems: string[][] = [];
    // Two first, then the third: the third is the late joiner.
    for (const person of people) {
      const context = await newContext();
      const page = await joinFromPage(context, pageFor(consult, person));
      problems.push(collectPageProblems(page));
      pages.push(page);
      if (pages.length === 2) await waitForFrames(pages[0]!, [people[1]!.sub]);
    }
    for (const [i, page] of pages.entries()) {
      const others = people.filter((_, j) => j !== i).map((p) => p.sub);
      await waitForParticipants(page, others);
      const first = await waitForFrames(page, others);
      // Still decoding later: frames keep coming, not one keyframe and a stall. Up to 5 s, because with the
      // whole suite beside it on two cores a subscriber may briefly wait for the next keyframe.
      for (const id of others) {
        const later = await waitForFrames(page, [id], first[id]!, 5000);
        expect(later[id]!, `${people[i]!.sub} decoding ${id}`).toBeGreaterThan(first[id]!);
      }
    }
    const timings = await Promise.all(pages.map(async (page) => (await hook(page)).media.firstFrameMs));
    for (const [i, timing] of timings.entries()) {
      const figures = Object.entries(timing).map(([id, t]) =>
        i === 2 ? `${id}: join → first frame ${t.fromJoin} ms (media connected → first frame ${t.fromConnected} ms)` : `${id}: appeared → first frame ${t.fromAppeared} ms`,
      );
      process.stdout.write(`first frames on ${people[i]!.sub}'s page (budget: join → first frame < 2000 ms): ${figures.join('; ')}\n`);
    }
    const late = timings[2]!;
    for (const id of [people[0]!.sub, people[1]!.sub]) {
      // join → first frame is printed against its 2 s budget, not asserted: on a loaded machine signalling and DTLS stretch it.
      expect(late[id], `the late joiner's first frame from ${id}`).toBeDefined();
      // Keyframes on request: a picture soon after the late joiner's camera stream is ready — its connection up
      // and the track there (without a keyframe request reaching the sender it would wait for the next periodic
      // keyframe, a minute or more in Chrome). On mediasoup each consumer is added to the receive connection after
      // it came up, one after another, so the track's arrival counts, not the connection's. Measured: 50-100 ms
      // mostly, 1.1 s at worst at a load average of 20+ (three Chromium encoders of three simulcast layers each on
      // two shared cores): 3 s still tells a requested keyframe from a periodic one.
      expect(late[id]!.fromConnected).toBeLessThan(3000);
    }
    // Names and roles on the tiles, Japanese and English.
    const caption = await pages[2]!.textContent(`figure[data-participant="${people[0]!.sub}"] figcaption`);
    expect(caption).toContain('山田 医師');
    expect(caption).toContain('医師');
    expect(caption).toContain('Doctor');
    expect(problems.flat().filter((p) => !/favicon/.test(p))).toEqual([]);

    // Mute shows on the others' tiles.
    await pages[1]!.click('#mic-toggle');
    await pages[0]!.waitForSelector(`figure[data-participant="${people[1]!.sub}"] .badge.muted`, { timeout: 5000 });

    for (const page of pages) await page.click('#leave');
    await pages[0]!.waitForSelector('html[data-stage="after"]');
  });

  it('a page that drops is seen leaving by the others and can rejoin', { timeout: 90_000 }, async () => {
    const consult = 'page-drop-1';
    const [doctor, patient] = [people[0]!, people[1]!];
    const doctorPage = await joinFromPage(await newContext(), pageFor(consult, doctor));
    let patientContext = await newContext();
    let patientPage = await joinFromPage(patientContext, pageFor(consult, patient));
    await waitForFrames(doctorPage, [patient.sub]);

    // The patient's tab closes without leaving.
    await patientContext.close();
    await waitForParticipants(doctorPage, []);

    patientContext = await newContext();
    patientPage = await joinFromPage(patientContext, pageFor(consult, patient));
    await waitForParticipants(doctorPage, [patient.sub]);
    const frames = await waitForFrames(doctorPage, [patient.sub]);
    await waitForFrames(patientPage, [doctor.sub]);
    process.stdout.write(`after the rejoin the doctor decodes the patient again (${frames[patient.sub]} frames so far)\n`);
    expect(await (await fetch(`${media.url}/healthz`)).json()).toMatchObject({ rooms: 1, participants: 2 });
    await doctorPage.click('#leave');
    await patientPage.click('#leave');
  });

  it('after its signalling connection is cut, the page connects again by itself and the call goes on (on mediasoup it resumes: nobody sees it leave)', { timeout: 90_000 }, async () => {
    const consult = 'page-cut-1';
    const proxy: TcpProxy = await startTcpProxy(Number(new URL(media.url).port));
    try {
      const [doctor, patient] = [people[0]!, people[1]!];
      const doctorContext = await newContext();
      // What the doctor's page is told, from its first frame on.
      let doctorFrames: { received: string[] } = { received: [] };
      doctorContext.once('page', (page) => (doctorFrames = recordFrames(page)));
      const doctorPage = await joinFromPage(doctorContext, pageFor(consult, doctor));
      const patientContext = await newContext();
      let patientFrames: { sent: string[] } = { sent: [] };
      patientContext.once('page', (page) => (patientFrames = recordFrames(page)));
      const patientPage = await joinFromPage(patientContext, pageFor(consult, patient, proxy.url));
      await waitForFrames(doctorPage, [patient.sub]);
      const engine = ((await (await fetch(`${media.url}/healthz`)).json()) as { engine: string }).engine;
      const states: string[] = [];
      await patientPage.exposeFunction('__reportState', (state: string) => states.push(state));
      await patientPage.evaluate(`(() => {
        const root = document.documentElement;
        new MutationObserver(() => window.__reportState(root.dataset.connection ?? '')).observe(root, { attributes: true, attributeFilter: ['data-connection'] });
      })()`);

      // Both ends see the socket end without a close frame: a network that went, not a page that left.
      const toldBefore = doctorFrames.received.length;
      proxy.reset();
      if (engine === 'werift') await waitForParticipants(doctorPage, []);
      const deadline = Date.now() + 15_000;
      while (!(states.includes('reconnecting') && states.at(-1) === 'live')) {
        if (Date.now() > deadline) throw new Error(`the patient's page did not connect again: states ${states.join(' → ')}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      await waitForParticipants(doctorPage, [patient.sub]);
      const before = await waitForFrames(doctorPage, [patient.sub]);
      await waitForFrames(doctorPage, [patient.sub], before[patient.sub]! + 10);
      await waitForFrames(patientPage, [doctor.sub]);
      const leftOrJoined = doctorFrames.received.slice(toldBefore).filter((f) => f.includes('"participant-left"') || f.includes('"participant-joined"'));
      if (engine === 'mediasoup') {
        // The session resumed on the new socket (its join named it), and the doctor was told nothing.
        const joins = patientFrames.sent.filter((f) => f.includes('"type":"join"'));
        expect(joins).toHaveLength(2);
        expect(joins[1]).toContain('"resume"');
        expect(leftOrJoined).toEqual([]);
      } else {
        expect(leftOrJoined.length).toBeGreaterThanOrEqual(2);
      }
      await doctorPage.click('#leave');
      await patientPage.click('#leave');
    } finally {
      await proxy.close();
    }
  });

  it('shows the recording state to everyone and runs the consent control', { timeout: 90_000 }, async () => {
    const recordingsDir = mkdtempSync(join(tmpdir(), 'consult-page-recordings-'));
    const recording = await startMediaServerProcess({
      REDIS_URL: redis.url,
      MEDIA_NODE_ID: 'consult-page-rec',
      LOG_LEVEL: 'warn',
      RECORDING_KEY: Buffer.alloc(32, 9).toString('base64'),
      RECORDINGS_DIR: recordingsDir,
    });
    try {
      const consult = 'page-consent-1';
      const [doctor, patient] = [people[0]!, people[1]!];
      const doctorPage = await joinFromPage(await newContext(), pageFor(consult, doctor, recording.url));
      const patientPage = await joinFromPage(await newContext(), pageFor(consult, patient, recording.url));
      await waitForFrames(doctorPage, [patient.sub]);
      // Only clinicians get the recording button.
      expect(await patientPage.isHidden('#recording-toggle')).toBe(true);
      const state = (page: Page, value: string) => page.waitForSelector(`html[data-recording="${value}"]`, { timeout: 10_000 });

      await doctorPage.click('#recording-toggle');
      await Promise.all([state(doctorPage, 'waiting-consent'), state(patientPage, 'waiting-consent')]);
      expect(await patientPage.textContent('#recording-badge')).toContain('同意待ち');
      // Consent is given in the dialog that says what is recorded, who sees it, how long it is kept and how to withdraw.
      for (const page of [doctorPage, patientPage]) {
        await page.click('#consent-toggle');
        await page.click('#consent-dialog #consent-agree');
      }
      await Promise.all([state(doctorPage, 'recording'), state(patientPage, 'recording')]);
      expect(await patientPage.textContent('#recording-badge')).toContain('Recording');
      expect(await patientPage.getAttribute('#consent-toggle', 'aria-pressed')).toBe('true');

      // The patient withdraws: recording stops for everyone at once.
      await patientPage.click('#consent-toggle');
      await Promise.all([state(doctorPage, 'waiting-consent'), state(patientPage, 'waiting-consent')]);
      await doctorPage.click('#recording-toggle');
      await Promise.all([state(doctorPage, 'off'), state(patientPage, 'off')]);
      await doctorPage.click('#leave');
      await patientPage.click('#leave');
    } finally {
      await recording.stop();
      rmSync(recordingsDir, { recursive: true, force: true });
    }
  });

  it('tells a clinician when this media-server cannot record', async () => {
    const page = await joinFromPage(await newContext(), pageFor('page-no-recorder-1', people[0]!));
    await page.click('#recording-toggle');
    await page.waitForSelector('#control-error:not([hidden])');
    expect(await page.textContent('#control-error')).toContain('RECORDING_KEY_MISSING');
    await page.waitForSelector('#quality[data-quality]:not([data-quality="unknown"])', { timeout: 10_000 });
  });

  it('explains a link without a media-server or token, and a refused token', { timeout: 90_000 }, async () => {
    const context = await newContext();
    const bare = await context.newPage();
    await bare.goto(`${hub.url}/consult`);
    await bare.waitForSelector('.fatal');
    expect(await bare.textContent('.fatal')).toContain('consultation link');
    // A new page: a change of fragment alone would not load the page again.
    const page = await context.newPage();
    await page.goto(consultUrl(hub.url, media.url, 'not-a-token'));
    await page.click('#join-button');
    await page.waitForSelector('html[data-stage="after"]');
    expect(await page.getAttribute('html', 'data-closed')).toBe('AUTH_INVALID');
  });
});
