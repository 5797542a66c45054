/**
 * A network of a test's own: a Linux network namespace joined to this
 * machine by a veth pair, so one participant (a Chromium, a Node client) can
 * be given a real constrained link — its downlink and uplink shaped with
 * `tc` (tbf), UDP dropped with nftables so ICE must use TCP, the link taken
 * down and up or its address changed — while everything else in the test
 * stays on the ordinary network.
 *
 *   this machine                          the namespace
 *   <hostInterface> 198.18.x.1/30  ─veth─  <interface> 198.18.x.2/30
 *                   198.18.x.5/30          (198.18.x.6/30 after changeAddress())
 *
 * No NAT: the namespace's default route points at this machine's end, and
 * the kernel delivers packets for any of this machine's own addresses
 * locally, so a server reaches the namespace and is reached from it as long
 * as it listens on `hostAddress` (or 0.0.0.0) and announces that address in
 * its ICE candidates. Forwarding stays off: the namespace reaches nothing
 * beyond this machine. Addresses come from 198.18.0.0/15 (RFC 2544, set
 * aside for benchmarking network devices), never from a range in use here.
 *
 * Needs root, iproute2 (`ip`, `tc`) and nftables (`nft`); `netnsSkipReason()`
 * says why not otherwise. Kernels without sch_netem (this machine kind has
 * none) cannot add delay or random loss: shaping is tbf's rate and queue.
 *
 * Clean-up: `close()` stops what runs inside and deletes the namespace (its
 * end of the veth, the nftables rules inside and the qdiscs go with it). A
 * process that exits without closing (a failed test, an exception, SIGTERM)
 * deletes its namespaces on the way out; one killed outright (SIGKILL)
 * leaves them behind, and the next `createNetns()` on this machine deletes
 * every namespace whose creating process is gone (names carry its pid).
 */
import { execFile, execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Browser } from 'playwright-core';
import { CHROMIUM_PATH, launchChromium } from './browser.js';
import { isRunning } from './processes.js';

const run = promisify(execFile);

/** Names are `chnet-<pid>-<n>` (namespaces) and `chv<pid>h<n>` / `chv<pid>n<n>` (veth ends, at most 15 characters). */
const NETNS_PREFIX = 'chnet-';
const NETNS_NAME = /^chnet-(\d+)-(\d+)$/;
const VETH_NAME = /^chv(\d+)[hn]\d+$/;
/** The nftables table `blockUdp()` adds inside a namespace. */
const UDP_TABLE = 'clinic_netlab';

const TOOLS = { ip: ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip'], tc: ['/usr/sbin/tc', '/sbin/tc', '/usr/bin/tc'], nft: ['/usr/sbin/nft', '/sbin/nft', '/usr/bin/nft'] };
const APT_PACKAGE: Record<keyof typeof TOOLS, string> = { ip: 'iproute2', tc: 'iproute2', nft: 'nftables' };

function toolPath(tool: keyof typeof TOOLS): string | null {
  return TOOLS[tool].find((path) => existsSync(path)) ?? null;
}

const tool = (name: keyof typeof TOOLS): string => {
  const path = toolPath(name);
  if (!path) throw new Error(`netns: ${name} is not installed (apt-get install ${APT_PACKAGE[name]})`);
  return path;
};

async function cmd(name: keyof typeof TOOLS, args: string[], input?: string): Promise<string> {
  try {
    if (input === undefined) return (await run(tool(name), args, { encoding: 'utf8' })).stdout;
    return await new Promise<string>((resolve, reject) => {
      const child = spawn(tool(name), args, { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr.on('data', (c: Buffer) => (err += c.toString()));
      child.on('error', reject);
      child.on('exit', (code) => (code === 0 ? resolve(out) : reject(Object.assign(new Error(`exit ${code}`), { stderr: err }))));
      child.stdin.end(input);
    });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim();
    throw new Error(`netns: ${name} ${args.join(' ')} failed: ${stderr || (error as Error).message}`);
  }
}

let support: Promise<string | null> | null = null;

/**
 * Why network-namespace tests cannot run here (not root, a tool missing, the
 * kernel refusing a namespace, a veth, tbf or an nftables table), or null
 * when they can. Tried for real once per process: a namespace is made and
 * deleted. Tests skip with this reason, printed.
 */
export function netnsSkipReason(): Promise<string | null> {
  support ??= probe();
  return support;
}

async function probe(): Promise<string | null> {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'network namespaces need root (ip netns, tc, nft): run the tests as root, as CI does';
  const missing = (Object.keys(TOOLS) as (keyof typeof TOOLS)[]).filter((t) => toolPath(t) === null);
  if (missing.length > 0) return `${missing.join(', ')} not installed: apt-get install ${[...new Set(missing.map((t) => APT_PACKAGE[t]))].join(' ')}`;
  let netns: Netns | null = null;
  try {
    netns = await createNetns();
    await netns.shape({ down: { kbps: 1000 }, up: { kbps: 1000 } });
    await netns.blockUdp();
    return null;
  } catch (error) {
    return `this machine cannot make a shaped network namespace: ${(error as Error).message}`;
  } finally {
    await netns?.close();
  }
}

export interface LinkRate {
  /** The rate in kbit/s (1000 bit/s). */
  kbps: number;
  /** How long a packet may wait in the queue before it is dropped (tbf's latency): a router's buffer. 100 ms by default. */
  queueMs?: number;
}

export interface Netns {
  /** The namespace's name (`ip netns exec <name> …`). */
  readonly name: string;
  /** This machine's end of the link: what a server in the test listens on and announces. */
  readonly hostAddress: string;
  /** The namespace's current address (changeAddress() changes it). */
  readonly address: string;
  /** The veth end on this machine (its egress is the namespace's downlink). */
  readonly hostInterface: string;
  /** The veth end inside the namespace (its egress is the uplink). */
  readonly interface: string;
  /** A process inside the namespace (through `ip netns exec`). */
  spawn(command: string, args: string[], options?: SpawnOptions): ChildProcess;
  /** Runs a command inside the namespace to its end; its standard output. */
  exec(command: string, args: string[]): Promise<string>;
  /**
   * Headless Chromium (test-kit's flags, and any more given) running inside
   * the namespace. Playwright drives it over a pipe, so nothing of the
   * namespace's network is needed for that.
   */
  launchChromium(extraFlags?: string[], options?: { autoplay?: boolean }): Promise<Browser>;
  /**
   * Shapes the link, live: `down` is what reaches the namespace, `up` what
   * leaves it; null takes that direction's shaping off, undefined leaves it
   * as it is.
   */
  shape(rates: { down?: LinkRate | null; up?: LinkRate | null }): Promise<void>;
  /** Every UDP packet into or out of the namespace (but its loopback) is dropped, so ICE must use TCP. */
  blockUdp(): Promise<void>;
  unblockUdp(): Promise<void>;
  /** UDP packets dropped since blockUdp() (both directions): proof a client tried UDP. */
  udpDropped(): Promise<number>;
  /** The link goes down (carrier lost on both ends). */
  linkDown(): Promise<void>;
  /** The link comes back up, with its default route. */
  linkUp(): Promise<void>;
  /** Down for `downMs`, then up again. */
  flap(downMs: number): Promise<void>;
  /** The namespace moves to its other address (a phone moving between networks); resolves with the new one. */
  changeAddress(): Promise<string>;
  /** Stops every process inside, deletes the namespace and its veth, rules and qdiscs. Safe to call twice. */
  close(): Promise<void>;
}

let created = 0;
/** Namespaces of this process not yet closed: deleted when it exits. */
const open = new Map<string, () => void>();
let exitHooked = false;

function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  const cleanAll = () => {
    for (const clean of [...open.values()]) clean();
  };
  process.on('exit', cleanAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = () => {
      cleanAll();
      process.removeListener(signal, onSignal);
      // Only when nobody else handles it: then the default action (exit) must still happen.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

/** The pids of the processes inside a namespace (ours: started there by this process or a test). */
function pidsIn(name: string): number[] {
  try {
    return execFileSync(tool('ip'), ['netns', 'pids', name], { encoding: 'utf8' })
      .split('\n')
      .map(Number)
      .filter((pid) => Number.isInteger(pid) && pid > 0);
  } catch {
    return [];
  }
}

function deleteSync(name: string | null, hostInterface: string | null): void {
  for (const pid of name ? pidsIn(name) : []) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const args of [...(name ? [['netns', 'del', name]] : []), ...(hostInterface ? [['link', 'del', hostInterface]] : [])]) {
    try {
      execFileSync(tool('ip'), args, { stdio: 'ignore' });
    } catch {
      // already gone (a veth end goes with its peer)
    }
  }
}

/** Namespaces and veths left by processes that died without cleaning up (SIGKILL, a crash). */
async function sweepStale(): Promise<void> {
  const namespaces = (await cmd('ip', ['netns', 'list']))
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter((name) => NETNS_NAME.test(name));
  for (const name of namespaces) {
    const pid = Number(NETNS_NAME.exec(name)![1]);
    if (pid !== process.pid && !isRunning(pid)) deleteSync(name, null);
  }
  const links = (await cmd('ip', ['-o', 'link', 'show']))
    .split('\n')
    .map((line) => /^\d+:\s+([^:@\s]+)/.exec(line)?.[1] ?? '')
    .filter((name) => VETH_NAME.test(name));
  for (const link of links) {
    const pid = Number(VETH_NAME.exec(link)![1]);
    if (pid !== process.pid && !isRunning(pid)) deleteSync(null, link);
  }
}

/** A free /29 in 198.18.0.0/15: none of this machine's routes overlaps it. */
async function freeBlock(): Promise<number> {
  const routes = (await cmd('ip', ['-4', '-o', 'route', 'show', 'table', 'all'])) + (await cmd('ip', ['-4', '-o', 'addr', 'show']));
  const used = new Set<number>();
  for (const match of routes.matchAll(/\b198\.(18|19)\.(\d+)\.(\d+)/g)) {
    used.add(((Number(match[1]) - 18) << 16) | (Number(match[2]) << 8) | (Number(match[3]) & ~7));
  }
  for (let attempt = 0; attempt < 100; attempt++) {
    // Random, so two test runs starting together are unlikely to pick the same block before either has added it.
    const block = Math.floor(Math.random() * (1 << 14)) << 3;
    if (!used.has(block)) return block;
  }
  throw new Error('netns: no free /29 left in 198.18.0.0/15');
}

const addressOf = (block: number, host: number) => `198.${18 + (block >> 16)}.${(block >> 8) & 255}.${(block & 255) + host}`;

/** A new namespace joined to this machine (see the file's comment); `close()` it in the test's afterAll/afterEach. */
export async function createNetns(): Promise<Netns> {
  hookExit();
  await sweepStale();
  const n = created++;
  const name = `${NETNS_PREFIX}${process.pid}-${n}`;
  const hostInterface = `chv${process.pid}h${n}`;
  const inner = `chv${process.pid}n${n}`;
  if (hostInterface.length > 15) throw new Error(`netns: interface name ${hostInterface} is longer than Linux allows`);
  const clean = () => {
    deleteSync(name, hostInterface);
    open.delete(name);
  };
  open.set(name, clean);
  const block = await freeBlock();
  // Link one (.1 here, .2 there) and link two (.5 here, .6 there), on the same veth: changeAddress() swaps links.
  const links = [
    { host: addressOf(block, 1), ns: addressOf(block, 2) },
    { host: addressOf(block, 5), ns: addressOf(block, 6) },
  ] as const;
  let current = 0;
  const ipn = (args: string[]) => cmd('ip', ['-n', name, ...args]);
  try {
    await cmd('ip', ['netns', 'add', name]);
    await cmd('ip', ['link', 'add', hostInterface, 'type', 'veth', 'peer', 'name', inner, 'netns', name]);
    for (const link of links) await cmd('ip', ['addr', 'add', `${link.host}/30`, 'dev', hostInterface]);
    await cmd('ip', ['link', 'set', hostInterface, 'up']);
    await ipn(['link', 'set', 'lo', 'up']);
    await ipn(['addr', 'add', `${links[0].ns}/30`, 'dev', inner]);
    await ipn(['link', 'set', inner, 'up']);
    await ipn(['route', 'add', 'default', 'via', links[0].host]);
  } catch (error) {
    clean();
    throw error;
  }

  const tempDirs: string[] = [];
  const setRate = async (dev: string, inNamespace: boolean, rate: LinkRate | null | undefined) => {
    if (rate === undefined) return;
    const tcArgs = (args: string[]) => (inNamespace ? ['-n', name, ...args] : args);
    if (rate === null) {
      // Nothing to delete is fine: the link was not shaped.
      await cmd('tc', tcArgs(['qdisc', 'del', 'dev', dev, 'root'])).catch(() => undefined);
      return;
    }
    if (!(rate.kbps >= 8 && rate.kbps <= 10_000_000)) throw new Error(`netns: a rate of ${rate.kbps} kbit/s is out of range (8–10000000)`);
    const bytesPerSecond = (rate.kbps * 1000) / 8;
    // A bucket of 10 ms of traffic (at least a few full-size packets): a smaller one cannot keep up with the timer at high rates.
    const burst = Math.max(4096, Math.round(bytesPerSecond / 100));
    await cmd('tc', tcArgs(['qdisc', 'replace', 'dev', dev, 'root', 'tbf', 'rate', `${rate.kbps}kbit`, 'burst', String(burst), 'latency', `${rate.queueMs ?? 100}ms`]));
  };

  const netns: Netns = {
    name,
    get hostAddress() {
      return links[0].host;
    },
    get address() {
      return links[current]!.ns;
    },
    hostInterface,
    interface: inner,
    spawn(command, args, options = {}) {
      return spawn(tool('ip'), ['netns', 'exec', name, command, ...args], options);
    },
    async exec(command, args) {
      try {
        return (await run(tool('ip'), ['netns', 'exec', name, command, ...args], { encoding: 'utf8', maxBuffer: 16 << 20 })).stdout;
      } catch (error) {
        throw new Error(`netns ${name}: ${command} ${args.join(' ')} failed: ${(error as { stderr?: string }).stderr?.trim() || (error as Error).message}`);
      }
    },
    async launchChromium(extraFlags = [], options = {}) {
      // Playwright starts the browser itself; a wrapper makes "the browser" Chromium entered into the namespace.
      const dir = mkdtempSync(join(tmpdir(), 'clinic-netns-'));
      tempDirs.push(dir);
      const wrapper = join(dir, 'chromium-in-netns');
      writeFileSync(wrapper, `#!/bin/sh\nexec ${tool('ip')} netns exec ${name} ${CHROMIUM_PATH} "$@"\n`);
      chmodSync(wrapper, 0o755);
      return launchChromium(extraFlags, { ...options, executablePath: wrapper });
    },
    async shape({ down, up }) {
      await setRate(hostInterface, false, down);
      await setRate(inner, true, up);
    },
    async blockUdp() {
      await netns.unblockUdp();
      await cmd(
        'ip',
        ['netns', 'exec', name, tool('nft'), '-f', '-'],
        [
          `table inet ${UDP_TABLE} {`,
          `  chain input { type filter hook input priority 0; policy accept; iifname != "lo" meta l4proto udp counter drop; }`,
          `  chain output { type filter hook output priority 0; policy accept; oifname != "lo" meta l4proto udp counter drop; }`,
          '}',
        ].join('\n'),
      );
    },
    async unblockUdp() {
      await cmd('ip', ['netns', 'exec', name, tool('nft'), 'delete', 'table', 'inet', UDP_TABLE]).catch(() => undefined);
    },
    async udpDropped() {
      const text = await cmd('ip', ['netns', 'exec', name, tool('nft'), 'list', 'table', 'inet', UDP_TABLE]).catch(() => '');
      return [...text.matchAll(/counter packets (\d+)/g)].reduce((sum, m) => sum + Number(m[1]), 0);
    },
    async linkDown() {
      await ipn(['link', 'set', inner, 'down']);
    },
    async linkUp() {
      await ipn(['link', 'set', inner, 'up']);
      // A link going down takes its routes with it; the default one does not come back by itself.
      await ipn(['route', 'replace', 'default', 'via', links[current]!.host]);
    },
    async flap(downMs) {
      await netns.linkDown();
      await new Promise((r) => setTimeout(r, downMs));
      await netns.linkUp();
    },
    async changeAddress() {
      const next = 1 - current;
      await ipn(['addr', 'add', `${links[next]!.ns}/30`, 'dev', inner]);
      await ipn(['addr', 'del', `${links[current]!.ns}/30`, 'dev', inner]);
      await ipn(['route', 'replace', 'default', 'via', links[next]!.host]);
      current = next;
      return links[current]!.ns;
    },
    async close() {
      if (open.has(name)) clean();
      for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
    },
  };
  return netns;
}

/**
 * Chromium's flag to treat these http origins as secure, so a page served
 * from `http://<hostAddress>:<port>` (not localhost) may still use the camera
 * and microphone.
 */
export function secureOriginFlag(origins: string[]): string {
  return `--unsafely-treat-insecure-origin-as-secure=${origins.map((o) => new URL(o).origin).join(',')}`;
}
