/**
 * Where consultations go: the consult domain driven directly (plain data in
 * and out) against a real Redis, with media-server nodes announced the way
 * media-server nodes announce themselves (a hash with a short expiry, the id
 * in `media:nodes`). The least-loaded live node that is not draining takes a
 * new consultation; draining and expired nodes take none; without a node no
 * patient is called; a consultation whose node has gone moves.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MEDIA_NODES_KEY, consultKeys, type MediaNodeInfo } from '@clinic-hub/protocol';
import type { RoomTokenIssuer } from '@clinic-hub/platform/token-issuer';
import { ClinicRegistry } from '../src/clinics/clinic-registry.js';
import type { ConsultCaller, ConsultService } from '../src/consult/consult-service.js';
import { listMediaNodes, pickMediaNode } from '../src/consult/media-nodes.js';
import { QueueService } from '../src/queue/index.js';
import { announceMediaNode, testRoomTokens } from '@clinic-hub/test-kit/consult-client';
import { TEST_CLINICS_DIR } from '@clinic-hub/test-kit/hub-node';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { sleep } from '@clinic-hub/test-kit/wait';
import { testConsultService } from './support/consult-service.js';

const C = 'testclinic';
const doctor: ConsultCaller = { sub: 'doctor:placement', role: 'doctor', ticket: null, address: '127.0.0.1' };

let redisServer: TestRedis;
let redis: Redis;
let queue: QueueService;
let consult: ConsultService;

function service(options: { roomTokens?: RoomTokenIssuer | null } = {}): ConsultService {
  return testConsultService({ redis, clinics: ClinicRegistry.fromDirectory(TEST_CLINICS_DIR), queue, ...options });
}

async function waitingTicket(dept = 'online'): Promise<string> {
  const checkin = await queue.checkin(C, { dept, priority: 'normal' });
  if (!checkin.ok) throw new Error(checkin.error.code);
  return checkin.event.ticket.id;
}

const node = (id: string, rooms: number, extra: Partial<MediaNodeInfo> = {}): MediaNodeInfo => ({
  id,
  url: `ws://${id}`,
  rooms,
  participants: 0,
  startedAt: 0,
  draining: false,
  ...extra,
});

beforeAll(async () => {
  redisServer = await startTestRedis();
  redis = new Redis(redisServer.url);
  queue = new QueueService(redis, ClinicRegistry.fromDirectory(TEST_CLINICS_DIR));
  consult = service();
});
afterAll(async () => {
  redis?.disconnect();
  await redisServer?.cleanup();
});
beforeEach(async () => {
  await redis.flushall();
});

describe('choosing a node', () => {
  it('takes the fewest rooms, then the fewest people, and never a draining node', () => {
    expect(pickMediaNode([node('a', 3), node('b', 1, { draining: true }), node('c', 2)])?.id).toBe('c');
    expect(pickMediaNode([node('a', 2, { participants: 5 }), node('b', 2, { participants: 1 })])?.id).toBe('b');
    expect(pickMediaNode([node('a', 0, { draining: true })])).toBeNull();
    expect(pickMediaNode([])).toBeNull();
  });

  it('sees only nodes whose heartbeat has not expired', async () => {
    await announceMediaNode(redis, { id: 'alive', rooms: 4 });
    await announceMediaNode(redis, { id: 'dying', rooms: 0, ttlMs: 150 });
    await redis.sadd(MEDIA_NODES_KEY, 'never-announced');
    expect((await listMediaNodes(redis)).map((n) => n.id)).toEqual(['alive', 'dying']);
    await sleep(300);
    const live = await listMediaNodes(redis);
    expect(live.map((n) => n.id)).toEqual(['alive']);
    expect(live[0]).toMatchObject({ url: 'ws://127.0.0.1:1/alive', rooms: 4, draining: false });
  });
});

describe('admission places the consultation', () => {
  it('on the least-loaded live node that is not draining', async () => {
    await announceMediaNode(redis, { id: 'm1', url: 'ws://m1.test', rooms: 3 });
    await announceMediaNode(redis, { id: 'm2', url: 'ws://m2.test', rooms: 0, draining: true });
    await announceMediaNode(redis, { id: 'm3', url: 'ws://m3.test', rooms: 2 });
    await announceMediaNode(redis, { id: 'm4', url: 'ws://m4.test', rooms: 0, ttlMs: 100 });
    await sleep(250);
    await waitingTicket();
    const admitted = await consult.admit(C, doctor, { dept: 'online', room: 'v1' });
    if (!admitted.ok) throw new Error(admitted.error.code);
    expect(admitted.consultation.node).toBe('m3');
    expect(admitted.pass.mediaUrl).toBe('ws://m3.test');
    expect(admitted.patient.pass.mediaUrl).toBe('ws://m3.test');
    expect(await redis.hget(consultKeys(C, admitted.consultation.id).meta, 'node')).toBe('m3');
  });

  it('nowhere when every node drains or has gone: MEDIA_NODE_UNAVAILABLE, and the patient is not called', async () => {
    const ticket = await waitingTicket();
    expect(await consult.admit(C, doctor, { dept: 'online', room: 'v1' })).toMatchObject({ ok: false, error: { code: 'MEDIA_NODE_UNAVAILABLE' } });
    await announceMediaNode(redis, { id: 'draining', rooms: 0, draining: true });
    await announceMediaNode(redis, { id: 'gone', rooms: 0, ttlMs: 100 });
    await sleep(250);
    expect(await consult.admit(C, doctor, { dept: 'online', room: 'v1', ticketId: ticket })).toMatchObject({ ok: false, error: { code: 'MEDIA_NODE_UNAVAILABLE' } });
    expect(await queue.ticket(C, ticket)).toMatchObject({ status: 'waiting', room: null });
  });

  it('moves to a live node when its own has gone, for whoever asks for a fresh pass', async () => {
    await announceMediaNode(redis, { id: 'first', url: 'ws://first.test', ttlMs: 300 });
    const ticket = await waitingTicket();
    const admitted = await consult.admit(C, doctor, { dept: 'online', room: 'v1' });
    if (!admitted.ok) throw new Error(admitted.error.code);
    expect(admitted.consultation.node).toBe('first');
    await sleep(450);
    const patient: ConsultCaller = { sub: `patient:${ticket}`, role: 'patient', ticket, address: '127.0.0.1' };
    // Nowhere to go yet.
    expect(await consult.join(C, patient, {})).toMatchObject({ ok: false, error: { code: 'MEDIA_NODE_UNAVAILABLE' } });
    await announceMediaNode(redis, { id: 'second', url: 'ws://second.test' });
    const joined = await consult.join(C, patient, {});
    if (!joined.ok) throw new Error(joined.error.code);
    expect(joined.consultation.node).toBe('second');
    expect(joined.pass.mediaUrl).toBe('ws://second.test');
    expect(testRoomTokens.verify(joined.pass.token)).toMatchObject({ consult: admitted.consultation.id, part: 'patient' });
    expect(await redis.hmget(consultKeys(C, admitted.consultation.id).meta, 'node', 'status')).toEqual(['second', 'waiting']);
  });
});

describe('admission refuses', () => {
  it('when the hub has no media token secret, and for departments that are not online', async () => {
    await announceMediaNode(redis, { id: 'm1' });
    await waitingTicket('gp');
    expect(await service({ roomTokens: null }).admit(C, doctor, { dept: 'online', room: 'v1' })).toMatchObject({ ok: false, error: { code: 'CONSULT_DISABLED' } });
    expect(await consult.admit(C, doctor, { dept: 'gp', room: 'r1' })).toMatchObject({ ok: false, error: { code: 'CONSULT_DEPT_NOT_ONLINE' } });
    expect(await consult.admit(C, doctor, { dept: 'online', room: 'r1' })).toMatchObject({ ok: false, error: { code: 'QUEUE_ROOM_NOT_FOUND' } });
    expect(await consult.admit(C, doctor, { dept: 'online', room: 'v1' })).toMatchObject({ ok: false, error: { code: 'QUEUE_EMPTY' } });
    expect(await consult.admit(C, doctor, { dept: 'nope', room: 'v1' })).toMatchObject({ ok: false, error: { code: 'QUEUE_DEPT_NOT_FOUND' } });
    const patient: ConsultCaller = { sub: 'patient:x', role: 'patient', ticket: 'x', address: '127.0.0.1' };
    expect(await consult.admit(C, patient, { dept: 'online', room: 'v1' })).toMatchObject({ ok: false, error: { code: 'AUTH_FORBIDDEN' } });
  });

  it('a named ticket that is not waiting in that department', async () => {
    await announceMediaNode(redis, { id: 'm1' });
    const gpTicket = await waitingTicket('gp');
    expect(await consult.admit(C, doctor, { dept: 'online', room: 'v1', ticketId: gpTicket })).toMatchObject({ ok: false, error: { code: 'QUEUE_TICKET_NOT_FOUND' } });
    const ticket = await waitingTicket();
    expect((await consult.admit(C, doctor, { dept: 'online', room: 'v1', ticketId: ticket })).ok).toBe(true);
    // Already called: not waiting any more.
    expect(await consult.admit(C, doctor, { dept: 'online', room: 'v2', ticketId: ticket })).toMatchObject({ ok: false, error: { code: 'QUEUE_INVALID_TRANSITION' } });
    // The room has a called patient who has not joined yet: end that consultation first.
    await waitingTicket();
    expect(await consult.admit(C, doctor, { dept: 'online', room: 'v1' })).toMatchObject({ ok: false, error: { code: 'QUEUE_ROOM_BUSY' } });
  });
});
