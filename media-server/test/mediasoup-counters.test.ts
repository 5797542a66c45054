/**
 * mediasoup's counts live in its workers: the media-server reads them when
 * /metrics is scraped (not on a timer), and reads what is about to close
 * just before it closes. So a scrape counts every packet the subscribers
 * have received by then, and a participant who left between two scrapes
 * still counts for everything it sent and received.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { metricValue } from '@clinic-hub/test-kit/metrics-text';
import { MEDIA_TEST_ENGINES, roomToken, startMediaServerProcess, type MediaServerProcess } from '@clinic-hub/test-kit/media-node';
import { MediasoupNodePeer } from '@clinic-hub/test-kit/mediasoup-node-peer';
import { makeEncodedMedia } from '@clinic-hub/test-kit/recording-media';

const mediasoup = MEDIA_TEST_ENGINES.find((engine) => engine.name === 'mediasoup')!;
const dir = mkdtempSync(join(tmpdir(), 'mediasoup-counters-'));
let redis: TestRedis;
let node: MediaServerProcess;
const peers: MediasoupNodePeer[] = [];

beforeAll(async () => {
  redis = await startTestRedis();
});

afterAll(async () => {
  await Promise.all(peers.map((peer) => peer.close().catch(() => undefined)));
  await node?.stop();
  await redis?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

const received = (peer: MediasoupNodePeer) => [...peer.received.values()].reduce((sum, stream) => sum + stream.packets, 0);

describe('mediasoup counts (read from the workers when scraped)', () => {
  it('counts what subscribers received by the scrape, and what a participant who left between scrapes sent and received', { timeout: 90_000 }, async () => {
    node = await startMediaServerProcess({ ...mediasoup.env, REDIS_URL: redis.url, MEDIA_NODE_ID: 'media-counters', LOG_LEVEL: 'warn' });
    const media = await makeEncodedMedia(dir, { seconds: 6, video: true, keyframeEverySeconds: 1 });
    const simulcast = { layers: [media.video], audio: media.audio };
    const consult = 'counters-room';
    const doctor = await MediasoupNodePeer.join(node.url, roomToken({ sub: 'doctor-ct', part: 'doctor', consult }), { media: simulcast });
    peers.push(doctor);
    const patient = await MediasoupNodePeer.join(node.url, roomToken({ sub: 'patient-ct', part: 'patient', consult }), { media: simulcast });
    peers.push(patient);
    const labels = (direction: string) => ({ node: 'media-counters', direction });
    const packetsOut = async () => metricValue(await (await fetch(`${node.url}/metrics`)).text(), 'clinic_media_rtp_packets_total', labels('out')) ?? 0;

    const deadline = Date.now() + 20_000;
    while ((received(doctor) < 100 || received(patient) < 100) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(received(doctor)).toBeGreaterThanOrEqual(100);
    expect(received(patient)).toBeGreaterThanOrEqual(100);

    // What both had received before the scrape was sent before it: the scrape counts it (no 5-second lag).
    const before = received(doctor) + received(patient);
    expect(await packetsOut()).toBeGreaterThanOrEqual(before);

    // Two more seconds of media, then the patient leaves (its transports, producer and consumers close, and the
    // doctor's consumers of its tracks); the next scrape still counts everything either received.
    await new Promise((r) => setTimeout(r, 2000));
    await patient.leave();
    const patientReceived = received(patient);
    await new Promise((r) => setTimeout(r, 300));
    const after = await packetsOut();
    expect(after).toBeGreaterThanOrEqual(patientReceived + received(doctor));
    expect(after).toBeGreaterThan(before);
    const text = await (await fetch(`${node.url}/metrics`)).text();
    expect(metricValue(text, 'clinic_media_rtp_packets_total', labels('in'))).toBeGreaterThanOrEqual(patientReceived + received(doctor));
    expect(metricValue(text, 'clinic_media_bitrate_bits_per_second', labels('in'))).toBeGreaterThan(0);
  });
});
