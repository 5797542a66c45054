/**
 * A real browser publishing its camera through the SFU: headless Chromium
 * (a noisy fake camera) on the consultation page, served by a real hub process,
 * against a real media-server process and Redis. The SFU tells Chrome what
 * its camera may send (REMB, engine/video-bitrate.ts): without that, Chrome's
 * congestion control starts at 300 kbit/s and creeps up on its own. REMB is
 * werift's mechanism: on mediasoup the page's publisher follows transport-cc
 * feedback and the producer's encodings, so this runs on werift alone and
 * says so for mediasoup.
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
import { MEDIA_TEST_ENGINES, roomToken, startMediaServerProcess, type MediaServerProcess, WERIFT_ENGINE_ENV } from '@clinic-hub/test-kit/media-node';

let redis: TestRedis;
let hub: HubNodeProcess;
let media: MediaServerProcess;
let browser: Browser;
let context: BrowserContext | null = null;
let noisyCameraDir: string;
let noisyCamera: string;

beforeAll(async () => {
  noisyCameraDir = mkdtempSync(join(tmpdir(), 'noisy-camera-'));
  noisyCamera = join(noisyCameraDir, 'camera.y4m');
  // Chromium's own fake camera (a flat pattern) needs only ~180 kbit/s even at VP8's finest quantizer: its
  // bitrate says nothing about congestion control. A real camera's picture has sensor noise; so has this one.
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=24', '-vf', 'noise=alls=30:allf=t+u', '-t', '3', '-pix_fmt', 'yuv420p', noisyCamera]);
  redis = await startTestRedis();
  [hub, media, browser] = await Promise.all([
    startHubProcess({ redisUrl: redis.url, nodeId: 'bitrate-hub', server: 'node' }),
    startMediaServerProcess({ ...WERIFT_ENGINE_ENV, REDIS_URL: redis.url, MEDIA_NODE_ID: 'bitrate-media', LOG_LEVEL: 'warn' }),
    launchMediaChromium([`--use-file-for-fake-video-capture=${noisyCamera}`]),
  ]);
});

afterAll(async () => {
  await context?.close().catch(() => undefined);
  await browser?.close();
  await media?.stop();
  await hub?.stop();
  await redis?.cleanup();
  rmSync(noisyCameraDir, { recursive: true, force: true });
});

/** One series of the media-server's /metrics (the sum over its label sets matching `labels`). */
async function metric(name: string, labels = ''): Promise<number> {
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
  /** Chromium's bandwidth estimate (the selected candidate pair's availableOutgoingBitrate) and the encoder's target. */
  estimate: number;
  target: number;
  limitedBy: string;
  width: number;
}

/** What Chromium says about its camera stream. */
function chromiumOutbound(page: Page): Promise<ChromiumOutbound> {
  return page.evaluate(`(async () => {
    const out = { bytesSent: 0, estimate: 0, target: 0, limitedBy: '', width: 0 };
    for (const pc of window.__peerConnections) {
      (await pc.getStats()).forEach((s) => {
        if (s.type === 'outbound-rtp' && s.kind === 'video') {
          out.bytesSent += s.bytesSent ?? 0;
          out.target = s.targetBitrate ?? 0;
          out.limitedBy = s.qualityLimitationReason ?? '';
          out.width = s.frameWidth ?? 0;
        }
        if (s.type === 'candidate-pair' && s.nominated && s.availableOutgoingBitrate !== undefined) out.estimate = s.availableOutgoingBitrate;
      });
    }
    return out;
  })()`) as Promise<ChromiumOutbound>;
}

/** The bitrate arriving at the SFU (its own counter of RTP bytes from publishers) and what Chromium sent, over a window. */
async function measure(page: Page, seconds: number): Promise<{ arrivingKbps: number; chromiumVideoKbps: number; chromium: ChromiumOutbound }> {
  const before = { bytesIn: await metric('clinic_media_rtp_bytes_total', 'direction="in"'), chromium: await chromiumOutbound(page), at: Date.now() };
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const after = { bytesIn: await metric('clinic_media_rtp_bytes_total', 'direction="in"'), chromium: await chromiumOutbound(page), at: Date.now() };
  const elapsed = (after.at - before.at) / 1000;
  return {
    arrivingKbps: Math.round(((after.bytesIn - before.bytesIn) * 8) / elapsed / 1000),
    chromiumVideoKbps: Math.round(((after.chromium.bytesSent - before.chromium.bytesSent) * 8) / elapsed / 1000),
    chromium: after.chromium,
  };
}

describe.each(MEDIA_TEST_ENGINES)("a browser publisher's bitrate ($name)", ({ name: engine }) => {
  it('goes to the ceiling at once because the SFU sends REMB, and stays under it', { timeout: 90_000 }, async (ctx) => {
    onlyOnEngine(ctx, engine, 'werift', "REMB is werift's way of telling a publisher its bitrate; on mediasoup the page's camera follows transport-cc and its simulcast encodings' limits");
    context = await browser.newContext();
    await context.addInitScript({ content: KEEP_PEER_CONNECTIONS });
    const token = roomToken({ sub: 'doctor-bitrate', part: 'doctor', consult: 'bitrate-1', name: '山田 医師' });
    const page = await joinFromPage(context, consultUrl(hub.url, media.url, token));
    await new Promise((r) => setTimeout(r, 2000));
    // Without REMB Chrome starts at 300 kbit/s and creeps up by about 8% a second (measured: ~380 kbit/s over
    // seconds 2–10, ~800 over 10–18); with REMB it sends the ceiling (1500 by default) from the first second.
    const early = await measure(page, 8);
    const later = await measure(page, 8);
    const rembs = await metric('clinic_media_remb_sent_total');
    for (const [name, m] of [['2–10 s', early], ['10–18 s', later]] as const) {
      process.stdout.write(
        `publisher bitrate ${name} after joining: ${m.arrivingKbps} kbit/s arriving at the SFU (audio + video), ${m.chromiumVideoKbps} kbit/s of video sent by Chromium; ` +
          `Chromium's estimate ${Math.round(m.chromium.estimate / 1000)} kbit/s, encoder target ${Math.round(m.chromium.target / 1000)}, ${m.chromium.width} px wide, limited by "${m.chromium.limitedBy}"\n`,
      );
    }
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
});
