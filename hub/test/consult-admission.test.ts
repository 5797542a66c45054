/**
 * Admission to a video consultation across two hub nodes (two processes on
 * one Redis): a doctor on one node admits the next patient of an online
 * department; the patient's ticket page, connected to the other node, gets
 * its room token at once; the room tokens verify as the media-server
 * verifies them; displays see the call and nothing else; a patient gets only
 * their own consultation; ending it closes the ticket and tells the
 * media-server nodes.
 */
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CONSULT_RECORD_TYPES,
  JOB_QUEUE_PREFIX,
  JOB_QUEUES,
  consultControlChannel,
  consultKeys,
  type AdmitResult,
  type AiSessionJob,
  type ConsultControlMessage,
  type QueueEvent,
} from '@clinic-hub/protocol';
import { readAudit } from '../src/audit/audit-log.js';
import { RoomTokenError } from '@clinic-hub/platform/tokens';
import { RoomTokenIssuer } from '@clinic-hub/platform/token-issuer';
import { CONSULT_HUB_ENV, TEST_MEDIA_SECRET, announceMediaNode, connectConsult, consultConnectError, consultRequest, recordConsult, startHubProcesses, testRoomTokens, type ConsultSocket } from '@clinic-hub/test-kit/consult-client';
import { tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { connectQueue, expectOk, recordArrivals, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { sleep, waitFor } from '@clinic-hub/test-kit/wait';

const CLINIC = 'testclinic';
/** After the last expected delivery, how long to keep listening for something that must not come. */
const SETTLE_MS = 400;

let redisServer: TestRedis;
let redis: Redis;
let control: Redis;
const controlMessages: ConsultControlMessage[] = [];
let nodeA: HubNodeProcess;
let nodeB: HubNodeProcess;
let reception: QueueSocket;
let display: QueueSocket;
let displayArrivals: ReturnType<typeof recordArrivals>;
const sockets: { close(): void }[] = [];

type HubRole = 'admin' | 'staff' | 'doctor' | 'patient';
async function open(node: HubNodeProcess, role: HubRole, sub: string, ticket?: string): Promise<ConsultSocket> {
  const socket = await connectConsult(node.url, await tokenFor(role, CLINIC, { sub, ...(ticket ? { ticket } : {}) }));
  sockets.push(socket);
  return socket;
}

async function checkIn(dept = 'online', name = '山田 花子'): Promise<QueueEvent['ticket']> {
  return expectOk(await request(reception, 'queue:checkin', { dept, patient: { name, phone: '090-1111-2222' } })).event.ticket;
}

async function ticketNow(ticketId: string) {
  const sync = expectOk(await request(reception, 'queue:sync', {}));
  if (sync.mode !== 'snapshot') throw new Error('expected a snapshot');
  return sync.snapshot.tickets.find((t) => t.id === ticketId) ?? null;
}

beforeAll(async () => {
  redisServer = await startTestRedis();
  redis = new Redis(redisServer.url);
  control = new Redis(redisServer.url);
  control.on('smessage', (_channel: string, raw: string) => controlMessages.push(JSON.parse(raw) as ConsultControlMessage));
  await control.ssubscribe(consultControlChannel(CLINIC));
  await announceMediaNode(redis, { id: 'media-1', url: 'ws://media-1.test:7000', rooms: 0 });
  [nodeA, nodeB] = (await startHubProcesses([
    { redisUrl: redisServer.url, nodeId: 'consult-a', env: CONSULT_HUB_ENV },
    { redisUrl: redisServer.url, nodeId: 'consult-b', env: CONSULT_HUB_ENV },
  ])) as [HubNodeProcess, HubNodeProcess];
  reception = await connectQueue(nodeA.url, await tokenFor('staff'));
  display = await connectQueue(nodeB.url, await tokenFor('display'));
  displayArrivals = recordArrivals(display);
});

afterAll(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  reception?.close();
  display?.close();
  await Promise.all([nodeA?.stop(), nodeB?.stop()]);
  control?.disconnect();
  redis?.disconnect();
  await redisServer?.cleanup();
});

describe('admission across two hub nodes', () => {
  let admitted: AdmitResult;
  let ticket: QueueEvent['ticket'];
  let patient: ConsultSocket;
  let patientGot: ReturnType<typeof recordConsult>;

  it('the patient on the other node gets a room token at once; the doctor gets theirs in the ack', async () => {
    ticket = await checkIn();
    patient = await open(nodeB, 'patient', `patient:${ticket.id}`, ticket.id);
    patientGot = recordConsult(patient);
    const doctor = await open(nodeA, 'doctor', 'doctor:tanaka');

    const started = Date.now();
    const ack = await consultRequest(doctor, 'consult:admit', { dept: 'online', room: 'v1', name: '田中医師', requestId: 'admit-0001' });
    admitted = expectOk(ack);
    expect(admitted.replayed).toBe(false);
    expect(admitted.event).toMatchObject({ type: 'ticket.called', ticket: { id: ticket.id, status: 'called', room: 'v1' } });
    expect(admitted.consultation).toMatchObject({ dept: 'online', ticket: ticket.id, number: ticket.number, room: 'v1', status: 'waiting', node: 'media-1', language: 'ja', endedAt: null });

    const pushed = await waitFor('consult:admitted on the patient page (node B)', () => patientGot.admitted[0], 3000);
    // Pushed, not found on a later poll or reconnect (generous for a busy two-core machine).
    expect(Date.now() - started).toBeLessThan(1500);
    expect(pushed.consultation.id).toBe(admitted.consultation.id);
    expect(pushed.pass).toMatchObject({ consult: admitted.consultation.id, part: 'patient', sub: `patient:${ticket.id}`, mediaUrl: 'ws://media-1.test:7000' });

    // Verified as the media-server verifies it: its own key, aud media, the right consultation and part.
    const patientClaims = testRoomTokens.verify(pushed.pass.token);
    expect(patientClaims).toMatchObject({ aud: 'media', clinic: CLINIC, consult: admitted.consultation.id, part: 'patient', sub: `patient:${ticket.id}` });
    // The name in the room is not the check-in name: the hub never puts patient data into a token.
    expect(patientClaims.name).not.toContain('山田');
    const doctorClaims = testRoomTokens.verify(admitted.pass.token);
    expect(doctorClaims).toMatchObject({ consult: admitted.consultation.id, part: 'doctor', sub: 'doctor:tanaka', name: '田中医師' });
    // Short-lived: the configured two minutes.
    expect(doctorClaims.exp * 1000 - Date.now()).toBeLessThanOrEqual(120_000);
    expect(doctorClaims.exp * 1000 - Date.now()).toBeGreaterThan(100_000);

    const page = new URL(admitted.pass.pageUrl);
    expect(page.pathname).toBe('/consult');
    const fragment = new URLSearchParams(page.hash.slice(1));
    expect(fragment.get('media')).toBe('ws://media-1.test:7000');
    expect(fragment.get('token')).toBe(admitted.pass.token);

    // A token signed with any other key is not a room token.
    expect(() => new RoomTokenIssuer(`${TEST_MEDIA_SECRET}-other`).verify(pushed.pass.token)).toThrow(RoomTokenError);
  });

  it('writes the meta hash and the session record of the contract, and queues one AI session', async () => {
    const keys = consultKeys(CLINIC, admitted.consultation.id);
    const meta = await redis.hgetall(keys.meta);
    expect(meta).toMatchObject({ status: 'waiting', node: 'media-1', dept: 'online', ticket: ticket.id, language: 'ja' });
    expect(Number(meta.createdAt)).toBeGreaterThan(Date.now() - 60_000);
    const record = await redis.xrange(keys.record, '-', '+');
    const types = record.map(([, fields]) => fields[fields.indexOf('type') + 1]);
    expect(types).toEqual(['created', 'admitted']);
    for (const type of types) expect(CONSULT_RECORD_TYPES).toContain(type);
    expect(JSON.stringify(record)).not.toContain('山田');

    const jobs = new Queue<AiSessionJob>(JOB_QUEUES.aiSessions, { connection: new Redis(redisServer.url, { maxRetriesPerRequest: null }), prefix: JOB_QUEUE_PREFIX });
    try {
      const job = await jobs.getJob(`${CLINIC}.${admitted.consultation.id}`);
      // The admission's trace goes with the job (hub/test/job-traces.test.ts follows it into the worker).
      expect(job?.data).toEqual({ clinic: CLINIC, consult: admitted.consultation.id, language: 'ja', traceparent: expect.stringMatching(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/) });
      // The same admission again (a lost ack): the first result, no second consultation, no second job.
      const doctor = await open(nodeB, 'doctor', 'doctor:tanaka');
      const again = expectOk(await consultRequest(doctor, 'consult:admit', { dept: 'online', room: 'v1', requestId: 'admit-0001' }));
      expect(again.replayed).toBe(true);
      expect(again.consultation.id).toBe(admitted.consultation.id);
      expect(await jobs.getJobCounts('waiting', 'active', 'completed', 'delayed', 'failed')).toMatchObject({ waiting: 1 });
    } finally {
      await jobs.close();
    }
  });

  it('displays see the call (number and room) and nothing of the consultation, and cannot connect to /consult', async () => {
    const call = await waitFor('the call on the display', () => displayArrivals.events.find((e) => e.type === 'ticket.called' && e.ticket.id === ticket.id));
    expect(call.ticket).toMatchObject({ number: ticket.number, room: 'v1' });
    const everything = JSON.stringify(displayArrivals);
    expect(everything).not.toContain(admitted.consultation.id);
    expect(everything).not.toContain('山田');
    expect(everything).not.toContain('media-1');
    expect(await consultConnectError(nodeA.url, await tokenFor('display'))).toMatchObject({ code: 'AUTH_FORBIDDEN' });
    expect(await consultConnectError(nodeB.url, await tokenFor('service'))).toMatchObject({ code: 'AUTH_FORBIDDEN' });
  });

  it('the patient asks for a fresh token for their own consultation; joining starts the ticket', async () => {
    const fresh = expectOk(await consultRequest(patient, 'consult:join', {}));
    expect(fresh.consultation.id).toBe(admitted.consultation.id);
    expect(testRoomTokens.verify(fresh.pass.token)).toMatchObject({ consult: admitted.consultation.id, part: 'patient', sub: `patient:${ticket.id}` });
    expect(await ticketNow(ticket.id)).toMatchObject({ status: 'in_consultation' });
    // Naming their own consultation or ticket is the same.
    expectOk(await consultRequest(patient, 'consult:join', { consult: admitted.consultation.id }));
    expectOk(await consultRequest(patient, 'consult:join', { ticketId: ticket.id }));
    // A page that reconnects is told again, with a fresh pass.
    const again = await open(nodeA, 'patient', `patient:${ticket.id}`, ticket.id);
    const againGot = recordConsult(again);
    const told = await waitFor('consult:admitted on reconnect', () => againGot.admitted[0]);
    expect(told.consultation.id).toBe(admitted.consultation.id);
  });

  it('a patient cannot get a room token for another ticket\'s consultation, nor hear of its admission', async () => {
    const other = await checkIn('online', '佐藤 次郎');
    const intruder = await open(nodeA, 'patient', `patient:${other.id}`, other.id);
    const intruderGot = recordConsult(intruder);
    for (const payload of [{ consult: admitted.consultation.id }, { ticketId: ticket.id }, { consult: admitted.consultation.id, name: 'x' }]) {
      expect(await consultRequest(intruder, 'consult:join', payload)).toMatchObject({ ok: false, error: { code: 'CONSULT_NOT_PARTICIPANT' } });
    }
    // Not yet admitted themselves.
    expect(await consultRequest(intruder, 'consult:join', {})).toMatchObject({ ok: false, error: { code: 'CONSULT_NOT_FOUND' } });
    // Clinician events are refused by role.
    for (const event of ['consult:invite', 'consult:end', 'consult:subscribe', 'consult:ai-history', 'consult:admit'] as const) {
      const reply = await consultRequest(intruder, event, { consult: admitted.consultation.id, part: 'family', dept: 'online', room: 'v2' } as never);
      expect(reply, event).toMatchObject({ ok: false, error: { code: 'AUTH_FORBIDDEN' } });
    }
    await sleep(SETTLE_MS);
    expect(intruderGot.admitted).toEqual([]);
    // Cancelled so that the next admissions take the tickets of these tests.
    expectOk(await request(reception, 'queue:cancel', { ticketId: other.id }));
  });

  it('a clinician invites an interpreter (a link) and a nurse joins as nurse; reads are audited', async () => {
    const doctor = await open(nodeB, 'doctor', 'doctor:tanaka');
    const invited = expectOk(await consultRequest(doctor, 'consult:invite', { ticketId: ticket.id, part: 'interpreter', name: 'Interpreter (EN)' }));
    expect(invited.pass.part).toBe('interpreter');
    const claims = testRoomTokens.verify(invited.pass.token);
    expect(claims).toMatchObject({ consult: admitted.consultation.id, part: 'interpreter', name: 'Interpreter (EN)' });
    expect(claims.sub).toMatch(/^guest:/);
    // An invitation lives longer than a room token (CONSULT_INVITE_TTL_SECONDS, 15 minutes here).
    expect(claims.exp * 1000 - Date.now()).toBeGreaterThan(800_000);
    expect(new URLSearchParams(new URL(invited.pass.pageUrl).hash.slice(1)).get('token')).toBe(invited.pass.token);

    const nurse = await open(nodeA, 'staff', 'staff:suzuki');
    const joined = expectOk(await consultRequest(nurse, 'consult:join', { consult: admitted.consultation.id }));
    expect(testRoomTokens.verify(joined.pass.token)).toMatchObject({ part: 'nurse', sub: 'staff:suzuki' });
    const audit = await readAudit(redis, CLINIC, 20);
    expect(audit).toContainEqual(expect.objectContaining({ actor: 'staff:suzuki', role: 'staff', action: 'consult.join', subject: admitted.consultation.id }));
  });

  it('lists the consultation for operations, without names, and counts it in /api/ops/status', async () => {
    const res = await fetch(`${nodeB.url}/api/clinics/${CLINIC}/consultations`, { headers: { authorization: `Bearer ${await tokenFor('staff')}` } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { consultations: { id: string; status: string; participants: number | null }[]; mediaNodes: { id: string }[] };
    expect(body.consultations.find((c) => c.id === admitted.consultation.id)).toMatchObject({ status: 'waiting', node: 'media-1', dept: 'online', participants: null });
    expect(body.mediaNodes.map((n) => n.id)).toEqual(['media-1']);
    expect(JSON.stringify(body)).not.toContain('山田');
    // The media-server keeps a count of people in the room on the meta hash; the list shows it.
    await redis.hset(consultKeys(CLINIC, admitted.consultation.id).meta, 'participants', '3');
    const withCount = (await (await fetch(`${nodeA.url}/api/clinics/${CLINIC}/consultations`, { headers: { authorization: `Bearer ${await tokenFor('admin', '*')}` } })).json()) as typeof body;
    expect(withCount.consultations.find((c) => c.id === admitted.consultation.id)?.participants).toBe(3);

    const forbidden = await fetch(`${nodeA.url}/api/clinics/${CLINIC}/consultations`, { headers: { authorization: `Bearer ${await tokenFor('patient', CLINIC, { ticket: ticket.id })}` } });
    expect(forbidden.status).toBe(403);
    const wrongClinic = await fetch(`${nodeA.url}/api/clinics/${CLINIC}/consultations`, { headers: { authorization: `Bearer ${await tokenFor('staff', 'otherclinic')}` } });
    expect(((await wrongClinic.json()) as { error: { code: string } }).error.code).toBe('AUTH_WRONG_CLINIC');

    const status = (await (await fetch(`${nodeA.url}/api/ops/status`, { headers: { authorization: `Bearer ${await tokenFor('staff')}` } })).json()) as {
      clinics: { id: string; liveRooms: number }[];
      mediaNodes: { id: string }[];
    };
    expect(status.clinics.find((c) => c.id === CLINIC)?.liveRooms).toBe(1);
    expect(status.mediaNodes.map((n) => n.id)).toEqual(['media-1']);
  });

  it('ending it finishes the ticket, tells the media-server nodes and the patient, and no token is issued after', async () => {
    const doctor = await open(nodeA, 'doctor', 'doctor:tanaka');
    controlMessages.length = 0;
    const traceId = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
    const ended = expectOk(await consultRequest(doctor, 'consult:end', { consult: admitted.consultation.id, traceparent: `00-${traceId}-0102030405060708-01` } as never));
    expect(ended.alreadyEnded).toBe(false);
    expect(ended.consultation).toMatchObject({ status: 'ended' });
    expect(ended.consultation.endedAt).toBeGreaterThan(0);
    expect(ended.event).toMatchObject({ type: 'ticket.done', ticket: { id: ticket.id, status: 'done' } });
    expect(await ticketNow(ticket.id)).toBeNull();

    const message = await waitFor('the control message', () => controlMessages[0]);
    expect(message).toMatchObject({ consult: admitted.consultation.id, action: 'end', ticket: ticket.id });
    // The media-server closes the room in the doctor's trace (a span of the hub's own under it).
    expect(message.traceparent).toMatch(new RegExp(`^00-${traceId}-(?!0102030405060708)[0-9a-f]{16}-01$`));
    expect(await redis.hget(consultKeys(CLINIC, admitted.consultation.id).meta, 'status')).toBe('ended');
    await waitFor('consult:ended on the patient page', () => patientGot.ended.find((e) => e.consult === admitted.consultation.id));

    expect(await consultRequest(patient, 'consult:join', {})).toMatchObject({ ok: false, error: { code: 'CONSULT_ENDED' } });
    expect(await consultRequest(doctor, 'consult:join', { consult: admitted.consultation.id })).toMatchObject({ ok: false, error: { code: 'CONSULT_ENDED' } });
    // Ending again is harmless.
    expect(expectOk(await consultRequest(doctor, 'consult:end', { consult: admitted.consultation.id }))).toMatchObject({ alreadyEnded: true, event: null });
    await sleep(SETTLE_MS);
    expect(controlMessages).toHaveLength(1);
    const record = await redis.xrange(consultKeys(CLINIC, admitted.consultation.id).record, '-', '+');
    expect(record.map(([, f]) => f[f.indexOf('type') + 1])).toEqual(['created', 'admitted', 'ended']);
  });

  it('a consultation ends with its ticket when staff finish it in the queue, and a named ticket can be admitted', async () => {
    const first = await checkIn();
    const second = await checkIn();
    const doctor = await open(nodeB, 'doctor', 'doctor:sato');
    // The second in line, by name.
    const named = expectOk(await consultRequest(doctor, 'consult:admit', { dept: 'online', room: 'v2', ticketId: second.id }));
    expect(named.event.ticket).toMatchObject({ id: second.id, status: 'called', room: 'v2' });
    expect(await ticketNow(first.id)).toMatchObject({ status: 'waiting' });

    controlMessages.length = 0;
    expectOk(await request(reception, 'queue:cancel', { ticketId: second.id }));
    const message = await waitFor('the control message after the queue cancel', () => controlMessages.find((m) => m.consult === named.consultation.id));
    expect(message.action).toBe('end');
    expect(await redis.hget(consultKeys(CLINIC, named.consultation.id).meta, 'status')).toBe('ended');
    await sleep(SETTLE_MS);
    // Every hub node saw the cancel; the consultation ended once.
    expect(controlMessages.filter((m) => m.consult === named.consultation.id)).toHaveLength(1);
    expectOk(await request(reception, 'queue:cancel', { ticketId: first.id }));
  });
});
