/**
 * Bad input on `/consult`: malformed, oversized, unauthorised and
 * out-of-order requests each get an error with a code, and the node keeps
 * admitting. A hub without MEDIA_TOKEN_SECRET says so with CONSULT_DISABLED.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signed, tampered, unsigned } from '@clinic-hub/test-kit/forged-tokens';
import {
  CONSULT_HUB_ENV,
  announceMediaNode,
  connectConsult,
  consultConnectError,
  consultRequest,
  consultRequestRaw,
  recordConsult,
  startHubProcesses,
  testRoomTokens,
  type ConsultSocket,
} from '@clinic-hub/test-kit/consult-client';
import { tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { connectQueue, expectOk, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { sleep, waitFor } from '@clinic-hub/test-kit/wait';

let redisServer: TestRedis;
let redis: Redis;
let hub: HubNodeProcess;
let disabledHub: HubNodeProcess;
let reception: QueueSocket;
let doctor: ConsultSocket;
const sockets: { close(): void }[] = [];

async function open(node: HubNodeProcess, role: 'admin' | 'staff' | 'doctor' | 'patient', extra: { ticket?: string; ttlSeconds?: number; sub?: string } = {}) {
  const socket = await connectConsult(node.url, await tokenFor(role, 'testclinic', extra));
  sockets.push(socket);
  return socket;
}

/** The node still admits: a check-in, an admission and the end of it all work. */
async function expectStillAdmitting(): Promise<void> {
  const ticket = expectOk(await request(reception, 'queue:checkin', { dept: 'online' })).event.ticket.id;
  const admitted = expectOk(await consultRequest(doctor, 'consult:admit', { dept: 'online', room: 'v2' }));
  expect(admitted.consultation.ticket).toBe(ticket);
  expectOk(await consultRequest(doctor, 'consult:end', { consult: admitted.consultation.id }));
  expect(doctor.connected).toBe(true);
  expect(hub.process.exitCode).toBeNull();
}

beforeAll(async () => {
  redisServer = await startTestRedis();
  redis = new Redis(redisServer.url);
  await announceMediaNode(redis, { id: 'media-bad', url: 'ws://media-bad.test' });
  [hub, disabledHub] = (await startHubProcesses([
    { redisUrl: redisServer.url, nodeId: 'consult-bad', env: CONSULT_HUB_ENV },
    { redisUrl: redisServer.url, nodeId: 'consult-off' },
  ])) as [HubNodeProcess, HubNodeProcess];
  reception = await connectQueue(hub.url, await tokenFor('staff'));
  doctor = await open(hub, 'doctor');
});

afterAll(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  reception?.close();
  await Promise.all([hub?.stop(), disabledHub?.stop()]);
  redis?.disconnect();
  await redisServer?.cleanup();
});

describe('malformed and oversized payloads', () => {
  it('get INVALID_PAYLOAD naming the field, PAYLOAD_TOO_LARGE or UNKNOWN_EVENT', async () => {
    const cases: [string, unknown, string][] = [
      ['consult:admit', {}, 'dept'],
      ['consult:admit', { dept: 'online' }, 'room'],
      ['consult:admit', { dept: 'online', room: 'v1', ticketId: '../../etc' }, 'ticketId'],
      ['consult:admit', { dept: 'online', room: 'v1', language: 'fr' }, 'language'],
      ['consult:admit', { dept: 'online', room: 'v1', requestId: 'short' }, 'requestId'],
      ['consult:admit', { dept: 'online', room: 'v1', name: 'a\u0007b' }, 'name'],
      ['consult:join', { consult: 'abcdefgh12', ticketId: 'abc' }, 'consult'],
      ['consult:join', { consult: 'x' }, 'consult'],
      ['consult:invite', { consult: 'abcdefgh12', part: 'doctor' }, 'part'],
      ['consult:invite', { part: 'family' }, 'consult'],
      ['consult:end', {}, 'consult'],
      ['consult:subscribe', { consult: 'no/slashes/here' }, 'consult'],
      ['consult:ai-history', { consult: 'abcdefgh12', limit: 0 }, 'limit'],
      ['consult:ai-history', { consult: 'abcdefgh12', after: 'yesterday' }, 'after'],
      ['auth:refresh', { extra: 1 }, ''],
    ];
    for (const [event, payload, field] of cases) {
      const reply = await consultRequestRaw(doctor, event, payload);
      expect(reply, `${event} ${JSON.stringify(payload)}`).toMatchObject({ ok: false, error: { code: 'INVALID_PAYLOAD' } });
      expect(reply.error?.detail ?? '', event).toContain(field);
    }
    for (const payload of ['text', 42, [1, 2], null]) {
      expect(await consultRequestRaw(doctor, 'consult:admit', payload)).toMatchObject({ ok: false, error: { code: 'INVALID_PAYLOAD' } });
    }
    expect(await consultRequestRaw(doctor, 'consult:admit', { dept: 'online', room: 'v1', name: 'x'.repeat(40_000) })).toMatchObject({
      ok: false,
      error: { code: 'PAYLOAD_TOO_LARGE' },
    });
    expect(await consultRequestRaw(doctor, 'consult:teleport', {})).toMatchObject({ ok: false, error: { code: 'UNKNOWN_EVENT' } });
    // Without an ack callback the error comes as hub:error.
    const got = recordConsult(doctor);
    (doctor as unknown as { emit(event: string, payload: unknown): void }).emit('consult:end', {});
    const error = await waitFor('hub:error', () => got.errors[0]);
    expect(error).toMatchObject({ code: 'INVALID_PAYLOAD', event: 'consult:end' });
    await expectStillAdmitting();
  });
});

describe('unauthorised', () => {
  it('refuses missing, forged, expired and room tokens at connect', async () => {
    expect(await consultConnectError(hub.url, undefined)).toMatchObject({ code: 'AUTH_REQUIRED' });
    expect(await consultConnectError(hub.url, await signed({ role: 'doctor', clinic: 'testclinic' }, { secret: 'y'.repeat(48) }))).toMatchObject({ code: 'AUTH_INVALID' });
    expect(await consultConnectError(hub.url, unsigned({ role: 'admin', clinic: '*' }))).toMatchObject({ code: 'AUTH_INVALID' });
    expect(await consultConnectError(hub.url, tampered(await tokenFor('patient', 'testclinic', { ticket: 't1' }), { role: 'doctor' }))).toMatchObject({ code: 'AUTH_INVALID' });
    expect(await consultConnectError(hub.url, await signed({ role: 'doctor', clinic: 'testclinic', exp: Math.floor(Date.now() / 1000) - 5 }))).toMatchObject({ code: 'AUTH_EXPIRED' });
    expect(await consultConnectError(hub.url, await signed({ role: 'patient', clinic: 'testclinic' }))).toMatchObject({ code: 'AUTH_INVALID' });
    // A room token is for the media-server (aud "media"), never a hub token.
    const roomToken = testRoomTokens.issue({ sub: 'doctor:x', clinic: 'testclinic', consult: 'abcdefgh12', part: 'doctor', name: 'x' }, 60).token;
    expect(await consultConnectError(hub.url, roomToken)).toMatchObject({ code: 'AUTH_INVALID' });
    expect(await consultConnectError(hub.url, await tokenFor('doctor', 'otherclinic'), { clinic: 'testclinic' })).toMatchObject({ code: 'AUTH_WRONG_CLINIC' });
  });

  it('disconnects a socket when its token expires, with hub:session-ended AUTH_EXPIRED', async () => {
    const shortLived = await open(hub, 'doctor', { ttlSeconds: 2, sub: 'doctor:short' });
    const ended = new Promise<{ code: string }>((resolve) => shortLived.once('hub:session-ended', resolve));
    expect(await ended).toMatchObject({ code: 'AUTH_EXPIRED' });
    await waitFor('the disconnect', () => !shortLived.connected);
  });

  it('answers consultations that do not exist, and admissions to departments that are not online', async () => {
    for (const event of ['consult:join', 'consult:end', 'consult:subscribe', 'consult:ai-history'] as const) {
      expect(await consultRequest(doctor, event, { consult: 'doesNotExist1' }), event).toMatchObject({ ok: false, error: { code: 'CONSULT_NOT_FOUND' } });
    }
    expect(await consultRequest(doctor, 'consult:invite', { ticketId: 'no-such-ticket', part: 'family' })).toMatchObject({ ok: false, error: { code: 'CONSULT_NOT_FOUND' } });
    expect(await consultRequest(doctor, 'consult:admit', { dept: 'gp', room: 'r1' })).toMatchObject({ ok: false, error: { code: 'CONSULT_DEPT_NOT_ONLINE' } });
    expect(await consultRequest(doctor, 'consult:admit', { dept: 'online', room: 'v1' })).toMatchObject({ ok: false, error: { code: 'QUEUE_EMPTY' } });
    // A clinician must say which consultation.
    expect(await consultRequest(doctor, 'consult:join', {})).toMatchObject({ ok: false, error: { code: 'INVALID_PAYLOAD' } });
    await expectStillAdmitting();
  });

  it('out of order: an ended consultation gives no pass and no invitation', async () => {
    const ticket = expectOk(await request(reception, 'queue:checkin', { dept: 'online' })).event.ticket.id;
    const admitted = expectOk(await consultRequest(doctor, 'consult:admit', { dept: 'online', room: 'v1' }));
    expectOk(await consultRequest(doctor, 'consult:end', { ticketId: ticket }));
    const patient = await open(hub, 'patient', { ticket, sub: `patient:${ticket}` });
    expect(await consultRequest(patient, 'consult:join', {})).toMatchObject({ ok: false, error: { code: 'CONSULT_ENDED' } });
    expect(await consultRequest(doctor, 'consult:invite', { consult: admitted.consultation.id, part: 'family' })).toMatchObject({ ok: false, error: { code: 'CONSULT_ENDED' } });
  });
});

describe('a hub without MEDIA_TOKEN_SECRET', () => {
  it('answers CONSULT_DISABLED and calls nobody', async () => {
    const ticket = expectOk(await request(reception, 'queue:checkin', { dept: 'online' })).event.ticket.id;
    const offDoctor = await open(disabledHub, 'doctor');
    expect(await consultRequest(offDoctor, 'consult:admit', { dept: 'online', room: 'v1' })).toMatchObject({ ok: false, error: { code: 'CONSULT_DISABLED' } });
    expect(await consultRequest(offDoctor, 'consult:join', { consult: 'abcdefgh12' })).toMatchObject({ ok: false, error: { code: 'CONSULT_DISABLED' } });
    const sync = expectOk(await request(reception, 'queue:sync', {}));
    if (sync.mode !== 'snapshot') throw new Error('expected a snapshot');
    expect(sync.snapshot.tickets.find((t) => t.id === ticket)).toMatchObject({ status: 'waiting' });
    expectOk(await request(reception, 'queue:cancel', { ticketId: ticket }));
  });
});

describe('the consultations route', () => {
  it('refuses bad requests with codes', async () => {
    const url = `${hub.url}/api/clinics/testclinic/consultations`;
    const staff = { authorization: `Bearer ${await tokenFor('staff')}` };
    expect((await fetch(url)).status).toBe(401);
    const bad = await fetch(`${url}?count=0`, { headers: staff });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('INVALID_PAYLOAD');
    expect((await fetch(url, { method: 'POST', headers: staff })).status).toBe(405);
    expect((await fetch(`${hub.url}/api/clinics/nowhere/consultations`, { headers: { authorization: `Bearer ${await tokenFor('admin', '*')}` } })).status).toBe(404);
    expect((await fetch(url, { headers: { authorization: `Bearer ${await tokenFor('display')}` } })).status).toBe(403);
  });
});
