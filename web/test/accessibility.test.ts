/**
 * Every page through axe-core (WCAG 2.1 A and AA rules, injected into the
 * page) in real headless Chromium against a real hub and Redis: no serious
 * or critical violation on the landing page, the display, the staff console,
 * the staff chat, the patient's ticket page with its chat, the
 * consultation page (device check, with the patient's chat), the entrance
 * kiosk, the phone check-in page, the poster maker and the manager's
 * console (/admin). Most pages show both
 * languages at once, Japanese and English, and are run with the page's
 * language as Japanese (as served) and again as English (`<html lang="en">`),
 * since a screen reader picks its voice by it; the kiosk and the phone
 * check-in show one language at a time and are run in each through their
 * own language buttons.
 * Patient-facing text is also checked to be at least 14 px.
 */
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONSULT_HUB_ENV, testRoomTokens } from '@clinic-hub/test-kit/consult-client';
import { startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { connectQueue, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { launchChromium, mediaFlags } from '@clinic-hub/test-kit/browser';
import { layoutProblems } from './support/layout.js';

const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

let redis: TestRedis;
let hub: HubNodeProcess;
let browser: Browser;
let staff: QueueSocket;

beforeAll(async () => {
  redis = await startTestRedis();
  [hub, browser] = await Promise.all([
    startHubProcess({ redisUrl: redis.url, nodeId: 'a11y-hub', env: CONSULT_HUB_ENV }),
    launchChromium(mediaFlags()),
  ]);
  staff = await connectQueue(hub.url, await tokenFor('staff'));
});

afterAll(async () => {
  staff?.close();
  await browser?.close();
  await hub?.stop();
  await redis?.cleanup();
});

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[]; failureSummary?: string }[];
}

/** Serious and critical violations of WCAG 2.1 A/AA on the page as it is now, readable. */
async function axeProblems(page: Page): Promise<string[]> {
  await page.evaluate(AXE_SOURCE);
  const violations = (await page.evaluate(
    `axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] }, resultTypes: ['violations'] }).then((r) => r.violations)`,
  )) as AxeViolation[];
  return violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .flatMap((v) => v.nodes.map((n) => `${v.impact} ${v.id} (${v.help}): ${n.target.join(' ')} — ${(n.failureSummary ?? '').replace(/\s+/g, ' ').slice(0, 200)}`));
}

function ok<T extends { ok: boolean }>(ack: T): Extract<T, { ok: true }> {
  if (!ack.ok) throw new Error(`expected ok, got ${JSON.stringify(ack)}`);
  return ack as Extract<T, { ok: true }>;
}

interface PageCase {
  name: string;
  path: () => Promise<string>;
  /** What shows once the page is ready. */
  ready: string;
  viewport: { width: number; height: number };
  /** Patient-facing: every text at least 14 px. */
  patientFacing: boolean;
  /** Pages that show one language at a time switch with their own buttons (the kiosk, the phone check-in). */
  switchLanguage?: (page: Page, lang: 'ja' | 'en') => Promise<void>;
}

/** The page's own language buttons: the text changes, and so must the page's language for a screen reader. */
async function pressLanguage(page: Page, lang: 'ja' | 'en'): Promise<void> {
  await page.click(`[data-language="${lang}"]`);
  await page.waitForFunction(`document.documentElement.lang === ${JSON.stringify(lang)}`, undefined, { timeout: 5000 });
}

const PAGES: PageCase[] = [
  { name: 'landing', path: async () => '/', ready: 'body', viewport: { width: 1280, height: 800 }, patientFacing: false },
  {
    name: 'display',
    path: async () => `/display#token=${await tokenFor('display')}`,
    ready: 'html[data-synced="true"] .dept',
    viewport: { width: 1920, height: 1080 },
    patientFacing: true,
  },
  { name: 'staff', path: async () => `/staff#token=${await tokenFor('staff')}`, ready: 'html[data-connection="live"] .dept', viewport: { width: 1440, height: 1000 }, patientFacing: false },
  { name: 'chat', path: async () => `/chat#token=${await tokenFor('staff', 'testclinic', { sub: 'staff:a11y' })}`, ready: 'html[data-connection="live"]', viewport: { width: 1280, height: 900 }, patientFacing: false },
  {
    name: 'ticket',
    path: async () => {
      const checkin = ok(await request(staff, 'queue:checkin', { dept: 'gp' }));
      const url = new URL(checkin.patientUrl);
      return `${url.pathname}${url.hash}`;
    },
    ready: '#chat-box:not([hidden]) .chat-input',
    viewport: { width: 390, height: 844 },
    patientFacing: true,
  },
  {
    name: 'consult',
    path: async () => {
      // The patient's consultation page: device check, and below it their chat with the clinic.
      const checkin = ok(await request(staff, 'queue:checkin', { dept: 'online' }));
      const { token } = testRoomTokens.issue(
        { sub: `patient:${checkin.event.ticket.id}`, clinic: 'testclinic', consult: 'c_a11y0000000000001', part: 'patient', name: '患者 / Patient', recordingRetentionDays: 30 },
        300,
      );
      const fragment = new URLSearchParams({ media: 'http://127.0.0.1:9', token, hub: checkin.patientToken, ticket: checkin.event.ticket.id });
      return `/consult#${fragment.toString()}`;
    },
    ready: 'html[data-stage="precheck"] #consult-chat:not([hidden]) .chat-input',
    viewport: { width: 1280, height: 900 },
    patientFacing: true,
  },
  {
    name: 'kiosk',
    path: async () => `/kiosk#token=${await tokenFor('kiosk', 'testclinic', { sub: 'kiosk:a11y' })}`,
    ready: 'html[data-connection="live"] #kiosk[data-screen="home"] [data-dept]',
    viewport: { width: 1280, height: 800 },
    patientFacing: true,
    switchLanguage: pressLanguage,
  },
  {
    name: 'phone check-in',
    path: async () => {
      const created = await fetch(`${hub.url}/api/clinics/testclinic/posters`, {
        method: 'POST',
        headers: { authorization: `Bearer ${await tokenFor('staff')}`, 'content-type': 'application/json' },
        body: '{"label":"a11y"}',
      });
      const { poster } = (await created.json()) as { poster: { id: string } };
      return `/checkin#clinic=testclinic&poster=${poster.id}`;
    },
    ready: '#checkin[data-screen="home"] [data-dept]',
    viewport: { width: 390, height: 844 },
    patientFacing: true,
    switchLanguage: pressLanguage,
  },
  { name: 'poster', path: async () => `/poster#token=${await tokenFor('staff')}`, ready: '#make-poster', viewport: { width: 1280, height: 1000 }, patientFacing: false },
  // The manager's console with every section filled (overview, settings, audit, notifications, tokens).
  { name: 'admin', path: async () => `/admin#token=${await tokenFor('admin')}`, ready: 'html[data-overview="live"][data-settings][data-audit][data-sessions][data-webhooks]', viewport: { width: 1440, height: 1000 }, patientFacing: false },
];

describe('accessibility', () => {
  for (const pageCase of PAGES) {
    it(`${pageCase.name}: no serious or critical axe-core violation (read as Japanese and as English)${pageCase.patientFacing ? ', no text under 14 px' : ''}`, { timeout: 60_000 }, async () => {
      const context = await browser.newContext({ viewport: pageCase.viewport });
      try {
        const page = await context.newPage();
        await page.goto(`${hub.url}${await pageCase.path()}`);
        await page.waitForSelector(pageCase.ready, { timeout: 20_000 });
        await page.waitForTimeout(500);
        const found: string[] = [];
        for (const lang of ['ja', 'en'] as const) {
          if (pageCase.switchLanguage) await pageCase.switchLanguage(page, lang);
          else await page.evaluate(`document.documentElement.lang = ${JSON.stringify(lang)}`);
          for (const problem of await axeProblems(page)) found.push(`${lang}: ${problem}`);
        }
        if (pageCase.patientFacing) {
          for (const problem of await layoutProblems(page, { minFontPx: 14 })) if (problem.startsWith('text of')) found.push(problem);
        }
        expect(found).toEqual([]);
      } finally {
        await context.close();
      }
    });
  }
});
