/**
 * Consultations on a real Redis Cluster (3 masters, 3 replicas, started by
 * the test), every service on it through REDIS_CLUSTER_NODES: a hub process
 * (admission, end), a media-server process (werift, signalling with Node
 * WebRTC peers, its audio tap) and an AI worker process (real Silero VAD,
 * the suite's fixture CTC and emotion models), with one clinic on each
 * shard.
 *
 * - the registries: the media node and the AI worker are what the hub reads
 *   (placement, `/api/ops/status`, `/api/ops/workers`); a media node killed
 *   with SIGKILL drops out once its entry expires;
 * - a consultation per clinic: admitted, both participants' media forwarded,
 *   the AI session's transcripts relayed to the doctor, ended by the hub
 *   (the media-server closes the room);
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { consultKeys, type OpsStatus, type OpsWorkers } from '@clinic-hub/protocol';
import { hashSlot } from '@clinic-hub/platform/redis';
import { connectConsult, consultRequest, recordConsult, type ConsultSocket } from '@clinic-hub/test-kit/consult-client';
import { startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { MEDIA_TEST_SECRET, startMediaServerProcess, WERIFT_ENGINE_ENV, type MediaServerProcess } from '@clinic-hub/test-kit/media-node';
import { NodePeer } from '@clinic-hub/test-kit/node-peer';
import { connectQueue, expectOk, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import { makeEncodedMedia, type EncodedMedia } from '@clinic-hub/test-kit/recording-media';
import { clinicOnMaster, startRedisCluster, type RedisClusterNodes } from '@clinic-hub/test-kit/redis-cluster';
import { waitFor } from '@clinic-hub/test-kit/wait';
import { fixtureWorkerEnv, startAiWorkerProcess, writeFixtureModels, type AiWorkerProcess } from '@clinic-hub/test-kit/worker-fixtures';

vi.setConfig({ testTimeout: 180_000, hookTimeout: 180_000 });

const MEDIA_NODE = 'media-cluster';
const AI_WORKER = 'ai-cluster';

let cluster: RedisClusterNodes;
let redis: Cluster;
let dir: string;
let clinics: string[];
let hub: HubNodeProcess;
let mediaNode: MediaServerProcess;
let aiWorker: AiWorkerProcess;
let media: EncodedMedia;
const sockets: (ConsultSocket | QueueSocket)[] = [];
const peers: NodePeer[] = [];

beforeAll(async () => {
  cluster = await startRedisCluster();
  redis = new Cluster(cluster.nodes);
  clinics = (await cluster.masters()).map((master) => clinicOnMaster(master.slots, 'clclinic'));
  dir = mkdtempSync(join(tmpdir(), 'consult-cluster-'));
  const clinicsDir = join(dir, 'clinics');
  mkdirSync(clinicsDir);
  for (const id of clinics) {
    writeFileSync(
      join(clinicsDir, `${id}.json`),
      JSON.stringify({
        id,
        name: { ja: `クラスタ ${id}`, en: `Cluster ${id}` },
        departments: [{ id: 'online', name: { ja: 'オンライン', en: 'Online' }, prefix: 'W', online: true, rooms: [{ id: 'v1', name: { ja: '1', en: '1' } }] }],
        ai: { enabled: true, language: 'en' },
      }),
    );
  }
  const modelsDir = join(dir, 'models');
  writeFixtureModels(modelsDir);
  media = await makeEncodedMedia(dir, { seconds: 6, speech: { text: 'Good morning doctor. I have had a headache for three days.' } });
  const redisEnv = { REDIS_URL: '', ...cluster.env };
  [hub, mediaNode] = await Promise.all([
    startHubProcess({ redisEnv: cluster.env, nodeId: 'hub-cluster', env: { CLINICS_DIR: clinicsDir, MEDIA_TOKEN_SECRET: MEDIA_TEST_SECRET } }),
    startMediaServerProcess({ ...redisEnv, ...WERIFT_ENGINE_ENV, MEDIA_NODE_ID: MEDIA_NODE, LOG_LEVEL: 'warn' }),
  ]);
  aiWorker = startAiWorkerProcess({ ...fixtureWorkerEnv('', modelsDir, { AI_WORKER_ID: AI_WORKER }), ...redisEnv, LOG_LEVEL: 'warn' });
});

afterAll(async () => {
  for (const peer of peers) await peer.close().catch(() => undefined);
  for (const socket of sockets) socket.disconnect();
  aiWorker?.child.kill('SIGTERM');
  await aiWorker?.exited;
  await mediaNode?.stop();
  await hub?.stop();
  redis?.disconnect();
  await cluster?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function opsGet<T>(path: string): Promise<T> {
  const response = await fetch(`${hub.url}${path}`, { headers: { authorization: `Bearer ${await tokenFor('admin', '*')}` } });
  expect(response.status, path).toBe(200);
  return (await response.json()) as T;
}

const ownerPort = async (clinic: string) => (await cluster.masterOfSlot(hashSlot(`{${clinic}}`))).port;

/** Packets of `kind` this peer has received from another participant. */
const packetsFrom = (peer: NodePeer, kind: 'audio' | 'video') => [...peer.received.values()].filter((s) => s.kind === kind).reduce((sum, s) => sum + s.packets, 0);

describe('consultations on a Redis Cluster', () => {
  it('the hub reads the media node and the AI worker from the registries, and a media node that dies drops out', async () => {
    await waitFor('the media node and the AI worker to announce themselves', async () => {
      const [status, workers] = await Promise.all([opsGet<OpsStatus>('/api/ops/status'), opsGet<OpsWorkers>('/api/ops/workers')]);
      return status.mediaNodes.some((n) => n.id === MEDIA_NODE) && workers.workers.some((w) => w.id === AI_WORKER);
    }, 60_000).catch((error: Error) => {
      throw new Error(`${error.message}\nmedia-server:\n${mediaNode.logs().slice(-3000)}\nAI worker:\n${aiWorker.output().slice(-3000)}`);
    });
    const status = await opsGet<OpsStatus>('/api/ops/status');
    expect(status.mediaNodes.find((n) => n.id === MEDIA_NODE)).toMatchObject({ url: mediaNode.url, draining: false });

    // A second node, killed: its hash expires (MEDIA_NODE_TTL_MS), so the hub stops listing it though its id stays in the set.
    const doomed = await startMediaServerProcess({ REDIS_URL: '', ...cluster.env, ...WERIFT_ENGINE_ENV, MEDIA_NODE_ID: 'media-doomed', LOG_LEVEL: 'warn' });
    try {
      await waitFor('the second node listed', async () => (await opsGet<OpsStatus>('/api/ops/status')).mediaNodes.some((n) => n.id === 'media-doomed'), 30_000);
    } finally {
      doomed.process.kill('SIGKILL');
      await doomed.exited;
    }
    const killedAt = Date.now();
    await waitFor('the killed node no longer listed', async () => !(await opsGet<OpsStatus>('/api/ops/status')).mediaNodes.some((n) => n.id === 'media-doomed'), 30_000);
    console.log(`a SIGKILLed media node left the hub's list ${Date.now() - killedAt} ms after it died`);
    expect((await opsGet<OpsStatus>('/api/ops/status')).mediaNodes.map((n) => n.id)).toEqual([MEDIA_NODE]);
  });

  it('admits a consultation in each clinic (one per shard), forwards both participants\' media, relays AI transcripts, and ends it', async () => {
    expect(new Set(await Promise.all(clinics.map(ownerPort))).size).toBe(3);
    const rooms = await Promise.all(
      clinics.map(async (clinic) => {
        const reception = await connectQueue(hub.url, await tokenFor('staff', clinic, { sub: `staff:${clinic}` }));
        const doctorHub = await connectConsult(hub.url, await tokenFor('doctor', clinic, { sub: `doctor:${clinic}` }));
        sockets.push(reception, doctorHub);
        const ticket = expectOk(await request(reception, 'queue:checkin', { dept: 'online' })).event.ticket;
        const admitted = expectOk(await consultRequest(doctorHub, 'consult:admit', { dept: 'online', room: 'v1' }));
        const consult = admitted.consultation.id;
        expect(admitted.pass.mediaUrl).toBe(mediaNode.url);
        const got = recordConsult(doctorHub);
        expectOk(await consultRequest(doctorHub, 'consult:subscribe', { consult }));
        const patientHub = await connectConsult(hub.url, await tokenFor('patient', clinic, { ticket: ticket.id, sub: `patient:${ticket.id}` }));
        sockets.push(patientHub);
        const patientPass = expectOk(await consultRequest(patientHub, 'consult:join', {})).pass;
        const doctor = await NodePeer.join(admitted.pass.mediaUrl, admitted.pass.token, { media });
        const patient = await NodePeer.join(patientPass.mediaUrl, patientPass.token, { media });
        peers.push(doctor, patient);
        return { clinic, consult, doctorHub, got, doctor, patient };
      }),
    );

    for (const room of rooms) {
      await waitFor(`${room.clinic}: media both ways`, () => packetsFrom(room.doctor, 'audio') > 50 && packetsFrom(room.patient, 'audio') > 50 && packetsFrom(room.patient, 'video') > 10, 30_000);
      expect(await redis.hget(consultKeys(room.clinic, room.consult).meta, 'status')).toBe('live');
    }
    for (const room of rooms) {
      await waitFor(`${room.clinic}: a final transcript relayed to the doctor`, () => room.got.transcripts.some((t) => t.kind === 'final'), 90_000).catch((error: Error) => {
        throw new Error(`${error.message}\nAI worker:\n${aiWorker.output().slice(-3000)}`);
      });
      expect(room.got.transcripts.every((t) => t.consult === room.consult)).toBe(true);
      expect(await redis.xlen(consultKeys(room.clinic, room.consult).ai)).toBeGreaterThan(0);
    }

    for (const room of rooms) {
      expectOk(await consultRequest(room.doctorHub, 'consult:end', { consult: room.consult }));
      await room.doctor.waitFor((m) => m.type === 'closed', 15_000);
      await room.patient.waitFor((m) => m.type === 'closed', 15_000);
    }
    for (const room of rooms) {
      await waitFor(`${room.clinic}: the AI session to finish`, async () => (await redis.hget(consultKeys(room.clinic, room.consult).aiState, 'done')) === '1', 60_000);
    }
  });
});
