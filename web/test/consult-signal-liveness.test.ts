/**
 * The consultation page's rule for a signalling socket whose network went
 * (media-client.ts; docs/consultations.md, "Resume"), against a stand-in
 * media-server behind a TCP relay that can go silent: it stops carrying
 * anything either way and keeps both ends open, as a vanished address or a
 * dead link does (no close, no reset; a close frame the page sends is lost
 * too). Real Chromium, real hub (it serves the page), a stand-in media
 * server speaking just enough signalling: `joined` (werift, so no media is
 * set up), `pong`, and a join refused on request.
 *
 * The page must notice a silent socket by itself (its pings go unanswered),
 * in time for the server's shortest wait for a resume (two missed pings of
 * 10 s, then MEDIA_RESUME_GRACE_MS, 15 s: 25 s); give up a new socket that
 * never opens; and never sit on a socket it closed whose close cannot
 * complete (Chromium waits 60 s for the closing handshake over a dead
 * network, and before, the page stayed "live" meanwhile and failed every
 * ping at once: the network-flap failure of issue #13).
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { WebSocketServer, type WebSocket } from 'ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { launchMediaChromium, consultUrl } from '@clinic-hub/test-kit/consult-browser';
import { startHubProcess, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { roomToken } from '@clinic-hub/test-kit/media-node';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { waitFor } from '@clinic-hub/test-kit/wait';

/** One page's socket as the stand-in saw it. */
interface SignalSocket {
  n: number;
  ws: WebSocket;
  /** The relay's end of it (what Relay.silence takes). */
  relayPort: number;
  openedAt: number;
  /** Messages the page sent on it (types), with the time. */
  received: { type: string; at: number; resume: boolean }[];
  closeCode: number | null;
}

/** The stand-in media-server, reached through the relay. */
class StandIn {
  readonly sockets: SignalSocket[] = [];
  /** Joins refused (MEDIA_NODE_UNAVAILABLE) while above 0, and then the relay goes silent on that connection. */
  refuseJoinsThenSilence = 0;
  private readonly wss: WebSocketServer;
  constructor(private readonly relay: Relay) {
    this.wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/signal' });
    this.wss.on('connection', (ws, request) => this.accept(ws, request.socket.remotePort!));
  }

  get port(): number {
    return (this.wss.address() as { port: number }).port;
  }

  private accept(ws: WebSocket, relayPort: number): void {
    const socket: SignalSocket = { n: this.sockets.length + 1, ws, relayPort, openedAt: Date.now(), received: [], closeCode: null };
    this.sockets.push(socket);
    ws.on('close', (code) => (socket.closeCode = code));
    ws.on('message', (data) => {
      const message = JSON.parse(String(data)) as { type: string; id?: string; resume?: string };
      socket.received.push({ type: message.type, at: Date.now(), resume: message.resume !== undefined });
      if (message.type === 'ping') ws.send(JSON.stringify({ type: 'pong', id: message.id, serverTime: Date.now() }));
      if (message.type !== 'join') return;
      if (this.refuseJoinsThenSilence > 0) {
        this.refuseJoinsThenSilence -= 1;
        this.relay.silenceAfterNextReply(relayPort);
        ws.send(JSON.stringify({ type: 'error', code: 'MEDIA_NODE_UNAVAILABLE', message: 'not now' }));
        return;
      }
      const self = { id: 'patient-1', part: 'patient', name: 'Patient', sources: [], muted: { mic: false, camera: false }, consent: false };
      ws.send(
        JSON.stringify({
          type: 'joined',
          self,
          consult: 'liveness',
          participants: [],
          recording: { state: 'off', missingConsent: [], recordingId: null, startedAt: null },
          iceServers: [],
          media: { engine: 'werift' },
          session: `session-${socket.n}`,
        }),
      );
    });
  }

  close(): Promise<void> {
    for (const client of this.wss.clients) client.terminate();
    return new Promise((resolve) => this.wss.close(() => resolve()));
  }
}

/**
 * A TCP relay to the stand-in. silence(port) stops it carrying anything on the
 * connection whose upstream end has that local port, both ways, keeping both
 * ends open; hangNext makes the next connections silent from the start (the
 * page's TCP connects, its WebSocket handshake is never answered).
 */
class Relay {
  hangNext = 0;
  private readonly silent = new Set<number>();
  private readonly silentAfterReply = new Set<number>();
  private readonly sockets = new Set<Socket>();
  private readonly server: Server;
  constructor(private readonly target: () => number) {
    this.server = createServer((client) => {
      const hung = this.hangNext > 0;
      if (hung) this.hangNext -= 1;
      const upstream = connect(this.target(), '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => this.sockets.delete(s));
      }
      let port = -1;
      upstream.on('connect', () => (port = upstream.localPort!));
      const silent = () => hung || this.silent.has(port);
      client.on('data', (chunk) => {
        if (!silent()) upstream.write(chunk);
      });
      upstream.on('data', (chunk) => {
        if (silent()) return;
        client.write(chunk);
        if (this.silentAfterReply.delete(port)) this.silent.add(port);
      });
      // An end closes the other only while the relay carries the connection: a silent one stays open both sides.
      client.on('end', () => !silent() && upstream.end());
      upstream.on('end', () => !silent() && client.end());
    });
  }

  listen(): Promise<number> {
    return new Promise((resolve) => this.server.listen(0, '127.0.0.1', () => resolve((this.server.address() as { port: number }).port)));
  }

  silence(upstreamPort: number): void {
    this.silent.add(upstreamPort);
  }

  /** Carries what the stand-in sends next on that connection to the page, then goes silent on it. */
  silenceAfterNextReply(upstreamPort: number): void {
    this.silentAfterReply.add(upstreamPort);
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

let redis: TestRedis;
let hub: HubNodeProcess;
let browser: Browser;
let context: BrowserContext;
let standIn: StandIn;
let relay: Relay;
let relayPort: number;

beforeAll(async () => {
  redis = await startTestRedis();
  [hub, browser] = await Promise.all([startHubProcess({ redisUrl: redis.url, nodeId: 'liveness-hub', server: 'node' }), launchMediaChromium()]);
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await hub?.stop();
  await redis?.cleanup();
});

afterEach(async () => {
  await context?.close();
  await relay?.close();
  await standIn?.close();
});

/** A stand-in and its relay, then the page joined through them; what the page's connection state went through, with times. */
async function joined(): Promise<{ page: Page; states: { state: string; at: number }[] }> {
  relay = new Relay(() => standIn.port);
  standIn = new StandIn(relay);
  relayPort = await relay.listen();
  context = await browser.newContext();
  const page = await context.newPage();
  const states: { state: string; at: number }[] = [];
  await page.exposeFunction('__connectionState', (state: string) => states.push({ state, at: Date.now() }));
  // A string: this file is compiled without the DOM's types.
  await page.addInitScript({
    content: `addEventListener('DOMContentLoaded', () => {
      const root = document.documentElement;
      new MutationObserver(() => __connectionState(root.dataset.connection || '')).observe(root, { attributes: true, attributeFilter: ['data-connection'] });
    });`,
  });
  await page.goto(consultUrl(hub.url, `http://127.0.0.1:${relayPort}`, roomToken({ sub: 'patient-1', part: 'patient', consult: 'liveness' })));
  await page.waitForSelector('html[data-stage="precheck"]', { timeout: 30_000 });
  await page.click('#join-button');
  await page.waitForSelector('html[data-connection="live"]', { timeout: 30_000 });
  return { page, states };
}

const joinsAfter = (since: number) => standIn.sockets.flatMap((s) => s.received.filter((m) => m.type === 'join' && m.at > since).map((m) => ({ socket: s.n, at: m.at })));

describe('the consultation page on a signalling socket whose network went', () => {
  it('an idle socket that goes silent is given up by the page itself (its pings unanswered), and it joins again on a new one within the server\'s shortest wait', { timeout: 90_000 }, async () => {
    const { page, states } = await joined();
    const first = standIn.sockets[0]!;
    // Idle: nothing but the page's own pings goes over it from here.
    await waitFor('a ping on the idle socket', () => first.received.some((m) => m.type === 'ping') || undefined, 15_000);
    const silentAt = Date.now();
    relay.silence(first.relayPort);
    const again = await waitFor('a join on a new socket', () => joinsAfter(silentAt).find((j) => j.socket > first.n), 40_000);
    await page.waitForSelector('html[data-connection="live"]', { timeout: 15_000 });
    const noticedAfterMs = again.at - silentAt;
    process.stdout.write(`liveness: a silent socket given up and a join on a new one ${noticedAfterMs} ms after the silence began\n`);
    // Within 10 s of an unanswered ping sent at most 5 s after the silence, plus the reconnect backoff (≤ 0.5 s); the
    // server keeps the session at least 25 s.
    expect(noticedAfterMs).toBeLessThan(25_000);
    expect(states.filter((s) => s.at > silentAt).map((s) => s.state)).toContain('reconnecting');
    // The old socket was never closed from the server's side: the relay kept it open, as a dead network does.
    expect(first.closeCode).toBeNull();
  });

  it('a new socket whose handshake is never answered is given up after 15 s, and the next one joins', { timeout: 90_000 }, async () => {
    const { page } = await joined();
    const first = standIn.sockets[0]!;
    await waitFor('a ping on the idle socket', () => first.received.some((m) => m.type === 'ping') || undefined, 15_000);
    // The next connection hangs (its TCP connects, its WebSocket handshake gets no answer), the one after works.
    relay.hangNext = 1;
    const silentAt = Date.now();
    relay.silence(first.relayPort);
    const again = await waitFor('a join on a socket after the hung one', () => joinsAfter(silentAt)[0], 60_000);
    await page.waitForSelector('html[data-connection="live"]', { timeout: 15_000 });
    process.stdout.write(`liveness: join on a new socket ${again.at - silentAt} ms after the silence, past one hung connection\n`);
    // The hung connection reached the stand-in's side of the relay (it counts a socket only after the handshake, so
    // the hung one is not among them); the join came on the next.
    expect(again.socket).toBe(first.n + 1);
    // The silence (≤ 15 s to notice), the hung socket (15 s), two backoffs (≤ 1.5 s): well under a minute, where a
    // hung TCP connect alone can take two.
    expect(again.at - silentAt).toBeLessThan(45_000);
  });

  it('a socket the page closes over a dead network is left at once: it does not wait for a close that cannot complete', { timeout: 90_000 }, async () => {
    const { page, states } = await joined();
    const first = standIn.sockets[0]!;
    // The next join is refused for now (the page closes that socket and tries again), and the network goes with it.
    standIn.refuseJoinsThenSilence = 1;
    const cutAt = Date.now();
    // The first socket closes from the stand-in's side: the page connects again, gets the refusal, and closes.
    first.ws.terminate();
    const refusedOn = await waitFor('the refused join', () => joinsAfter(cutAt)[0], 20_000);
    const retried = await waitFor('a join on a socket after the refused one', () => joinsAfter(cutAt).find((j) => j.socket > refusedOn.socket), 30_000);
    await page.waitForSelector('html[data-connection="live"]', { timeout: 15_000 });
    const afterMs = retried.at - refusedOn.at;
    process.stdout.write(`liveness: after a refused join on a socket whose network then went, a new join ${afterMs} ms later\n`);
    // The backoff after two failures (≤ 1 s) and a connect, not Chromium's 60 s closing handshake.
    expect(afterMs).toBeLessThan(10_000);
    expect(states.filter((s) => s.at > cutAt).map((s) => s.state)).toContain('reconnecting');
  });
});
