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
 * - a consultation per clinic: admitted (its AI session job on a replica
 *   before the admission is acknowledged), both participants' audio forwarded,
 *   the AI session's transcripts relayed to the doctor, ended by the hub
 *   (the media-server closes the room); the consultation channels are
 *   sharded pub/sub, followed at the shard that owns each clinic only;
 * - the master of a clinic's shard killed (SIGKILL, its replica 800 ms
 *   behind first) during a consultation: once its replica is promoted, the AI session's transcripts keep coming,
 *   a participant rejoins, and the end still closes the room.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { JOB_QUEUE_PREFIX, JOB_QUEUES, aiSessionJobId, consultAiChannel, consultControlChannel, consultKeys, type OpsStatus, type OpsWorkers } from '@clinic-hub/protocol';
import { hashSlot } from '@clinic-hub/platform/redis';
import { connectConsult, consultRequest, recordConsult, type ConsultSocket } from '@clinic-hub/test-kit/consult-client';
import { startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { MEDIA_TEST_SECRET, startMediaServerProcess, WERIFT_ENGINE_ENV, type MediaServerProcess } from '@clinic-hub/test-kit/media-node';
import { NodePeer } from '@clinic-hub/test-kit/node-peer';
import { connectQueue, expectOk, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import { makeEncodedMedia, type EncodedMedia } from '@clinic-hub/test-kit/recording-media';
import { clinicOnMaster, clusterLagSkipReason, startRedisCluster, type RedisClusterNodes } from '@clinic-hub/test-kit/redis-cluster';
import { sleep, waitFor } from '@clinic-hub/test-kit/wait';
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
  // Microphones only: the cluster is what is tested here, and six werift peers with cameras overload a shared two-core machine.
  media = await makeEncodedMedia(dir, { seconds: 6, video: false, speech: { text: 'Good morning doctor. I have had a headache for three days.' } });
  const redisEnv = { REDIS_URL: '', ...cluster.env };
  [hub, mediaNode] = await Promise.all([
    startHubProcess({ redisEnv: cluster.env, nodeId: 'hub-cluster', env: { CLINICS_DIR: clinicsDir, MEDIA_TOKEN_SECRET: MEDIA_TEST_SECRET } }),
    startMediaServerProcess({ ...redisEnv, ...WERIFT_ENGINE_ENV, MEDIA_NODE_ID: MEDIA_NODE, LOG_LEVEL: 'info' }),
  ]);
  // Job locks of 15 s, not the fixture's 2 s: a shard's failover (several seconds) must not pass for the worker's death.
  // A minute's grace, not 300 ms, after everyone has left: a participant who rejoins must not end the AI session.
  aiWorker = startAiWorkerProcess({
    ...fixtureWorkerEnv('', modelsDir, { AI_WORKER_ID: AI_WORKER, AI_JOB_LOCK_MS: '15000', AI_STALLED_INTERVAL_MS: '5000', AI_SESSION_END_GRACE_MS: '60000' }),
    ...redisEnv,
    LOG_LEVEL: 'warn',
  });
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

/** Audio packets this peer has received from the other participant. */
const packetsFrom = (peer: NodePeer) => [...peer.received.values()].filter((s) => s.kind === 'audio').reduce((sum, s) => sum + s.packets, 0);

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

  it('admits a consultation in each clinic (one per shard), forwards both participants\' audio, relays AI transcripts, and ends it', async () => {
    expect(new Set(await Promise.all(clinics.map(ownerPort))).size).toBe(3);
    // One room after the other: six WebRTC handshakes at once in this process time out on a loaded machine.
    const rooms: Room[] = [];
    for (const clinic of clinics) {
      const room = await openRoom(clinic);
      rooms.push(room);
      await audioBothWays(room);
      expect(await redis.hget(consultKeys(room.clinic, room.consult).meta, 'status')).toBe('live');
    }

    // The consultation channels are sharded: followed at the shard that owns the clinic, and only there.
    for (const clinic of clinics) {
      const owner = await ownerPort(clinic);
      for (const { port } of await cluster.masters()) {
        const node = new Redis({ host: '127.0.0.1', port });
        const [, control, , ai] = (await node.call('PUBSUB', 'SHARDNUMSUB', consultControlChannel(clinic), consultAiChannel(clinic))) as [string, number, string, number];
        node.disconnect();
        // consult-control: the hub's relay and the media-server; consult-ai: the hub's relay.
        expect({ clinic, port, control, ai }).toEqual(port === owner ? { clinic, port, control: 2, ai: 1 } : { clinic, port, control: 0, ai: 0 });
      }
    }

    for (const room of rooms) await finalTranscripts(room, 1);
    for (const room of rooms) await endRoom(room);
  });

  it('a consultation goes on when the master of its clinic\'s shard is killed (SIGKILL) and its replica promoted', async () => {
    const clinic = clinics[0]!;
    const room = await openRoom(clinic);
    await audioBothWays(room);
    const before = await finalTranscripts(room, 1);

    // The replica 800 ms behind when the master dies: the failover loses what the master did meanwhile (a SIGKILL alone
    // loses nothing on loopback).
    const lagSkip = clusterLagSkipReason();
    if (lagSkip) console.warn(`consult-cluster: the master is killed without its replica lagging (${lagSkip}): nothing is lost either way`);
    const { killed, promoted, failoverMs } = await cluster.killMaster(await ownerPort(clinic), lagSkip ? {} : { lagMs: 800 });
    console.log(`master ${killed} of ${clinic}'s shard killed; replica ${promoted} promoted in ${failoverMs} ms`);
    expect(await ownerPort(clinic)).toBe(promoted);

    // The AI session reads on from its saved position on the new master; the hub relays what it publishes there.
    await finalTranscripts(room, before + 1);
    // Signalling: the patient leaves and rejoins with a fresh pass (the hub and the media-server read the new master).
    await rejoin(room, 'patient');
    await audioBothWays(room);
    // The end goes out on the new master, where the media-server's subscription followed the clinic's slot.
    await endRoom(room);
  });
});

interface Room {
  clinic: string;
  consult: string;
  doctorHub: ConsultSocket;
  patientHub: ConsultSocket;
  got: ReturnType<typeof recordConsult>;
  doctor: NodePeer;
  patient: NodePeer;
}

/** A patient checked in, admitted by a doctor who follows the AI results, both in the room with media playing. */
async function openRoom(clinic: string): Promise<Room> {
  const reception = await connectQueue(hub.url, await tokenFor('staff', clinic, { sub: `staff:${clinic}` }));
  const doctorHub = await connectConsult(hub.url, await tokenFor('doctor', clinic, { sub: `doctor:${clinic}` }));
  sockets.push(reception, doctorHub);
  const ticket = expectOk(await request(reception, 'queue:checkin', { dept: 'online' })).event.ticket;
  const admitted = expectOk(await consultRequest(doctorHub, 'consult:admit', { dept: 'online', room: 'v1' }));
  const consult = admitted.consultation.id;
  expect(admitted.pass.mediaUrl).toBe(mediaNode.url);
  // Acknowledged once replicas hold it (HUB_REDIS_ACK_REPLICAS, 1 here): the AI session job on the replica of the queues'
  // shard, and the consultation itself on the replica of its clinic's shard (another shard: the job's wait does not cover it).
  const jobKey = `${JOB_QUEUE_PREFIX}:${JOB_QUEUES.aiSessions}:${aiSessionJobId({ clinic, consult })}`;
  const metaKey = consultKeys(clinic, consult).meta;
  for (const [key, what] of [[jobKey, 'the AI session job'], [metaKey, 'the consultation']] as const) {
    const shard = await cluster.masterOfSlot(hashSlot(key));
    const replica = new Redis({ host: '127.0.0.1', port: shard.replicaPorts[0]! });
    try {
      await replica.call('READONLY');
      expect(await replica.exists(key), `${what} on the replica when the admission is acknowledged`).toBe(1);
    } finally {
      replica.disconnect();
    }
  }
  const got = recordConsult(doctorHub);
  expectOk(await consultRequest(doctorHub, 'consult:subscribe', { consult }));
  const patientHub = await connectConsult(hub.url, await tokenFor('patient', clinic, { ticket: ticket.id, sub: `patient:${ticket.id}` }));
  sockets.push(patientHub);
  const patientPass = expectOk(await consultRequest(patientHub, 'consult:join', {})).pass;
  const doctor = await joinMedia(clinic, admitted.pass);
  const patient = await joinMedia(clinic, patientPass);
  return { clinic, consult, doctorHub, patientHub, got, doctor, patient };
}

/**
 * Joins the room; answered STORE_UNAVAILABLE, joins again as the page does. A node's first join of a clinic
 * waits for its subscription to the clinic's control channel, which on a loaded machine can take longer than
 * MEDIA_STORE_TIMEOUT_MS.
 */
async function joinMedia(clinic: string, pass: { mediaUrl: string; token: string }): Promise<NodePeer> {
  for (let attempt = 1; ; attempt++) {
    try {
      const peer = await NodePeer.join(pass.mediaUrl, pass.token, { media });
      peers.push(peer);
      return peer;
    } catch (error) {
      if ((error as { code?: string }).code !== 'STORE_UNAVAILABLE' || attempt === 5) throw error;
      console.log(`${clinic}: a join was answered STORE_UNAVAILABLE (attempt ${attempt}); joining again`);
      await sleep(1000);
    }
  }
}

/**
 * Both participants hear each other. A peer whose media connection fails
 * (werift's DTLS handshake gives up on a machine loaded by other tests) joins
 * again with a fresh pass, as the consultation page does; at most twice.
 */
async function audioBothWays(room: Room): Promise<void> {
  const state = (peer: NodePeer) => (peer as unknown as { pc: { connectionState: string } }).pc.connectionState;
  for (let attempt = 0; ; attempt++) {
    const since = { doctor: packetsFrom(room.doctor), patient: packetsFrom(room.patient) };
    const counts = () => ({ doctorHeard: packetsFrom(room.doctor) - since.doctor, patientHeard: packetsFrom(room.patient) - since.patient });
    const heard = await waitFor(`${room.clinic}: audio both ways`, () => {
      const c = counts();
      if (c.doctorHeard > 50 && c.patientHeard > 50) return 'heard';
      return state(room.doctor) === 'failed' || state(room.patient) === 'failed' ? 'failed' : false;
    }, 30_000).catch((error: Error) => {
      throw new Error(`${error.message}: ${JSON.stringify(counts())}; peers ${state(room.doctor)}/${state(room.patient)}\nmedia-server:\n${mediaNode.logs().slice(-3000)}`);
    });
    if (heard === 'heard') return;
    if (attempt === 2) throw new Error(`${room.clinic}: the media connection failed three times (peers ${state(room.doctor)}/${state(room.patient)})`);
    console.log(`${room.clinic}: a media connection failed (peers ${state(room.doctor)}/${state(room.patient)}); both join again`);
    await rejoin(room, 'doctor');
    await rejoin(room, 'patient');
  }
}

/** The participant leaves the room and joins again with a fresh pass from the hub. */
async function rejoin(room: Room, who: 'doctor' | 'patient'): Promise<void> {
  await room[who].close();
  const socket = who === 'doctor' ? room.doctorHub : room.patientHub;
  const pass = expectOk(await consultRequest(socket, 'consult:join', who === 'doctor' ? { consult: room.consult } : {})).pass;
  room[who] = await joinMedia(room.clinic, pass);
}

/** Waits until the doctor has had `count` final transcripts of the consultation relayed; resolves with how many there are. */
async function finalTranscripts(room: Room, count: number): Promise<number> {
  const finals = () => room.got.transcripts.filter((t) => t.kind === 'final').length;
  await waitFor(`${room.clinic}: ${count} final transcripts relayed to the doctor`, () => finals() >= count, 90_000).catch(async (error: Error) => {
    const keys = consultKeys(room.clinic, room.consult);
    const state = { audio: await redis.xlen(keys.audio), ai: await redis.xlen(keys.ai), aiState: await redis.hgetall(keys.aiState), relayed: room.got.transcripts.length };
    throw new Error(`${error.message} (got ${finals()}; ${JSON.stringify(state)})\nAI worker:\n${aiWorker.output().slice(-3000)}`);
  });
  expect(room.got.transcripts.every((t) => t.consult === room.consult)).toBe(true);
  expect(await redis.xlen(consultKeys(room.clinic, room.consult).ai)).toBeGreaterThan(0);
  return finals();
}

/** The doctor ends it at the hub: the media-server closes the room, the AI session finishes. */
async function endRoom(room: Room): Promise<void> {
  expectOk(await consultRequest(room.doctorHub, 'consult:end', { consult: room.consult }));
  await room.doctor.waitFor((m) => m.type === 'closed', 15_000);
  await room.patient.waitFor((m) => m.type === 'closed', 15_000);
  await waitFor(`${room.clinic}: the AI session to finish`, async () => (await redis.hget(consultKeys(room.clinic, room.consult).aiState, 'done')) === '1', 60_000);
}
