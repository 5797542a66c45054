/**
 * test-kit's network namespaces (src/netns.ts) against trivial servers on
 * this machine: a shaped link really carries the rate it was given, in each
 * direction, and changes live; blocked UDP really does not pass while TCP
 * does; a flap cuts and restores the link; an address change is seen by the
 * server; Chromium runs inside; nothing is left behind, even by a process
 * that fails or is killed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNetns, netnsSkipReason, type Netns } from '../src/netns.js';
import { isRunning } from '../src/processes.js';
import { waitFor } from '../src/wait.js';

const skip = await netnsSkipReason();
if (skip) console.warn(`netns.test.ts: SKIPPED — ${skip}`);

const namespaces = () => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
const links = () => execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' });

/** A Node script run inside the namespace; its stdout lines as they come. */
function nsNode(netns: Netns, code: string, env: Record<string, string> = {}): { child: ChildProcess; lines: string[]; exited: Promise<number | null> } {
  const child = netns.spawn(process.execPath, ['-e', code], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => lines.push(line));
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((r) =>
    child.once('exit', (code) => {
      if (code !== 0 && stderr) lines.push(`stderr: ${stderr}`);
      r(code);
    }),
  );
  return { child, lines, exited };
}

/** kbit/s over the samples `[{t, bytes}]` taken between `fromMs` and `toMs` after the first. */
function kbpsBetween(samples: { t: number; bytes: number }[], fromMs: number, toMs: number): number {
  const start = samples[0]!.t;
  const inWindow = samples.filter((s) => s.t - start >= fromMs && s.t - start <= toMs);
  const first = inWindow[0]!;
  const last = inWindow[inWindow.length - 1]!;
  return ((last.bytes - first.bytes) * 8) / (last.t - first.t);
}

const listen = (server: Server, host: string) => new Promise<number>((r) => server.listen(0, host, () => r((server.address() as AddressInfo).port)));

describe.skipIf(skip !== null)('a network namespace of the test’s own', () => {
  let netns: Netns;
  beforeAll(async () => {
    netns = await createNetns();
  });
  afterAll(async () => {
    await netns?.close();
  });

  it('is reached at its own address and reaches this machine’s end of the link', async () => {
    const server = createServer((socket) => socket.end(`${socket.remoteAddress}\n`));
    const port = await listen(server, netns.hostAddress);
    try {
      const out = await netns.exec(process.execPath, ['-e', `require('net').connect(${port}, '${netns.hostAddress}').pipe(process.stdout)`]);
      expect(out.trim()).toBe(netns.address);
      expect(netns.address).toMatch(/^198\.1[89]\./);
      expect(namespaces()).toContain(netns.name);
    } finally {
      server.close();
    }
  });

  it('shapes the downlink to the rate given, changes it live, and lifts it', { timeout: 60_000 }, async () => {
    // This machine sends as fast as it can; the namespace counts what arrives.
    const sockets = new Set<Socket>();
    const chunk = Buffer.alloc(64 * 1024, 1);
    const server = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
      const pump = () => {
        while (!socket.destroyed && socket.write(chunk));
      };
      socket.on('drain', pump);
      pump();
    });
    const port = await listen(server, netns.hostAddress);
    await netns.shape({ down: { kbps: 1000 } });
    const reader = nsNode(
      netns,
      `let bytes = 0; const s = require('net').connect(${port}, '${netns.hostAddress}'); s.on('data', (d) => (bytes += d.length));
       setInterval(() => console.log(JSON.stringify({ t: Date.now(), bytes })), 200);`,
    );
    try {
      const samples = () => reader.lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { t: number; bytes: number });
      const measure = async (seconds: number) => {
        const from = samples().length;
        await waitFor('samples from the namespace', () => samples().length >= from + seconds * 5 + 1 || undefined, 30_000);
        const window = samples().slice(from);
        return kbpsBetween(window, 0, seconds * 1000 + 1000);
      };
      // The first second fills the queue; then the rate is the bucket's.
      await measure(1);
      const shaped = await measure(3);
      expect(shaped).toBeGreaterThan(700);
      expect(shaped).toBeLessThan(1150);

      await netns.shape({ down: { kbps: 4000 } });
      await measure(1);
      const raised = await measure(3);
      expect(raised).toBeGreaterThan(2800);
      expect(raised).toBeLessThan(4400);

      await netns.shape({ down: null });
      await measure(1);
      expect(await measure(2)).toBeGreaterThan(20_000);
    } finally {
      reader.child.kill('SIGKILL');
      for (const s of sockets) s.destroy();
      server.close();
    }
  });

  it('shapes the uplink apart from the downlink', { timeout: 60_000 }, async () => {
    // The namespace sends as fast as it can; this machine counts what arrives.
    let bytes = 0;
    const sockets = new Set<Socket>();
    const server = createServer((socket) => {
      sockets.add(socket);
      socket.on('data', (d) => (bytes += d.length));
      socket.on('error', () => undefined);
    });
    const port = await listen(server, netns.hostAddress);
    await netns.shape({ up: { kbps: 800 }, down: { kbps: 5000 } });
    const writer = nsNode(
      netns,
      `const s = require('net').connect(${port}, '${netns.hostAddress}'); const chunk = Buffer.alloc(65536, 2);
       const pump = () => { while (s.write(chunk)); }; s.on('drain', pump); s.on('connect', pump); s.on('error', () => process.exit(1));`,
    );
    try {
      await waitFor('the namespace connecting', () => sockets.size > 0 || undefined, 30_000);
      await new Promise((r) => setTimeout(r, 1500));
      const from = { t: Date.now(), bytes };
      await new Promise((r) => setTimeout(r, 3000));
      const kbps = ((bytes - from.bytes) * 8) / (Date.now() - from.t);
      expect(kbps).toBeGreaterThan(550);
      expect(kbps).toBeLessThan(920);
    } finally {
      writer.child.kill('SIGKILL');
      for (const s of sockets) s.destroy();
      server.close();
      await netns.shape({ up: null, down: null });
    }
  });

  it('blocks UDP both ways while TCP still passes, counts what it dropped, and unblocks', { timeout: 60_000 }, async () => {
    // An echo server on this machine: UDP and TCP on the same port number, as mediasoup's WebRtcServer listens.
    const udp = createSocket('udp4');
    let udpReceived = 0;
    udp.on('message', (message, from) => {
      udpReceived += 1;
      udp.send(message, from.port, from.address);
    });
    await new Promise<void>((r) => udp.bind(0, netns.hostAddress, () => r()));
    const port = udp.address().port;
    const tcp = createServer((socket) => socket.end('tcp ok\n'));
    await new Promise<void>((r) => tcp.listen(port, netns.hostAddress, () => r()));
    // In the namespace: a UDP ping every 50 ms, its echoes counted, and one TCP exchange.
    const pinger = (label: string) =>
      nsNode(
        netns,
        `const s = require('dgram').createSocket('udp4'); let echoes = 0; s.on('message', () => echoes++);
         const t = setInterval(() => s.send('${label}', ${port}, '${netns.hostAddress}'), 50);
         require('net').connect(${port}, '${netns.hostAddress}').on('data', (d) => console.log('tcp: ' + d.toString().trim())).on('error', (e) => console.log('tcp: ' + e.code));
         setTimeout(() => { clearInterval(t); console.log('echoes: ' + echoes); s.close(); }, 1500);`,
      );
    try {
      await netns.blockUdp();
      const blocked = pinger('blocked');
      expect(await blocked.exited).toBe(0);
      expect(blocked.lines).toContain('tcp: tcp ok');
      expect(blocked.lines).toContain('echoes: 0');
      expect(udpReceived).toBe(0);
      expect(await netns.udpDropped()).toBeGreaterThan(5);

      // Inbound too: this machine sends to a UDP socket in the namespace.
      const listener = nsNode(
        netns,
        `const s = require('dgram').createSocket('udp4'); let got = 0; s.on('message', () => got++);
         s.bind(0, '${netns.address}', () => console.log('port: ' + s.address().port)); setTimeout(() => { console.log('got: ' + got); process.exit(0); }, 2500);`,
      );
      const nsPort = Number((await waitFor('the namespace listener', () => listener.lines.find((l) => l.startsWith('port: ')), 30_000)).slice(6));
      const droppedBefore = await netns.udpDropped();
      for (let i = 0; i < 10; i++) udp.send('in', nsPort, netns.address);
      await listener.exited;
      expect(listener.lines).toContain('got: 0');
      expect(await netns.udpDropped()).toBeGreaterThanOrEqual(droppedBefore + 10);

      await netns.unblockUdp();
      const open = pinger('open');
      expect(await open.exited).toBe(0);
      const echoes = Number(open.lines.find((l) => l.startsWith('echoes: '))!.slice(8));
      expect(echoes).toBeGreaterThan(10);
      expect(udpReceived).toBeGreaterThan(10);
    } finally {
      await netns.unblockUdp();
      udp.close();
      tcp.close();
    }
  });

  it('flaps: down, nothing passes; up, connections work again; an address change is seen by the server', { timeout: 60_000 }, async () => {
    const server = createServer((socket) => socket.end(`${socket.remoteAddress}\n`));
    const port = await listen(server, netns.hostAddress);
    const connect = () =>
      netns.exec(process.execPath, [
        '-e',
        `const s = require('net').connect(${port}, '${netns.hostAddress}'); s.setTimeout(3000, () => { console.log('timeout'); s.destroy(); });
         s.on('data', (d) => console.log(d.toString().trim())); s.on('error', (e) => console.log(e.code));`,
      ]);
    try {
      expect((await connect()).trim()).toBe(netns.address);
      await netns.linkDown();
      expect((await connect()).trim()).toMatch(/^(ENETUNREACH|EHOSTUNREACH|timeout)$/);
      await netns.linkUp();
      expect((await connect()).trim()).toBe(netns.address);

      await netns.flap(300);
      expect((await connect()).trim()).toBe(netns.address);

      const before = netns.address;
      const after = await netns.changeAddress();
      expect(after).not.toBe(before);
      expect((await connect()).trim()).toBe(after);
      expect(await netns.changeAddress()).toBe(before);
      expect((await connect()).trim()).toBe(before);
    } finally {
      server.close();
    }
  });

  it('runs Chromium inside: its requests come from the namespace, and a blocked UDP does not stop HTTP', { timeout: 90_000 }, async () => {
    const http = createHttpServer((req, res) => res.end(`<title>${req.socket.remoteAddress}</title>`));
    const port = await listen(http as unknown as Server, netns.hostAddress);
    await netns.blockUdp();
    const browser = await netns.launchChromium();
    try {
      const page = await browser.newPage();
      await page.goto(`http://${netns.hostAddress}:${port}/`);
      expect(await page.title()).toBe(netns.address);
    } finally {
      await browser.close();
      await netns.unblockUdp();
      http.close();
    }
  });
});

describe.skipIf(skip !== null)('clean-up', () => {
  it('close() deletes the namespace, its veth and the processes inside; a second close() is harmless', async () => {
    const netns = await createNetns();
    const sleeper = netns.spawn('sleep', ['600'], { stdio: 'ignore' });
    await waitFor('the sleeper inside', () => execFileSync('ip', ['netns', 'pids', netns.name], { encoding: 'utf8' }).trim() !== '' || undefined);
    const inside = Number(execFileSync('ip', ['netns', 'pids', netns.name], { encoding: 'utf8' }).trim().split('\n')[0]);
    await netns.close();
    await netns.close();
    expect(namespaces()).not.toContain(netns.name);
    expect(links()).not.toContain(`${netns.hostInterface}@`);
    await waitFor('the process inside to be gone', () => !isRunning(inside) || undefined);
    sleeper.kill();
  });

  const kitNetns = resolve(import.meta.dirname, '../src/netns.ts');
  /**
   * A process that makes a namespace, prints its names, waits for a line on
   * its stdin (the test has seen the namespace: a child that threw at once
   * could clean up before the test looked, as it did once in CI), then does `then`.
   */
  const child = (then: string) =>
    spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `const { createNetns } = await import(${JSON.stringify(kitNetns)});
      const n = await createNetns(); console.log(JSON.stringify({ name: n.name, veth: n.hostInterface }));
      await new Promise((r) => process.stdin.once('data', r)); ${then}`], { stdio: ['pipe', 'pipe', 'ignore'] });
  const namesOf = async (proc: ChildProcess) => {
    const lines = createInterface({ input: proc.stdout! });
    for await (const line of lines) if (line.startsWith('{')) return JSON.parse(line) as { name: string; veth: string };
    throw new Error('the child printed no names');
  };

  it('a process that fails without closing still deletes its namespace on the way out', { timeout: 60_000 }, async () => {
    for (const then of ['throw new Error("a failing test")', 'setTimeout(() => {}, 600_000)']) {
      const proc = child(then);
      const names = await namesOf(proc);
      expect(namespaces()).toContain(names.name);
      proc.stdin!.write('go\n');
      if (then.startsWith('setTimeout')) proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
      expect(namespaces()).not.toContain(names.name);
      expect(links()).not.toContain(`${names.veth}@`);
    }
  });

  it('one killed outright (SIGKILL) leaves it behind, and the next createNetns() deletes it', { timeout: 60_000 }, async () => {
    const proc = child('setTimeout(() => {}, 600_000)');
    const names = await namesOf(proc);
    proc.kill('SIGKILL');
    await new Promise((r) => proc.once('exit', r));
    expect(namespaces()).toContain(names.name);
    const next = await createNetns();
    try {
      expect(namespaces()).not.toContain(names.name);
      expect(links()).not.toContain(`${names.veth}@`);
    } finally {
      await next.close();
    }
  });
});
