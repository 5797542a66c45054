/**
 * The consultation page over real network constraints (issue #13): one
 * participant's Chromium runs in a network namespace of the test's own
 * (test-kit/src/netns.ts) whose link the test shapes with tc, whose UDP it
 * blocks with nftables, and which it takes down and moves to another
 * address; the others run on this machine. Real hub, real media-server
 * process, real Redis. What each browser receives is read from Chromium's
 * own WebRTC statistics (test-kit/src/webrtc-stats.ts): the decoded frame
 * size of each remote camera (the simulcast layer it gets) and the selected
 * ICE candidate pair.
 *
 * Every server listens on all addresses and the media-server announces this
 * machine's end of the namespace's link, which the browsers on this machine
 * reach as well (it is one of this machine's addresses, so the media-server's
 * WebRtcServer listens on it alone: create-engine.ts, mediaListenIp).
 *
 * Simulcast, ICE over TCP and ICE restarts are mediasoup's: on a werift node
 * those tests skip and say so; joining from the namespace runs on both.
 */
import { cpus, loadavg } from 'node:os';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mediaFlags, recordFrames } from '@clinic-hub/test-kit/browser';
import { launchMediaChromium } from '@clinic-hub/test-kit/consult-browser';
import { startHubProcess, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { roomToken, startMediaServerProcess, type MediaServerProcess } from '@clinic-hub/test-kit/media-node';
import { createNetns, netnsSkipReason, secureOriginFlag, type Netns } from '@clinic-hub/test-kit/netns';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { waitFor } from '@clinic-hub/test-kit/wait';
import { iceRoutes, keepPeerConnections, receivedVideo, sentVideo, type ReceivedVideo } from '@clinic-hub/test-kit/webrtc-stats';

const skip = await netnsSkipReason();
if (skip) console.warn(`consult-network.test.ts: SKIPPED — ${skip}`);

let redis: TestRedis;
let netns: Netns;
let hub: HubNodeProcess;
let media: MediaServerProcess;
let engine: string;
let hostBrowser: Browser;
let nsBrowser: Browser;
let hubOrigin: string;
let mediaOrigin: string;
const contexts: BrowserContext[] = [];

describe.skipIf(skip !== null)('the consultation page with one participant on a network of its own', () => {
  beforeAll(async () => {
    [redis, netns] = await Promise.all([startTestRedis(), createNetns()]);
    [hub, media] = await Promise.all([
      startHubProcess({ redisUrl: redis.url, nodeId: 'consult-net-hub', server: 'node', env: { HUB_HOST: '0.0.0.0' } }),
      startMediaServerProcess({
        REDIS_URL: redis.url,
        MEDIA_NODE_ID: 'consult-net-media',
        MEDIA_HOST: '0.0.0.0',
        MEDIA_ANNOUNCED_IP: netns.hostAddress,
        MEDIA_DEBUG_ENDPOINT: '1',
        // Joins, leaves, lost sockets and resumes are logged at info: a failure shows them.
        LOG_LEVEL: 'info',
      }),
    ]);
    if (media.process.exitCode !== null) throw new Error(`the media-server exited: ${media.logs()}`);
    hubOrigin = `http://${netns.hostAddress}:${hub.port}`;
    mediaOrigin = `http://${netns.hostAddress}:${new URL(media.url).port}`;
    engine = ((await (await fetch(`${media.url}/healthz`)).json()) as { engine: string }).engine;
    // Pages come from the link's address, not localhost: the camera needs them treated as secure.
    const secure = secureOriginFlag([hubOrigin, mediaOrigin]);
    [hostBrowser, nsBrowser] = await Promise.all([launchMediaChromium([secure]), netns.launchChromium([...mediaFlags(), secure])]);
  }, 120_000);

  afterEach(async () => {
    for (const context of contexts.splice(0)) await context.close().catch(() => undefined);
    await netns.shape({ down: null, up: null });
    await netns.unblockUdp();
  });

  afterAll(async () => {
    await hostBrowser?.close();
    await nsBrowser?.close();
    await netns?.close();
    await media?.stop();
    await hub?.stop();
    await redis?.cleanup();
  });

  interface Joined {
    sub: string;
    page: Page;
    /** Signalling frames this page received. */
    frames: { received: string[]; sent: string[] };
    /** The page's sockets opening and closing, its connection states and its warnings, with the time since the join: what a failure prints. */
    timeline: { lines: string[]; mark(what: string): void };
  }

  /** Records `timeline` (see Joined) for a page. */
  async function recordTimeline(page: Page): Promise<Joined['timeline']> {
    const start = Date.now();
    const lines: string[] = [];
    const at = (line: string) => lines.push(`${((Date.now() - start) / 1000).toFixed(1)}s ${line}`);
    page.on('console', (message) => {
      if (message.type() === 'warning' || message.type() === 'error') at(`console.${message.type()}: ${message.text().slice(0, 200)}`);
    });
    page.on('websocket', (ws) => {
      if (!ws.url().endsWith('/signal')) return;
      at(`socket opened`);
      ws.on('framesent', (frame) => {
        const text = String(frame.payload);
        if (!text.includes('"ping"') && !text.includes('consumer-view')) at(`sent ${text.slice(0, 90)}`);
      });
      ws.on('socketerror', (error) => at(`socket error ${error}`));
      ws.on('close', () => at('socket closed'));
    });
    await page.exposeFunction('__connectionState', (state: string) => at(`state ${state}`));
    // A string: this file is compiled without the DOM's types.
    await page.addInitScript({
      content: `addEventListener('DOMContentLoaded', () => {
        const root = document.documentElement;
        new MutationObserver(() => __connectionState(root.dataset.connection || '')).observe(root, { attributes: true, attributeFilter: ['data-connection'] });
      });`,
    });
    return { lines, mark: (what) => at(`test: ${what}`) };
  }

  /** Opens the page in a browser (its own context), passes the device check and joins. */
  async function join(browser: Browser, consult: string, sub: string, part: 'doctor' | 'patient' = 'patient'): Promise<Joined> {
    const context = await browser.newContext();
    contexts.push(context);
    await keepPeerConnections(context);
    const page = await context.newPage();
    const frames = recordFrames(page);
    const timeline = await recordTimeline(page);
    // Large tiles, so a subscriber with room to spare is sent the top layer (the SFU sends no more than a tile shows).
    await page.setViewportSize({ width: 1600, height: 1000 });
    const token = roomToken({ sub, part, consult, name: `Name of ${sub}` });
    await page.goto(`${hubOrigin}/consult#${new URLSearchParams({ media: mediaOrigin, token }).toString()}`);
    await page.waitForSelector('html[data-stage="precheck"]', { timeout: 30_000 });
    await page.click('#join-button');
    await page.waitForSelector('html[data-connection="live"]', { timeout: 45_000 });
    return { sub, page, frames, timeline };
  }

  /** The page's decoded cameras by participant (each must be on a tile). */
  async function cameras(page: Page): Promise<Map<string, ReceivedVideo>> {
    const videos = (await receivedVideo(page)).filter((v) => v.participant !== null && v.framesDecoded > 0);
    return new Map(videos.map((v) => [v.participant!, v]));
  }

  /** Waits until every page decodes every other one's camera, and keeps decoding (frames still rising a moment later). */
  async function everyoneDecoding(people: Joined[], timeoutMs = 45_000): Promise<void> {
    try {
      await decodingEverywhere(people, timeoutMs);
    } catch (error) {
      // What the cameras send and what the server forwards, for whoever reads the failure.
      const sent = await Promise.all(
        people.map(async (p) => {
          const state = await p.page.evaluate('document.documentElement.dataset.connection').catch(() => '?');
          const signals = p.frames.received.filter((f) => !f.includes('"pong"')).slice(-6).map((f) => f.slice(0, 160));
          return `${p.sub} (page ${String(state)}) sends ${JSON.stringify(await sentVideo(p.page).catch(() => []))}, last signals ${JSON.stringify(signals)}, timeline ${JSON.stringify(p.timeline.lines.slice(-40))}`;
        }),
      );
      const sessions = media.logs().split('\n').filter((line) => /participant (joined|left|resumed)|signalling lost|media connection failed/.test(line)).slice(-12);
      throw new Error(`${(error as Error).message}; ${sent.join('; ')}; server: ${await serverLayers().catch((e: Error) => e.message)}; server log: ${sessions.join(' | ')}`);
    }
  }

  async function decodingEverywhere(people: Joined[], timeoutMs: number): Promise<void> {
    for (const viewer of people) {
      const others = people.filter((p) => p !== viewer).map((p) => p.sub);
      const first = await waitFor(
        `${viewer.sub} decoding ${others.join(', ')}`,
        async () => {
          const seen = await cameras(viewer.page);
          return others.every((o) => seen.has(o)) && seen;
        },
        timeoutMs,
      );
      await waitFor(
        `${viewer.sub} still decoding ${others.join(', ')}`,
        async () => {
          const seen = await cameras(viewer.page);
          return others.every((o) => (seen.get(o)?.framesDecoded ?? 0) > first.get(o)!.framesDecoded + 5) || undefined;
        },
        timeoutMs,
      );
    }
  }

  /**
   * Each video consumer's layers as the server has them (MEDIA_DEBUG_ENDPOINT), by `<viewer><-<camera>`: what it
   * sends now and what the viewer's page asked for (its tile's size), each as spatial × 10 + temporal.
   */
  async function consumerLayers(): Promise<Map<string, { current: number; preferred: number }>> {
    type Layers = { spatialLayer: number; temporalLayer?: number } | null;
    const debug = (await (await fetch(`${media.url}/debug/media`)).json()) as {
      rooms: { participants: { participant: string; consumers: { participant: string; kind: string; currentLayers: Layers; preferredLayers: Layers }[] }[] }[];
    };
    const rank = (l: Layers) => (l ? l.spatialLayer * 10 + (l.temporalLayer ?? 0) : -1);
    return new Map(
      debug.rooms.flatMap((room) =>
        room.participants.flatMap((p) =>
          p.consumers.filter((c) => c.kind === 'video').map((c) => [`${p.participant}<-${c.participant}`, { current: rank(c.currentLayers), preferred: rank(c.preferredLayers) }] as const),
        ),
      ),
    );
  }

  /** The server's own view of each consumer's simulcast layers (MEDIA_DEBUG_ENDPOINT), compact: for the log when a wait fails. */
  async function serverLayers(): Promise<string> {
    const debug = (await (await fetch(`${media.url}/debug/media`)).json()) as {
      rooms: { participants: { participant: string; producers: { source: string; score: unknown }[]; consumers: { participant: string; kind: string; currentLayers: unknown; preferredLayers: unknown }[] }[] }[];
    };
    return JSON.stringify(
      debug.rooms.flatMap((room) =>
        room.participants.map((p) => ({
          at: p.participant,
          producers: p.producers.filter((x) => x.source === 'camera').map((x) => x.score),
          consumers: p.consumers.filter((c) => c.kind === 'video').map((c) => ({ of: c.participant, current: c.currentLayers, preferred: c.preferredLayers })),
        })),
      ),
    );
  }

  /** waitFor, with the server's layers and what each page's encoder sends in the error when it times out. */
  async function waitWithLayers<T>(what: string, check: () => Promise<T | false | undefined>, timeoutMs: number, pages: Joined[] = []): Promise<T> {
    try {
      return await waitFor(what, check, timeoutMs);
    } catch (error) {
      const sent = await Promise.all(pages.map(async (p) => `${p.sub} sends ${JSON.stringify(await sentVideo(p.page).catch(() => []))}`));
      throw new Error(`${(error as Error).message}; server layers: ${await serverLayers().catch((e: Error) => e.message)}; ${sent.join('; ')}`);
    }
  }

  const leftEvents = (joined: Joined, sub: string) =>
    joined.frames.received.filter((f) => f.includes('"participant-left"') && f.includes(JSON.stringify(sub)));

  it('a participant joins from its namespace: every stream decodes both ways, over the link', { timeout: 150_000 }, async () => {
    const consult = 'net-join';
    const doctor = await join(hostBrowser, consult, 'doctor-1', 'doctor');
    const far = await join(nsBrowser, consult, 'patient-far');
    await everyoneDecoding([doctor, far]);
    const routes = (await iceRoutes(far.page)).filter((r) => r.local !== null);
    expect(routes.length).toBeGreaterThan(0);
    for (const route of routes) {
      expect(route.local!.address).toBe(netns.address);
      expect(route.remote!.address).toBe(netns.hostAddress);
    }
  });

  describe('on mediasoup', () => {
    const notMediasoup = () => (engine !== 'mediasoup' ? `the media-server runs ${engine}, which has no simulcast, ICE over TCP or ICE restart` : null);

    it('simulcast: a subscriber whose downlink is constrained gets a lower layer while the others keep theirs, and gets it back when the constraint lifts', { timeout: 240_000 }, async (ctx) => {
      const reason = notMediasoup();
      if (reason) {
        console.warn(`consult-network.test.ts simulcast: SKIPPED — ${reason}`);
        return ctx.skip();
      }
      const consult = 'net-simulcast';
      const doctor = await join(hostBrowser, consult, 'doctor-1', 'doctor');
      const patient = await join(hostBrowser, consult, 'patient-1');
      const far = await join(nsBrowser, consult, 'patient-far');
      const people = [doctor, patient, far];
      await everyoneDecoding(people);

      /** Each camera's width on the far page next to its width on the other viewer's page, at the same moment. */
      const compare = async () => {
        const [onFar, onDoctor, onPatient] = await Promise.all([cameras(far.page), cameras(doctor.page), cameras(patient.page)]);
        return [
          { camera: doctor.sub, far: onFar.get(doctor.sub)?.frameWidth ?? null, near: onPatient.get(doctor.sub)?.frameWidth ?? null },
          { camera: patient.sub, far: onFar.get(patient.sub)?.frameWidth ?? null, near: onDoctor.get(patient.sub)?.frameWidth ?? null },
          { camera: far.sub, far: null, near: onDoctor.get(far.sub)?.frameWidth ?? null, nearToo: onPatient.get(far.sub)?.frameWidth ?? null },
        ];
      };
      /** The width of a camera's lowest layer as its page sends it now (Infinity while it sends none). */
      const lowestSent = async (camera: Joined) => Math.min(...(await sentVideo(camera.page)).filter((v) => v.rid === 'r0' && v.frameWidth).map((v) => v.frameWidth!));
      // Unconstrained, the far page gets what the others get (tiles large enough for more), and that is more than the lowest layer.
      const unconstrained = async () => {
        const c = await compare();
        const lowest = new Map([[doctor.sub, await lowestSent(doctor)], [patient.sub, await lowestSent(patient)]]);
        return c.slice(0, 2).every((x) => x.far !== null && x.far === x.near && x.near > lowest.get(x.camera)!) && c;
      };
      const before = await waitFor('the far page getting the same layers as the others, above the lowest', unconstrained, 90_000).catch(async (error: Error) => {
        // Only one thing excuses it: the cameras themselves send nothing above their lowest layer because Chromium's
        // own estimate of its uplink says so, which on a machine with more runnable processes than cores is its
        // delay-based estimator reading scheduling delay as congestion. Then there is nothing to compare.
        const sent = (await Promise.all(people.map((p) => sentVideo(p.page)))).flat();
        const busy = loadavg()[0]! > cpus().length;
        const upperLayersIdle = sent.filter((v) => v.rid !== 'r0' && (v.frameWidth ?? 0) > 0).length === 0;
        if (busy && upperLayersIdle) return { skip: `this machine is too busy (load average ${loadavg()[0]!.toFixed(1)} on ${cpus().length} cores): every camera sends only its lowest layer (Chromium: qualityLimitationReason ${[...new Set(sent.map((v) => v.qualityLimitationReason))].join('/')}), so no subscriber can be given less than another` };
        return waitWithLayers('the far page getting the same layers as the others, above the lowest', unconstrained, 1, people).catch((detailed: Error) => {
          throw new Error(`${error.message}; ${detailed.message}`);
        });
      });
      if ('skip' in before) {
        console.warn(`consult-network.test.ts simulcast: SKIPPED — ${before.skip}`);
        return ctx.skip();
      }
      process.stdout.write(`simulcast, unconstrained: ${JSON.stringify(before)}\n`);

      await netns.shape({ down: { kbps: 500, queueMs: 200 } });
      // The far page gets a lower layer (spatial or temporal) than its tiles ask for, as the server decides it (its
      // estimate of the far downlink), and every other viewer gets what its tiles ask for: one poor link lowers
      // nobody else's picture. Read from the server's consumers, not from widths: what a viewer asks for follows its
      // tile (the layout changes with the active speaker), and a camera's top layer is its own (Chromium sends 480 or
      // 320 on a busy machine).
      const nearPairs = [[doctor.sub, patient.sub], [patient.sub, doctor.sub], [doctor.sub, far.sub], [patient.sub, far.sub]] as const;
      const constrained = await waitWithLayers('the far page getting less than it asks for, the others what they ask for', async () => {
        const layers = await consumerLayers();
        const farLower = [doctor.sub, patient.sub].every((camera) => {
          const l = layers.get(`${far.sub}<-${camera}`);
          return l !== undefined && l.current >= 0 && l.current < l.preferred;
        });
        const othersKeep = nearPairs.every(([viewer, camera]) => {
          const l = layers.get(`${viewer}<-${camera}`);
          return l !== undefined && l.current === l.preferred;
        });
        const c = await compare();
        return farLower && othersKeep && c.slice(0, 2).every((x) => x.far !== null && x.near !== null) && { pages: c, server: Object.fromEntries(layers) };
      }, 60_000, people);
      process.stdout.write(`simulcast, far downlink 500 kbit/s: ${JSON.stringify(constrained)}\n`);
      // Still a picture: a lower layer, not a frozen one.
      const decodedThen = await cameras(far.page);
      await waitFor('the far page still decoding under the constraint', async () => {
        const now = await cameras(far.page);
        return [doctor.sub, patient.sub].every((s) => now.get(s)!.framesDecoded > decodedThen.get(s)!.framesDecoded + 5) || undefined;
      }, 30_000);

      await netns.shape({ down: null });
      const lifted = await waitWithLayers('the far page getting what it asks for again', async () => {
        const layers = await consumerLayers();
        const farBack = [doctor.sub, patient.sub].every((camera) => {
          const l = layers.get(`${far.sub}<-${camera}`);
          return l !== undefined && l.current === l.preferred;
        });
        return farBack && { pages: await compare(), server: Object.fromEntries(layers) };
      }, 90_000, people);
      process.stdout.write(`simulcast, constraint lifted: ${JSON.stringify(lifted)}\n`);
      expect(leftEvents(doctor, far.sub)).toEqual([]);
    });

    it('UDP blocked: the participant connects over TCP, through the same port the others use over UDP', { timeout: 180_000 }, async (ctx) => {
      const reason = notMediasoup();
      if (reason) {
        console.warn(`consult-network.test.ts ICE over TCP: SKIPPED — ${reason}`);
        return ctx.skip();
      }
      const consult = 'net-tcp-only';
      await netns.blockUdp();
      const doctor = await join(hostBrowser, consult, 'doctor-1', 'doctor');
      const far = await join(nsBrowser, consult, 'patient-far');
      await everyoneDecoding([doctor, far], 60_000);

      const nearRoutes = (await iceRoutes(doctor.page)).filter((r) => r.remote !== null);
      const farRoutes = (await iceRoutes(far.page)).filter((r) => r.remote !== null);
      expect(nearRoutes.length).toBeGreaterThan(0);
      expect(farRoutes.length).toBeGreaterThan(0);
      const udpPorts = new Set(nearRoutes.map((r) => (expect(r.remote!.protocol).toBe('udp'), r.remote!.port)));
      for (const route of farRoutes) {
        expect(route.local!.protocol).toBe('tcp');
        expect(route.remote!.protocol).toBe('tcp');
        expect(route.remote!.address).toBe(netns.hostAddress);
        // One port per worker, UDP and TCP alike: what a firewall opens.
        expect(udpPorts.has(route.remote!.port)).toBe(true);
      }
      // It did try UDP first, and the namespace dropped it.
      expect(await netns.udpDropped()).toBeGreaterThan(0);
      process.stdout.write(`ICE over TCP: far ${JSON.stringify(farRoutes.map((r) => [r.local, r.remote]))}; UDP packets dropped ${await netns.udpDropped()}\n`);
    });

    it('UDP lost mid-call for 15 s (signalling kept): the page restarts ICE on the same transports, media resumes, nobody sees the participant leave', { timeout: 240_000 }, async (ctx) => {
      const reason = notMediasoup();
      if (reason) {
        console.warn(`consult-network.test.ts UDP outage: SKIPPED — ${reason}`);
        return ctx.skip();
      }
      const consult = 'net-udp-outage';
      const doctor = await join(hostBrowser, consult, 'doctor-1', 'doctor');
      const far = await join(nsBrowser, consult, 'patient-far');
      const people = [doctor, far];
      await everyoneDecoding(people);
      const before = await iceRoutes(far.page);
      const joinsBefore = doctor.frames.received.filter((f) => f.includes('"participant-joined"')).length;
      // Long enough for Chromium to call ICE disconnected and the page to restart it (2 s later); the restart may find
      // the TCP candidates on the same port while UDP is still dropped. Which transports were on TCP meanwhile is
      // sampled: Chromium may move a transport to its TCP pair by itself, before the page's 2 s grace runs out.
      await netns.blockUdp();
      const onTcp = new Set<number>();
      const outageEnds = Date.now() + 15_000;
      while (Date.now() < outageEnds) {
        for (const route of await iceRoutes(far.page)) if (route.connectionState === 'connected' && route.local?.protocol === 'tcp') onTcp.add(route.pc);
        await new Promise((r) => setTimeout(r, 1000));
      }
      await netns.unblockUdp();
      await everyoneDecoding(people, 90_000);
      const after = await iceRoutes(far.page);
      process.stdout.write(`UDP outage: far page routes ${JSON.stringify(after)}; on TCP during the outage: ${JSON.stringify([...onTcp])}\n`);
      // The same peer connections, connected again. Each came through the outage one of two ways: its ICE was
      // restarted (new credentials), or Chromium moved it to its TCP pair by itself (seen on TCP meanwhile).
      expect(after.map((r) => r.pc)).toEqual(before.map((r) => r.pc));
      for (const route of after) {
        expect(route.connectionState).toBe('connected');
        expect(route.ufrags.length > 1 || onTcp.has(route.pc), `peer connection ${route.pc}: an ICE restart, or a move to TCP during the outage`).toBe(true);
      }
      expect(leftEvents(doctor, far.sub)).toEqual([]);
      expect(doctor.frames.received.filter((f) => f.includes('"participant-joined"')).length).toBe(joinsBefore);
    });

    it('network flap: the link drops and the address changes; ICE restarts on the same transports, nobody sees the participant leave', { timeout: 240_000 }, async (ctx) => {
      // The address change kills the page's signalling socket without a word (its address is gone): the page notices
      // that its requests go unanswered (a ping every 5 s), resumes its session on a new socket (join.resume) and
      // restarts ICE; the server kept the participant meanwhile (MEDIA_RESUME_GRACE_MS). Until 2026-12-06 this failed
      // about 1 run in 8 under load; see the notes at media-client.ts's abandon() and JOIN_TIMEOUT_MS.
      const reason = notMediasoup();
      if (reason) {
        console.warn(`consult-network.test.ts flap: SKIPPED — ${reason}`);
        return ctx.skip();
      }
      const consult = 'net-flap';
      const doctor = await join(hostBrowser, consult, 'doctor-1', 'doctor');
      const far = await join(nsBrowser, consult, 'patient-far');
      const people = [doctor, far];
      await everyoneDecoding(people);
      const pcsBefore = (await iceRoutes(far.page)).map((r) => r.pc);
      const joinsBefore = doctor.frames.received.filter((f) => f.includes('"participant-joined"')).length;

      // Down long enough for ICE to notice (Chromium calls a pair disconnected after a few seconds without answers,
      // the page restarts ICE 2 s later), short of two missed signalling pings (the server would drop the participant).
      far.timeline.mark('link down');
      await netns.flap(6000);
      far.timeline.mark('link up');
      await everyoneDecoding(people, 90_000);

      // A new address: the old candidates are gone for good.
      const before = netns.address;
      far.timeline.mark('address change');
      const after = await netns.changeAddress();
      far.timeline.mark('address changed');
      await everyoneDecoding(people, 90_000);
      far.timeline.mark('decoding again');
      // Back on UDP: the server answers from the address the browser sent to (create-engine.ts, mediaListenIp), so
      // the restarted ICE does not settle for TCP (Chromium may nominate a TCP pair first and move to UDP after).
      const routes = await waitFor('the far page on UDP over its new address', async () => {
        const now = await iceRoutes(far.page);
        return now.every((r) => r.local?.protocol === 'udp' && r.local.address === after) && now;
      }, 30_000).catch(async (error: Error) => {
        throw new Error(`${error.message}: ${JSON.stringify(await iceRoutes(far.page))}; far page: ${far.timeline.lines.join(' | ')}`);
      });
      const resumedAt = far.timeline.lines.find((line, i) => i > far.timeline.lines.findIndex((l) => l.includes('test: address changed')) && line.includes('state live'));
      process.stdout.write(`flap: address ${before} → ${after}; far page ${far.timeline.lines.slice(far.timeline.lines.findIndex((l) => l.includes('test: link down'))).filter((l) => !/consumer-resume|consumer-view/.test(l)).join(' | ')} (${resumedAt ? 'resumed' : 'not resumed'}); routes ${JSON.stringify(routes.map((r) => [r.local, r.remote]))}\n`);

      const facts = () => `far page: ${far.timeline.lines.join(' | ')}; server: ${media.logs().split('\n').filter((line) => /participant (joined|left|resumed)|signalling lost|media connection failed/.test(line)).slice(-12).join(' | ')}`;
      // The same peer connections (transports), now over the new address, with their ICE restarted.
      expect(routes.map((r) => r.pc)).toEqual(pcsBefore);
      for (const route of routes) {
        expect(route.remote!.protocol).toBe('udp');
        expect(route.remote!.address).toBe(netns.hostAddress);
        expect(route.ufrags.length, `peer connection ${route.pc}'s ICE credentials`).toBeGreaterThan(1);
      }
      // Its old socket went with the old address: the page resumed its session on a new one.
      const joins = far.frames.sent.filter((f) => f.includes('"type":"join"'));
      expect(joins.slice(1).length, `joins after the first; ${facts()}`).toBeGreaterThan(0);
      for (const again of joins.slice(1)) expect(again).toContain('"resume"');
      // The others saw nothing: no participant-left, no second participant-joined.
      expect(leftEvents(doctor, far.sub), facts()).toEqual([]);
      expect(doctor.frames.received.filter((f) => f.includes('"participant-joined"')).length, facts()).toBe(joinsBefore);
    });
  });
});
