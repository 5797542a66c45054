import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Page } from 'playwright-core';

/** The screens the waiting-room display is made for. */
export const DISPLAY_VIEWPORTS = [
  { width: 1280, height: 720 },
  { width: 1366, height: 768 },
  { width: 1920, height: 1080 },
  { width: 3840, height: 2160 },
  { width: 1080, height: 1920 },
] as const;

const LAYOUT_CHECK = readFileSync(resolve(import.meta.dirname, 'layout-check.js'), 'utf8').trim().replace(/;$/, '');

/**
 * What is wrong with the page as laid out now (layout-check.js): overflowing
 * boxes, boxes off screen, overlaps, Japanese wrapped inside a word, text
 * under `minFontPx`. Empty when nothing is.
 */
export async function layoutProblems(page: Page, options: { minFontPx?: number; root?: string } = {}): Promise<string[]> {
  return (await page.evaluate(`(${LAYOUT_CHECK})(${JSON.stringify(options)})`)) as string[];
}

/** Layout settles: fonts, a fit after a resize (ResizeObserver, then a frame), short animations (0.4 s). */
export async function settle(page: Page): Promise<void> {
  await page.evaluate('document.fonts.ready.then(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))))');
  await page.waitForTimeout(450);
}
