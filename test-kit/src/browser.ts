import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Sound may play without a click, as on a display PC started in kiosk mode (web/README.md). */
const AUTOPLAY_FLAG = '--autoplay-policy=no-user-gesture-required';

/** The flags DESIGN.md lists. */
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * A fake camera and microphone (a moving test pattern and a beep, or the WAV
 * file given) with no permission prompt, and loopback ICE candidates allowed
 * (the media-server runs on this machine).
 */
export function mediaFlags(microphoneWav?: string): string[] {
  return [
    '--use-fake-ui-for-media-stream',
    '--use-fake-device-for-media-stream',
    '--allow-loopback-in-peer-connection',
    ...(microphoneWav ? [`--use-file-for-fake-audio-capture=${microphoneWav}`] : []),
  ];
}

/**
 * Headless Debian Chromium with DESIGN.md's flags, and any more given
 * (mediaFlags for consultations). Sound may play without a click unless
 * `autoplay: false` (Chromium's own policy: silent until a click). `executablePath`: another
 * way to start it (netns.ts starts it inside a network namespace).
 */
export function launchChromium(extraFlags: string[] = [], options: { autoplay?: boolean; executablePath?: string } = {}): Promise<Browser> {
  const autoplay = (options.autoplay ?? true) ? [AUTOPLAY_FLAG] : [];
  return chromium.launch({ executablePath: options.executablePath ?? CHROMIUM_PATH, args: [...CHROMIUM_FLAGS, ...autoplay, ...extraFlags] });
}

/** Uncaught exceptions and console errors of a page (a CSP refusal shows up here), for asserting none happened. */
export function collectPageProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()}`);
  });
  return problems;
}

/** Every WebSocket frame the page receives and sends, as text. */
export function recordFrames(page: Page): { received: string[]; sent: string[] } {
  const frames = { received: [] as string[], sent: [] as string[] };
  page.on('websocket', (ws) => {
    ws.on('framereceived', (frame) => frames.received.push(String(frame.payload)));
    ws.on('framesent', (frame) => frames.sent.push(String(frame.payload)));
  });
  return frames;
}
