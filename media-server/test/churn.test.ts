/**
 * A long-running room with people coming and going: 50 join/leave cycles of
 * Node peers (werift, real media) against a doctor who stays. The process's
 * UDP sockets (the media-server's and the peers' — both live here) must not
 * grow, nor its memory beyond a bound, and the doctor's SDP must not grow
 * with every m-line ever used.
 */
import { readdirSync, readFileSync, readlinkSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ServerSignal } from '@clinic-hub/protocol';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import type { RunningMediaServer } from '../src/media-server.js';
import { roomToken, startTestMediaServer, WERIFT_ENGINE_ENV } from '@clinic-hub/test-kit/media-node';
import { NodePeer } from '@clinic-hub/test-kit/node-peer';
import { makeEncodedMedia, type EncodedMedia } from '@clinic-hub/test-kit/recording-media';

const CYCLES = 50;

let redis: TestRedis;
let server: RunningMediaServer;
let media: EncodedMedia;
let mediaDir: string;

beforeAll(async () => {
  redis = await startTestRedis();
  mediaDir = mkdtempSync(joinPath(tmpdir(), 'churn-media-'));
  [server, media] = await Promise.all([startTestMediaServer({ env: { ...WERIFT_ENGINE_ENV }, redisUrl: redis.url, nodeId: 'media-churn' }), makeEncodedMedia(mediaDir, { seconds: 2, keyframeEverySeconds: 1 })]);
});

afterAll(async () => {
  await server?.close();
  await redis?.cleanup();
  rmSync(mediaDir, { recursive: true, force: true });
});

/** UDP sockets this process holds: its socket descriptors matched against the kernel's UDP tables. */
function udpSockets(): number {
  const inodes = new Set<string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
      if (match) inodes.add(match[1]!);
    } catch {
      // closed while listing
    }
  }
  let count = 0;
  for (const table of ['/proc/net/udp', '/proc/net/udp6']) {
    let text = '';
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const inode = line.trim().split(/\s+/)[9];
      if (inode && inodes.has(inode)) count += 1;
    }
  }
  return count;
}

/** Heap after a full collection (gc exposed at run time: vitest's workers do not start with --expose-gc). */
function heapAfterGcMb(): number {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  gc();
  return process.memoryUsage().heapUsed / 1024 / 1024;
}

it(`${CYCLES} join/leave cycles leave no UDP sockets or memory behind`, { timeout: 120_000 }, async () => {
  const consult = 'churn-room-1';
  const doctor = await NodePeer.join(server.url, roomToken({ sub: 'doctor-churn', part: 'doctor', consult }), { media });
  const cycle = async (i: number) => {
    const sub = `visitor-${i % 3}`;
    const peer = await NodePeer.join(server.url, roomToken({ sub, part: 'family', consult }), { media });
    // Media both ways before leaving: the whole path was set up, not just signalling.
    await peer.until(() => [...peer.received.values()].some((s) => s.kind === 'video' && s.packets > 0), 15_000, `cycle ${i}: video to the visitor`);
    await doctor.until(() => [...doctor.received.values()].some((s) => s.participant === sub && s.kind === 'video' && s.packets > 0), 15_000, `cycle ${i}: video from the visitor`);
    // Half leave cleanly, half just drop.
    if (i % 2 === 0) await peer.leave();
    else await peer.close();
    await doctor.until(() => doctor.participants.length === 0, 10_000, `cycle ${i}: the visitor gone`);
    await doctor.until(() => server.engine.forwardedStreams() === 0, 10_000, `cycle ${i}: forwards released`);
  };

  // Warm up (first-use allocations, the DTLS certificate, module caches), then take the baseline.
  await cycle(-1);
  await new Promise((r) => setTimeout(r, 500));
  const sockets0 = udpSockets();
  const heap0 = heapAfterGcMb();
  const rss0 = process.memoryUsage().rss / 1024 / 1024;
  const started = Date.now();
  for (let i = 0; i < CYCLES; i++) await cycle(i);
  await new Promise((r) => setTimeout(r, 1000));
  const sockets1 = udpSockets();
  const heap1 = heapAfterGcMb();
  const rss1 = process.memoryUsage().rss / 1024 / 1024;
  const offers = doctor.messages.filter((m): m is Extract<ServerSignal, { type: 'offer' }> => m.type === 'offer');
  const lastSdp = offers[offers.length - 1]!.sdp;
  const mLines = lastSdp.split('\r\n').filter((l) => l.startsWith('m=')).length;
  process.stdout.write(
    `${CYCLES} cycles in ${((Date.now() - started) / 1000).toFixed(1)} s: UDP sockets ${sockets0} → ${sockets1}; heap after GC ${heap0.toFixed(1)} → ${heap1.toFixed(1)} MB; RSS ${rss0.toFixed(0)} → ${rss1.toFixed(0)} MB; the doctor's last offer has ${mLines} m-lines after ${offers.length} offers\n`,
  );
  expect(sockets1).toBeLessThanOrEqual(sockets0);
  // What grows is the test's own log of signalling messages (every offer's SDP); before werift-workarounds.ts it was +23 MB.
  expect(heap1 - heap0).toBeLessThan(10);
  // Two own slots and two m-lines per visitor at most, reused as visitors come and go.
  expect(mLines).toBeLessThanOrEqual(4);
  expect(server.rooms.counts()).toEqual({ rooms: 1, participants: 1 });
  await doctor.leave();
});
