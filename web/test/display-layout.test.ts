/**
 * The waiting-room display as a TV shows it.
 *
 * Layout: at every screen it is made for (1280×720,
 * 1366×768, 1920×1080, 3840×2160, portrait 1080×1920), with 1 to 6
 * departments, 0 to 30 waiting in each, 0 to 6 calls, long Japanese and
 * English names, with and without an announcement: nothing overflows its
 * box, leaves the screen or overlaps something else, no text is under 14 px,
 * and Japanese never wraps inside a word (support/layout-check.js). State is
 * set through the hub like any client (check-ins, calls, announcements) on a
 * real hub and Redis; one browser, one hub. Every screenshot is saved under
 * test-artifacts/display-layout/.
 *
 * Sound: Chromium started with and without the kiosk's autoplay flag; the
 * "Enable sound" button shows only without it, and never covers anything.
 * Speech: the call is spoken in the clinic's languages, in its order
 * (observed by wrapping speechSynthesis.speak: the voice itself is the
 * browser's).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { connectQueue, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { collectPageProblems, launchChromium } from '@clinic-hub/test-kit/browser';
import { DISPLAY_VIEWPORTS as VIEWPORTS, layoutProblems, settle } from './support/layout.js';

const ARTIFACTS = resolve(REPO_ROOT, 'test-artifacts/display-layout');

/** Long names as clinics really have them, in both languages. */
const DEPARTMENTS = [
  { name: { ja: '耳鼻咽喉科・頭頸部外科', en: 'Otorhinolaryngology and Head and Neck Surgery' }, prefix: 'AB' },
  { name: { ja: 'オンライン診療（ビデオ通話）', en: 'Online Consultation (video call)' }, prefix: 'W' },
  { name: { ja: '小児科・アレルギー科外来', en: 'Pediatrics and Allergy Outpatients' }, prefix: 'B' },
  { name: { ja: '内科', en: 'Internal Medicine' }, prefix: 'A' },
  { name: { ja: '整形外科・リハビリテーション科', en: 'Orthopedics and Rehabilitation' }, prefix: 'C' },
  { name: { ja: '皮膚科', en: 'Dermatology' }, prefix: 'D' },
];
const ROOMS = [
  { ja: 'オンライン診察室1', en: 'Video Room 1' },
  { ja: '処置室（内視鏡検査室）', en: 'Treatment Room (Endoscopy Suite)' },
  { ja: '第1診察室', en: 'Room 1' },
  { ja: 'リハビリテーション室2', en: 'Rehabilitation Room 2' },
  { ja: '中央処置室', en: 'Central Treatment Room' },
  { ja: '第12診察室（小児）', en: 'Consulting Room 12 (children)' },
];
const LONG_ANNOUNCEMENT = {
  ja: '本日は午後の診察を休診とさせていただきます。お薬のみご希望の方は受付にお声がけください。駐車場が大変混み合っておりますので、公共交通機関をご利用ください。発熱のある方は入口のインターホンでお知らせください。ご理解とご協力をお願いいたします。',
  en: 'No consultations this afternoon. For medicine only, please ask at reception. The car park is full: please come by bus or train. With a fever, use the intercom at the entrance. Thank you.',
};
/** At most 200 characters each, as the hub accepts. */
const SHORT_ANNOUNCEMENT = { ja: '午後は休診です。', en: 'Closed this afternoon.' };

interface Scenario {
  clinic: string;
  /** Waiting tickets left in each department (its length is the number of departments). */
  waiting: number[];
  calls: number;
  announcement: { ja: string; en: string };
  longClinicName: boolean;
}

/** 1–6 departments, 0–30 waiting, 0–6 calls, short and long everything. */
const SCENARIOS: Scenario[] = [
  { clinic: 'layout1', waiting: [0], calls: 0, announcement: SHORT_ANNOUNCEMENT, longClinicName: true },
  { clinic: 'layout2', waiting: [30, 30], calls: 6, announcement: LONG_ANNOUNCEMENT, longClinicName: false },
  { clinic: 'layout3', waiting: [12, 0, 30], calls: 3, announcement: LONG_ANNOUNCEMENT, longClinicName: true },
  { clinic: 'layout4', waiting: [30, 0, 5, 1], calls: 1, announcement: SHORT_ANNOUNCEMENT, longClinicName: false },
  { clinic: 'layout5', waiting: [30, 30, 30, 30, 30], calls: 6, announcement: LONG_ANNOUNCEMENT, longClinicName: true },
  { clinic: 'layout6', waiting: [30, 30, 30, 30, 30, 30], calls: 6, announcement: LONG_ANNOUNCEMENT, longClinicName: true },
];

/** Rooms are spread over the departments so that every call has a free room. */
function clinicConfig(scenario: Scenario): object {
  const count = scenario.waiting.length;
  const roomsPer = Math.ceil(6 / count);
  let room = 0;
  return {
    id: scenario.clinic,
    name: scenario.longClinicName
      ? { ja: '医療法人社団さくら会 さくら内科・小児科・皮膚科クリニック', en: 'Sakura Medical Corporation Internal Medicine, Pediatrics and Dermatology Clinic' }
      : { ja: 'さくら内科', en: 'Sakura Clinic' },
    timezone: 'Asia/Tokyo',
    departments: scenario.waiting.map((_, d) => ({
      id: `d${d + 1}`,
      name: DEPARTMENTS[d]!.name,
      prefix: DEPARTMENTS[d]!.prefix,
      defaultConsultMinutes: 9,
      rooms: Array.from({ length: roomsPer }, () => {
        const index = room++;
        return { id: `r${index + 1}`, name: ROOMS[index % ROOMS.length]! };
      }),
    })),
  };
}

let redis: TestRedis;
let hub: HubNodeProcess;
let browser: Browser;
let clinicsDir: string;
const sockets: QueueSocket[] = [];

/** Six departments and six calls, for the sound button; two small clinics that speak in different orders. */
const SOUND_SCENARIO: Scenario = { clinic: 'sound', waiting: [30, 30, 30, 30, 30, 30], calls: 6, announcement: LONG_ANNOUNCEMENT, longClinicName: true };
const SPEECH_CLINICS = [
  { clinic: 'speechjaen', languages: undefined, expected: ['ja-JP', 'en-US'] },
  { clinic: 'speechen', languages: ['en'], expected: ['en-US'] },
  { clinic: 'speechenja', languages: ['en', 'ja'], expected: ['en-US', 'ja-JP'] },
] as const;

beforeAll(async () => {
  clinicsDir = mkdtempSync(join(tmpdir(), 'display-layout-'));
  for (const scenario of [...SCENARIOS, SOUND_SCENARIO]) writeFileSync(join(clinicsDir, `${scenario.clinic}.json`), JSON.stringify(clinicConfig(scenario)));
  for (const { clinic, languages } of SPEECH_CLINICS) {
    const config = clinicConfig({ clinic, waiting: [1], calls: 1, announcement: SHORT_ANNOUNCEMENT, longClinicName: false });
    writeFileSync(join(clinicsDir, `${clinic}.json`), JSON.stringify({ ...config, ...(languages ? { spokenCallLanguages: languages } : {}) }));
  }
  redis = await startTestRedis();
  hub = await startHubProcess({ redisUrl: redis.url, nodeId: 'display-layout', env: { CLINICS_DIR: clinicsDir } });
  browser = await launchChromium();
  mkdirSync(ARTIFACTS, { recursive: true });
  console.log(`display layout screenshots: ${ARTIFACTS}`);
});

afterAll(async () => {
  for (const socket of sockets) socket.close();
  await browser?.close();
  await hub?.stop();
  await redis?.cleanup();
  if (clinicsDir) rmSync(clinicsDir, { recursive: true, force: true });
});

function ok<T extends { ok: boolean }>(ack: T): Extract<T, { ok: true }> {
  if (!ack.ok) throw new Error(`expected ok, got ${JSON.stringify(ack)}`);
  return ack as Extract<T, { ok: true }>;
}

/** Check-ins, then calls to distinct rooms, round the departments: as reception would. */
async function setUp(scenario: Scenario, staff: QueueSocket): Promise<void> {
  const config = clinicConfig(scenario) as { departments: { id: string; rooms: { id: string }[] }[] };
  const calls = config.departments.flatMap((d) => d.rooms.map((r) => ({ dept: d.id, room: r.id }))).slice(0, scenario.calls);
  for (const [d, dept] of config.departments.entries()) {
    const calledHere = calls.filter((c) => c.dept === dept.id).length;
    for (let i = 0; i < scenario.waiting[d]! + calledHere; i++) ok(await request(staff, 'queue:checkin', { dept: dept.id, priority: i % 7 === 3 ? 'urgent' : 'normal' }));
  }
  for (const call of calls) ok(await request(staff, 'queue:call-next', call));
}

describe('display layout', () => {
  for (const scenario of SCENARIOS) {
    it(`${scenario.waiting.length} department(s), ${scenario.waiting.join('/')} waiting, ${scenario.calls} call(s): fits every screen, with and without an announcement`, async () => {
      const staff = await connectQueue(hub.url, await tokenFor('staff', scenario.clinic));
      sockets.push(staff);
      await setUp(scenario, staff);

      const context = await browser.newContext({ viewport: VIEWPORTS[0] });
      try {
        const page = await context.newPage();
        const pageErrors = collectPageProblems(page);
        await page.goto(`${hub.url}/display#token=${await tokenFor('display', scenario.clinic)}`);
        await page.waitForSelector('html[data-connection="live"][data-synced="true"]', { timeout: 15_000 });
        const shownCalls = await page.locator('#calls .call').count();
        expect(shownCalls).toBe(scenario.calls);

        const found: string[] = [];
        for (const announced of [false, true]) {
          if (announced) {
            ok(await request(staff, 'queue:announce', { text: scenario.announcement, durationSeconds: 600 }));
            await page.locator('#announcement:not([hidden])').waitFor({ timeout: 15_000 });
          }
          for (const viewport of VIEWPORTS) {
            await page.setViewportSize(viewport);
            await settle(page);
            const label = `${scenario.clinic} ${viewport.width}x${viewport.height}${announced ? ' announcement' : ''}`;
            await page.screenshot({ path: resolve(ARTIFACTS, `${label.replaceAll(' ', '-')}.png`) });
            for (const problem of await layoutProblems(page, { minFontPx: 14 })) found.push(`${label}: ${problem}`);
            // What matters most is on screen: every call, and each department's count and wait.
            expect(await page.locator('#calls .call').count()).toBe(scenario.calls);
            expect(await page.locator('#departments .dept .count').count()).toBe(scenario.waiting.length);
          }
        }
        expect(found).toEqual([]);
        expect(pageErrors).toEqual([]);
      } finally {
        await context.close();
      }
    }, 180_000);
  }
});

describe('display sound without a mouse', () => {
  let staff: QueueSocket;
  beforeAll(async () => {
    staff = await connectQueue(hub.url, await tokenFor('staff', SOUND_SCENARIO.clinic));
    sockets.push(staff);
    await setUp(SOUND_SCENARIO, staff);
  });

  it('without the autoplay flag: shows "Enable sound" in its own space (covering nothing at any size), and sound plays once it is pressed', async () => {
    const silent = await launchChromium([], { autoplay: false });
    try {
      const page = await silent.newPage({ viewport: VIEWPORTS[0] });
      await page.goto(`${hub.url}/display#token=${await tokenFor('display', SOUND_SCENARIO.clinic)}`);
      await page.waitForSelector('html[data-connection="live"][data-synced="true"]', { timeout: 15_000 });
      const button = page.locator('#enable-sound');
      await button.waitFor({ state: 'visible', timeout: 15_000 });
      expect(await page.evaluate('window.__clinicHub.soundBlocked')).toBe(true);
      expect(await button.innerText()).toContain('Enable sound');
      ok(await request(staff, 'queue:announce', { text: LONG_ANNOUNCEMENT, durationSeconds: 600 }));
      await page.locator('#announcement:not([hidden])').waitFor({ timeout: 15_000 });
      const found: string[] = [];
      for (const viewport of VIEWPORTS) {
        await page.setViewportSize(viewport);
        await settle(page);
        await page.screenshot({ path: resolve(ARTIFACTS, `sound-button-${viewport.width}x${viewport.height}.png`) });
        for (const problem of await layoutProblems(page, { minFontPx: 14 })) found.push(`${viewport.width}x${viewport.height}: ${problem}`);

        expect(await button.isVisible()).toBe(true);
      }
      expect(found).toEqual([]);

      // Someone presses it once (a remote, a mouse): sound is on and the button goes.
      await button.click();
      await button.waitFor({ state: 'hidden', timeout: 15_000 });
      await expect.poll(() => page.evaluate('window.__clinicHub.soundBlocked'), { timeout: 15_000 }).toBe(false);
    } finally {
      await silent.close();
    }
  }, 180_000);

  it('with the kiosk autoplay flag: finds that sound is allowed and shows no button', async () => {
    const page = await browser.newPage({ viewport: VIEWPORTS[2] });
    try {
      await page.goto(`${hub.url}/display#token=${await tokenFor('display', SOUND_SCENARIO.clinic)}`);
      await page.waitForSelector('html[data-connection="live"][data-synced="true"]', { timeout: 15_000 });
      await expect.poll(() => page.evaluate('window.__clinicHub.soundBlocked'), { timeout: 15_000 }).toBe(false);
      await page.locator('#enable-sound').waitFor({ state: 'hidden', timeout: 15_000 });
    } finally {
      await page.close();
    }
  });
});

describe('spoken calls', () => {
  for (const { clinic, languages, expected } of SPEECH_CLINICS) {
    it(`speaks a call in ${expected.join(' then ')} (${languages ? `spokenCallLanguages ${JSON.stringify(languages)}` : 'the default'})`, async () => {
      const staff = await connectQueue(hub.url, await tokenFor('staff', clinic));
      sockets.push(staff);
      const page = await browser.newPage({ viewport: VIEWPORTS[2] });
      try {
        // The browser's own speech engine is the third party: only its entry point is watched.
        await page.addInitScript(`{
          window.__spoken = [];
          const speak = speechSynthesis.speak.bind(speechSynthesis);
          speechSynthesis.speak = (utterance) => {
            if (utterance.text.trim() !== '') window.__spoken.push({ text: utterance.text, lang: utterance.lang, at: performance.now() });
            return speak(utterance);
          };
        }`);
        await page.goto(`${hub.url}/display#token=${await tokenFor('display', clinic)}`);
        await page.waitForSelector('html[data-connection="live"][data-synced="true"]', { timeout: 15_000 });
        const ticket = ok(await request(staff, 'queue:checkin', { dept: 'd1' })).event.ticket;
        ok(await request(staff, 'queue:call-next', { dept: 'd1', room: 'r1' }));
        await expect.poll(async () => ((await page.evaluate('window.__spoken')) as unknown[]).length, { timeout: 20_000 }).toBe(expected.length);
        await page.waitForTimeout(300);
        const spoken = (await page.evaluate('window.__spoken')) as { text: string; lang: string }[];
        expect(spoken.map((s) => s.lang)).toEqual(expected);
        const digits = String(Number(ticket.number.split('-')[1]));
        for (const line of spoken) {
          expect(line.text).toContain(digits);
          // The first department's prefix is AB: letters read one by one, the number without its zeros.
          if (line.lang === 'ja-JP') expect(line.text).toBe(`エービーの${digits}番の方、${ROOMS[0]!.ja}へお越しください。`);
          else expect(line.text).toBe(`Number A B ${digits}, please go to ${ROOMS[0]!.en}.`);
        }
      } finally {
        await page.close();
      }
    });
  }
});
