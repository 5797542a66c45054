/**
 * The hub's actions beyond the queue and chat that are acknowledged only
 * once a replica holds them (HUB_REDIS_ACK_REPLICAS, 1 by default with
 * Sentinel): with the replica stopped (SIGSTOP) each is answered
 * STORE_UNAVAILABLE, and the same action again, the replica back, is
 * acknowledged and finds what the first one did.
 *
 * - `consult:admit` whose consultation was made but not confirmed: the retry
 *   that is acknowledged tells `consult.started` (the webhooks), which the
 *   first try did not;
 * - `consult:end` of a consultation whose ticket has already left the queue
 *   (no queue change of its own waits for the replica), as a failover that
 *   lost the queue's end of it leaves it;
 * - `POST /api/clinics/:clinic/recordings/:id/purge`: the purge job, on the
 *   consultation queues' shard.
 */
import { JOB_QUEUE_PREFIX, JOB_QUEUES, consultKeys, recordingPurgeJobId, type RecordingJob } from '@clinic-hub/protocol';
import { createRecordingMeta, markRecordingFinal } from '@clinic-hub/recordings';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReplicaAck, connectRedisClient } from '@clinic-hub/platform/redis';
import { CONSULT_HUB_ENV, announceMediaNode, connectConsult, consultRequest, type ConsultSocket } from '@clinic-hub/test-kit/consult-client';
import { TEST_CLINICS_DIR, startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { connectQueue, expectOk, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import { startSentinelGroup, type SentinelGroup } from '@clinic-hub/test-kit/redis-sentinel';
import { waitFor } from '@clinic-hub/test-kit/wait';
import { ClinicRegistry } from '../src/clinics/clinic-registry.js';
import type { ConsultLifecycle } from '../src/consult/consult-service.js';
import { QueueService } from '../src/queue/index.js';
import { testConsultService } from './support/consult-service.js';

const CLINIC = 'testclinic';

let group: SentinelGroup;
let hub: HubNodeProcess;
let redis: Redis;
const sockets: (QueueSocket | ConsultSocket)[] = [];

beforeAll(async () => {
  group = await startSentinelGroup();
  hub = await startHubProcess({ redisEnv: group.env, nodeId: 'replica-ack', env: CONSULT_HUB_ENV });
  redis = connectRedisClient(group.target, 'test:replica-ack') as Redis;
  redis.on('error', () => undefined);
}, 120_000);

afterAll(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  redis?.disconnect();
  await hub?.stop();
  await group?.cleanup();
});

/** `work` with the replica stopped (SIGSTOP), continued whatever happens. */
async function withReplicaStopped<T>(work: () => Promise<T>): Promise<T> {
  const replica = await group.replica();
  replica.process.kill('SIGSTOP');
  try {
    return await work();
  } finally {
    replica.process.kill('SIGCONT');
  }
}

/** What the replica holds now (read there, READONLY). */
async function onReplica<T>(read: (replica: Redis) => Promise<T>): Promise<T> {
  const { port } = await group.replica();
  const replica = connectRedisClient(`redis://127.0.0.1:${port}`, 'test:replica-ack-read') as Redis;
  try {
    return await read(replica);
  } finally {
    replica.disconnect();
  }
}

describe('actions acknowledged once a replica holds them', () => {
  it('consult:admit made but not confirmed: the retry admits the same consultation and tells consult.started, once', { timeout: 60_000 }, async () => {
    // The hub's consultation domain in this process, on the group's master: the queue's own wait off, so the admission
    // gets as far as its consultation before its wait fails (the group has one replica; two are asked for at first).
    const clinics = ClinicRegistry.fromDirectory(TEST_CLINICS_DIR);
    const queue = new QueueService(redis, clinics);
    const writes = connectRedisClient(group.target, 'test:replica-ack-writes');
    writes.on('error', () => undefined);
    const policy = { replicas: 2, timeoutMs: 300 };
    const lifecycle: ConsultLifecycle[] = [];
    const service = testConsultService({ redis, clinics, queue, ack: new ReplicaAck(writes, policy), onLifecycle: (_clinic, change) => lifecycle.push(change) });
    try {
      await announceMediaNode(redis, { id: 'media-replica-ack', rooms: 0 });
      const checkin = await queue.checkin(CLINIC, { dept: 'online', priority: 'normal' });
      if (!checkin.ok) throw new Error(checkin.error.code);
      const doctor = { sub: 'doctor:replica-ack', role: 'doctor' as const, ticket: null, address: '127.0.0.1' };
      const admit = () => service.admit(CLINIC, doctor, { dept: 'online', room: 'v2', ticketId: checkin.event.ticket.id, requestId: 'replica-ack-admit' });

      const refused = await admit();
      expect(refused).toMatchObject({ ok: false, error: { code: 'STORE_UNAVAILABLE', detail: expect.stringContaining('replica') } });
      expect(lifecycle).toEqual([]);
      policy.replicas = 1;
      const admitted = expectOk(await admit());
      expect(admitted.replayed).toBe(true);
      expect(lifecycle.map((c) => [c.type, c.consultation.id])).toEqual([['consult.started', admitted.consultation.id]]);
      expectOk(await service.end(CLINIC, doctor, { consult: admitted.consultation.id }));
    } finally {
      writes.disconnect();
    }
  });

  it('consult:end of a consultation whose ticket has left: STORE_UNAVAILABLE, then ended once the replica is back', { timeout: 60_000 }, async () => {
    await announceMediaNode(redis, { id: 'media-replica-ack', rooms: 0 });
    const reception = await connectQueue(hub.url, await tokenFor('staff'));
    sockets.push(reception);
    const doctor = await connectConsult(hub.url, await tokenFor('doctor', CLINIC, { sub: 'doctor:replica-ack' }));
    sockets.push(doctor);
    const ticket = expectOk(await request(reception, 'queue:checkin', { dept: 'online' })).event.ticket;
    const consult = expectOk(await consultRequest(doctor, 'consult:admit', { dept: 'online', room: 'v1', requestId: 'replica-ack-end-admit' })).consultation.id;
    const meta = consultKeys(CLINIC, consult).meta;
    // The ticket leaves the queue; the hub ends its consultation with it. A failover that lost that end leaves it open.
    expectOk(await request(reception, 'queue:done', { ticketId: ticket.id, requestId: 'replica-ack-done' }));
    await waitFor('the consultation to end with its ticket', async () => (await redis.hget(meta, 'status')) === 'ended');
    await redis.hset(meta, 'status', 'live');
    await waitFor('the replica to hold the reopened consultation', () => onReplica(async (r) => (await r.hget(meta, 'status')) === 'live'));

    const refused = await withReplicaStopped(() => consultRequest(doctor, 'consult:end', { consult }, 10_000));
    expect(refused).toMatchObject({ ok: false, error: { code: 'STORE_UNAVAILABLE', detail: expect.stringContaining('replica') } });
    const ended = await waitFor('the end, again, to be acknowledged', async () => {
      const ack = await consultRequest(doctor, 'consult:end', { consult }, 10_000);
      return ack.ok ? ack : false;
    }, 20_000);
    // Ended by the first try, which the replica now holds.
    expect(ended).toMatchObject({ alreadyEnded: true, event: null, consultation: { id: consult, status: 'ended' } });
    expect(await onReplica((r) => r.hget(meta, 'status'))).toBe('ended');
  });

  it('a recording\'s purge request: 503 STORE_UNAVAILABLE, then 202 with one purge job once the replica is back', { timeout: 60_000 }, async () => {
    const recording = 'rec-replica-ack';
    const consult = 'consult-replica-ack';
    // A finalised recording, as the media-server and its recordings worker leave it.
    await createRecordingMeta(redis, { id: recording, clinic: CLINIC, consult, node: 'media-replica-ack', startedAt: Date.now() - 60_000 });
    await markRecordingFinal(redis, CLINIC, consult, recording, Date.now(), 0);
    const admin = await tokenFor('admin', CLINIC, { sub: 'admin:replica-ack' });
    const purge = () =>
      fetch(`${hub.url}/api/clinics/${CLINIC}/recordings/${recording}/purge`, {
        method: 'POST',
        headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
        body: JSON.stringify({ reason: 'the patient withdrew consent' }),
        signal: AbortSignal.timeout(10_000),
      });

    const refused = await withReplicaStopped(purge);
    expect(refused.status).toBe(503);
    expect(await refused.json()).toMatchObject({ error: { code: 'STORE_UNAVAILABLE', detail: expect.stringContaining('replica') } });
    const queued = await waitFor('the purge request, again, to be accepted', async () => {
      const response = await purge();
      return response.status === 202 ? response : false;
    }, 20_000);
    expect(await queued.json()).toEqual({ recording, queued: true });

    const jobId = recordingPurgeJobId({ clinic: CLINIC, recording });
    const queue = new Queue<RecordingJob>(JOB_QUEUES.recordings, { connection: redis, prefix: JOB_QUEUE_PREFIX });
    try {
      expect((await queue.getJobs(['waiting', 'delayed', 'prioritized', 'active'])).map((j) => j.id)).toEqual([jobId]);
      expect((await queue.getJob(jobId))?.data.purgeRequest).toMatchObject({ by: 'admin:replica-ack', reason: 'the patient withdrew consent' });
    } finally {
      await queue.close();
    }
    expect(await onReplica((r) => r.exists(`${JOB_QUEUE_PREFIX}:${JOB_QUEUES.recordings}:${jobId}`))).toBe(1);
  });
});
