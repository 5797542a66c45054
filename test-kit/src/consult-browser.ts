import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium, mediaFlags } from './browser.js';
import { startHubProcess, type HubNodeProcess } from './hub-node.js';
import { startMediaServerProcess, type MediaServerProcess } from './media-node.js';
import { startTestRedis, type TestRedis } from './redis.js';

/** Headless Debian Chromium with a fake camera and microphone, allowed to use loopback ICE candidates; any more flags given. */
export function launchMediaChromium(extraFlags: string[] = []): Promise<Browser> {
  return launchChromium([...mediaFlags(), ...extraFlags]);
}

/** The little of the consultation page's debug hook the tests read (window.__clinicHub). */
export interface ConsultHook {
  media: { self: string | null; participants: string[]; recording: string; firstFrameMs: Record<string, { fromJoin: number; fromConnected: number; fromAppeared: number }> };
}

export const consultUrl = (hubUrl: string, mediaUrl: string, token: string) =>
  `${hubUrl}/consult#${new URLSearchParams({ media: mediaUrl, token }).toString()}`;

/** Opens the page, passes the device check and joins; resolves once the page is live in the room. */
export async function joinFromPage(context: BrowserContext, url: string): Promise<Page> {
  const page = await context.newPage();
  await page.setViewportSize({ width: 1000, height: 700 });
  await page.goto(url);
  await page.waitForSelector('html[data-stage="precheck"]', { timeout: 30_000 });
  await page.click('#join-button');
  await page.waitForSelector('html[data-connection="live"]', { timeout: 30_000 });
  return page;
}

export async function hook(page: Page): Promise<ConsultHook> {
  return (await page.evaluate('JSON.parse(JSON.stringify(window.__clinicHub))')) as ConsultHook;
}

export async function framesDecoded(page: Page): Promise<Record<string, number>> {
  return (await page.evaluate('window.__clinicHub.framesDecoded()')) as Record<string, number>;
}

/** Polls until every listed participant's camera has decoded more than `min` frames on this page; returns the counts. */
export async function waitForFrames(page: Page, participants: string[], min = 0, timeoutMs = 15_000): Promise<Record<string, number>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const frames = await framesDecoded(page);
    if (participants.every((id) => (frames[id] ?? 0) > min)) return frames;
    if (Date.now() > deadline) throw new Error(`frames from ${participants.join(', ')} not decoded in ${timeoutMs} ms: ${JSON.stringify(frames)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** What a consultation page test runs against (startConsultStack). */
export interface ConsultStack {
  redis: TestRedis;
  hub: HubNodeProcess;
  /** Its own process, as deployed: the media-server's event loop is not shared with the test's browser driver. */
  media: MediaServerProcess;
  browser: Browser;
  /** A browser context that closeContexts() closes. */
  newContext(): Promise<BrowserContext>;
  /** After each test: pages left open keep decoding video, and on two cores the next test would measure them. */
  closeContexts(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A private Redis, a hub process (Node HTTP; `<name>-hub`), a media-server
 * process (`<name>-media`, with `mediaEnv` on top of a quiet log) and
 * Chromium with a fake camera and microphone.
 */
export async function startConsultStack(name: string, mediaEnv: Record<string, string> = {}): Promise<ConsultStack> {
  const redis = await startTestRedis();
  const [hub, media, browser] = await Promise.all([
    startHubProcess({ redisUrl: redis.url, nodeId: `${name}-hub`, server: 'node' }),
    startMediaServerProcess({ REDIS_URL: redis.url, MEDIA_NODE_ID: `${name}-media`, LOG_LEVEL: 'warn', ...mediaEnv }),
    launchMediaChromium(),
  ]);
  const contexts: BrowserContext[] = [];
  return {
    redis,
    hub,
    media,
    browser,
    async newContext() {
      const context = await browser.newContext();
      contexts.push(context);
      return context;
    },
    async closeContexts() {
      for (const context of contexts.splice(0)) await context.close().catch(() => undefined);
    },
    async stop() {
      await browser.close();
      await media.stop();
      await hub.stop();
      await redis.cleanup();
    },
  };
}
