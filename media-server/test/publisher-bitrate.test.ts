/**
 * A real browser publishing its camera through the SFU: headless Chromium
 * (a noisy fake camera) on the consultation page, served by a real hub process,
 * against a real media-server process and Redis. The SFU tells Chrome what
 * its camera may send (REMB, engine/video-bitrate.ts): without that, Chrome's
 * congestion control starts at 300 kbit/s and creeps up on its own. REMB is
 * werift's mechanism. On mediasoup the page's camera sends simulcast layers
 * with their own caps (three from a 720p camera: 150, 450 and 1200 kbit/s;
 * two from a 480p one; web/src/lib/mediasoup-link.ts), starting at 1000
 * kbit/s (videoGoogleStartBitrate) and following transport-cc feedback:
 * there the test measures how soon it fills them.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHubProcess, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { consultUrl, joinFromPage, launchMediaChromium } from '@clinic-hub/test-kit/consult-browser';
import { onlyOnEngine } from '@clinic-hub/test-kit/engine-peer';
import { MEDIA_TEST_ENGINES, roomToken, startMediaServerProcess, type MediaServerProcess } from '@clinic-hub/test-kit/media-node';

let redis: TestRedis;
let hub: HubNodeProcess;
let browser: Browser;
let context: BrowserContext | null = null;
let noisyCameraDir: string;
/** Noisy cameras (y4m files Chromium plays as its camera), by size. */
const noisyCamera = (width: number, height: number) => join(noisyCameraDir, `camera-${width}x${height}.y4m`);

/**
 * On mediasoup, per camera: the layers it must send, what must arrive at the SFU over 2–10 s and 10–18 s after
 * joining (kbit/s, audio + video; measured 1942 and 1899 for 720p, whose layers are capped at 1800 kbit/s of video),
 * and the widest layer's width.
 */
const CAMERAS = [
  { width: 1280, height: 720, layers: ['r0', 'r1', 'r2'], earlyKbps: 1000, laterKbps: 1200 },
  { width: 640, height: 480, layers: ['r0', 'r1'], earlyKbps: 500, laterKbps: 600 },
] as const;

beforeAll(async () => {
  noisyCameraDir = mkdtempSync(join(tmpdir(), 'noisy-camera-'));
  // Chromium's own fake camera (a flat pattern) needs only ~180 kbit/s even at VP8's finest quantizer: its
  // bitrate says nothing about congestion control. A real camera's picture has sensor noise; so have these.
  for (const { width, height } of CAMERAS) {
    execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', `testsrc2=size=${width}x${height}:rate=24`, '-vf', 'noise=alls=30:allf=t+u', '-t', '2', '-pix_fmt', 'yuv420p', noisyCamera(width, height)]);
  }
  redis = await startTestRedis();
  [hub, browser] = await Promise.all([
    startHubProcess({ redisUrl: redis.url, nodeId: 'bitrate-hub', server: 'node' }),
    launchMediaChromium([`--use-file-for-fake-video-capture=${noisyCamera(1280, 720)}`]),
  ]);
});

afterAll(async () => {
  await context?.close().catch(() => undefined);
  await browser?.close();
  await hub?.stop();
  await redis?.cleanup();
  rmSync(noisyCameraDir, { recursive: true, force: true });
});

/** One series of the media-server's /metrics (the sum over its label sets matching `labels`). */
async function metric(media: MediaServerProcess, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${media.url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) || !line.includes(labels)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** Set up before the page's scripts run: keeps the page's peer connections, to read Chromium's own statistics. */
const KEEP_PEER_CONNECTIONS = `{
  const Native = window.RTCPeerConnection;
  const list = (window.__peerConnections = []);
  window.RTCPeerConnection = class extends Native {
    constructor(...args) {
      super(...args);
      list.push(this);
    }
  };
}`;

interface ChromiumOutbound {
  bytesSent: number;
  /** Per simulcast layer (rid; '' without simulcast): bytes sent. */
  layers: Record<string, number>;
  /** Chromium's bandwidth estimate (the selected candidate pair's availableOutgoingBitrate) and the encoders' targets together. */
  estimate: number;
  target: number;
  /** Of the widest layer. */
  limitedBy: string;
  width: number;
}

/** What Chromium says about its camera stream. */
function chromiumOutbound(page: Page): Promise<ChromiumOutbound> {
  return page.evaluate(`(async () => {
    const out = { bytesSent: 0, layers: {}, estimate: 0, target: 0, limitedBy: '', width: 0 };
    for (const pc of window.__peerConnections) {
      (await pc.getStats()).forEach((s) => {
        if (s.type === 'outbound-rtp' && s.kind === 'video') {
          out.bytesSent += s.bytesSent ?? 0;
          out.layers[s.rid ?? ''] = (out.layers[s.rid ?? ''] ?? 0) + (s.bytesSent ?? 0);
          out.target += s.targetBitrate ?? 0;
          if ((s.frameWidth ?? 0) >= out.width) {
            out.limitedBy = s.qualityLimitationReason ?? '';
            out.width = s.frameWidth ?? 0;
          }
        }
        if (s.type === 'candidate-pair' && s.nominated && s.availableOutgoingBitrate !== undefined) out.estimate = s.availableOutgoingBitrate;
      });
    }
    return out;
  })()`) as Promise<ChromiumOutbound>;
}

/** The bitrate arriving at the SFU (its own counter of RTP bytes from publishers) and what Chromium sent, over a window. */
async function measure(
  media: MediaServerProcess,
  page: Page,
  seconds: number,
): Promise<{ arrivingKbps: number; chromiumVideoKbps: number; layerKbps: Record<string, number>; chromium: ChromiumOutbound }> {
  const before = { bytesIn: await metric(media, 'clinic_media_rtp_bytes_total', 'direction="in"'), chromium: await chromiumOutbound(page), at: Date.now() };
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const after = { bytesIn: await metric(media, 'clinic_media_rtp_bytes_total', 'direction="in"'), chromium: await chromiumOutbound(page), at: Date.now() };
  const elapsed = (after.at - before.at) / 1000;
  return {
    arrivingKbps: Math.round(((after.bytesIn - before.bytesIn) * 8) / elapsed / 1000),
    chromiumVideoKbps: Math.round(((after.chromium.bytesSent - before.chromium.bytesSent) * 8) / elapsed / 1000),
    layerKbps: Object.fromEntries(Object.entries(after.chromium.layers).map(([rid, bytes]) => [rid, Math.round(((bytes - (before.chromium.layers[rid] ?? 0)) * 8) / elapsed / 1000)])),
    chromium: after.chromium,
  };
}

/** Prints one window's figures. */
function report(window: string, m: Awaited<ReturnType<typeof measure>>) {
  const layers = Object.entries(m.layerKbps).filter(([rid]) => rid !== '');
  process.stdout.write(
    `publisher bitrate ${window} after joining: ${m.arrivingKbps} kbit/s arriving at the SFU (audio + video), ${m.chromiumVideoKbps} kbit/s of video sent by Chromium` +
      `${layers.length > 0 ? ` (${layers.map(([rid, kbps]) => `${rid} ${kbps}`).join(', ')})` : ''}; ` +
      `Chromium's estimate ${Math.round(m.chromium.estimate / 1000)} kbit/s, encoder target ${Math.round(m.chromium.target / 1000)}, ${m.chromium.width} px wide, limited by "${m.chromium.limitedBy}"\n`,
  );
}

describe.each(MEDIA_TEST_ENGINES)("a browser publisher's bitrate ($name)", ({ name: engine, env }) => {
  let media: MediaServerProcess;

  beforeAll(async () => {
    media = await startMediaServerProcess({ ...env, REDIS_URL: redis.url, MEDIA_NODE_ID: `bitrate-${engine}`, LOG_LEVEL: 'warn' });
  });

  afterAll(async () => {
    await context?.close().catch(() => undefined);
    context = null;
    await media?.stop();
  });

  async function publish(consult: string, from = browser): Promise<Page> {
    context = await from.newContext();
    await context.addInitScript({ content: KEEP_PEER_CONNECTIONS });
    const token = roomToken({ sub: 'doctor-bitrate', part: 'doctor', consult, name: '山田 医師' });
    const page = await joinFromPage(context, consultUrl(hub.url, media.url, token));
    await new Promise((r) => setTimeout(r, 2000));
    return page;
  }

  it('goes to the ceiling at once because the SFU sends REMB, and stays under it', { timeout: 90_000 }, async (ctx) => {
    onlyOnEngine(ctx, engine, 'werift', "REMB is werift's way of telling a publisher its bitrate; on mediasoup the page's camera follows transport-cc and its simulcast encodings' limits (next test)");
    const page = await publish('bitrate-1');
    // Without REMB Chrome starts at 300 kbit/s and creeps up by about 8% a second (measured: ~380 kbit/s over
    // seconds 2–10, ~800 over 10–18); with REMB it sends the ceiling (1500 by default) from the first second.
    const early = await measure(media, page, 8);
    const later = await measure(media, page, 8);
    const rembs = await metric(media, 'clinic_media_remb_sent_total');
    report('2–10 s', early);
    report('10–18 s', later);
    process.stdout.write(`${rembs} REMBs sent; thresholds: > 800 kbit/s over 2–10 s, > 1000 over 10–18 s\n`);
    // goog-remb in the server's offer and in Chromium's answer (this Chromium heeds a REMB even without it; others may not).
    const sdp = (await page.evaluate('[window.__peerConnections[0].remoteDescription.sdp, window.__peerConnections[0].localDescription.sdp]')) as [string, string];
    for (const side of sdp) expect(side).toMatch(/^a=rtcp-fb:\d+ goog-remb\r?$/m);
    expect(rembs).toBeGreaterThanOrEqual(10);
    expect(early.arrivingKbps).toBeGreaterThan(800);
    expect(later.arrivingKbps).toBeGreaterThan(1000);
    // Chromium takes the REMB as its ceiling.
    expect(later.chromium.estimate).toBeLessThanOrEqual(1_500_000);
  });

  it('fills its simulcast layers within seconds, following transport-cc, the top one at the camera\'s full resolution', { timeout: 120_000 }, async (ctx) => {
    onlyOnEngine(ctx, engine, 'mediasoup', 'werift forwards one layer and tells the publisher its bitrate by REMB (previous test)');
    for (const camera of CAMERAS) {
      const own = camera.width === 1280 ? browser : await launchMediaChromium([`--use-file-for-fake-video-capture=${noisyCamera(camera.width, camera.height)}`]);
      try {
        const page = await publish(`bitrate-${camera.height}p`, own);
        const early = await measure(media, page, 8);
        const later = await measure(media, page, 8);
        report(`${camera.width}×${camera.height}, 2–10 s`, early);
        report(`${camera.width}×${camera.height}, 10–18 s`, later);
        process.stdout.write(`thresholds: ${camera.layers.join(', ')} sending, > ${camera.earlyKbps} kbit/s over 2–10 s, > ${camera.laterKbps} over 10–18 s\n`);
        expect(Object.keys(later.layerKbps).sort()).toEqual(camera.layers);
        for (const [rid, kbps] of Object.entries(later.layerKbps)) expect(kbps, `${camera.height}p layer ${rid}`).toBeGreaterThan(50);
        expect(early.arrivingKbps).toBeGreaterThan(camera.earlyKbps);
        expect(later.arrivingKbps).toBeGreaterThan(camera.laterKbps);
        // The top layer at full resolution (before: a 640×480 camera's top layer was 320 wide).
        expect(later.chromium.width).toBe(camera.width);
      } finally {
        await context?.close().catch(() => undefined);
        context = null;
        if (own !== browser) await own.close();
      }
    }
  });
});
