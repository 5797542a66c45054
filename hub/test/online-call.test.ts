/**
 * No dead ends in an online department, through the real hub: its patients
 * wait at home and can only come in through a consultation, so a plain
 * `queue:call-next` there is refused (QUEUE_DEPT_ONLINE, nothing changes)
 * instead of telling the patient to press a join button that does not exist;
 * and admitting the next patient to video behaves as call-next does when the
 * room's previous patient is in consultation: that one is finished (their
 * consultation ends and their page is told), the next is called and
 * admitted.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consultKeys } from '@clinic-hub/protocol';
import { CONSULT_HUB_ENV, announceMediaNode, connectConsult, consultRequest, recordConsult } from '@clinic-hub/test-kit/consult-client';
import { startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { connectQueue, expectOk, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { waitFor } from '@clinic-hub/test-kit/wait';

const CLINIC = 'testclinic';

let redisServer: TestRedis;
let redis: Redis;
let hub: HubNodeProcess;
let staff: QueueSocket;
const sockets: { close(): void }[] = [];

beforeAll(async () => {
  redisServer = await startTestRedis();
  redis = new Redis(redisServer.url);
  await announceMediaNode(redis, { id: 'media-1', url: 'ws://media-1.test:7000' });
  hub = await startHubProcess({ redisUrl: redisServer.url, nodeId: 'online-call', env: CONSULT_HUB_ENV });
  staff = await connectQueue(hub.url, await tokenFor('staff'));
});

afterAll(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  staff?.close();
  await hub?.stop();
  redis?.disconnect();
  await redisServer?.cleanup();
});

async function snapshotNow() {
  const sync = expectOk(await request(staff, 'queue:sync', {}));
  if (sync.mode !== 'snapshot') throw new Error('expected a snapshot');
  return sync.snapshot;
}

describe('calling in an online department', () => {
  it('queue:call-next is refused with QUEUE_DEPT_ONLINE and a hint, and calls nobody', async () => {
    const ticket = expectOk(await request(staff, 'queue:checkin', { dept: 'online' })).event.ticket;
    const before = await snapshotNow();
    const refused = await request(staff, 'queue:call-next', { dept: 'online', room: 'v1' });
    expect(refused).toMatchObject({ ok: false, error: { code: 'QUEUE_DEPT_ONLINE' } });
    if (!refused.ok) expect(refused.error.detail).toContain('consult:admit');
    const after = await snapshotNow();
    expect(after.seq).toBe(before.seq);
    expect(after.tickets.find((t) => t.id === ticket.id)).toMatchObject({ status: 'waiting', room: null });
    // In-person departments are called as before.
    const gp = expectOk(await request(staff, 'queue:checkin', { dept: 'gp' })).event.ticket;
    expect(expectOk(await request(staff, 'queue:call-next', { dept: 'gp', room: 'r1' })).event.ticket.id).toBe(gp.id);
    expectOk(await request(staff, 'queue:done', { ticketId: gp.id }));
    expectOk(await request(staff, 'queue:cancel', { ticketId: ticket.id }));
  });

  it('admitting the next patient finishes the room\'s patient in consultation, as call-next does', async () => {
    const doctor = await connectConsult(hub.url, await tokenFor('doctor', CLINIC, { sub: 'doctor:next' }));
    sockets.push(doctor);
    const first = expectOk(await request(staff, 'queue:checkin', { dept: 'online' })).event.ticket;
    const second = expectOk(await request(staff, 'queue:checkin', { dept: 'online' })).event.ticket;
    const firstPage = await connectConsult(hub.url, await tokenFor('patient', CLINIC, { ticket: first.id, sub: `patient:${first.id}` }));
    const secondPage = await connectConsult(hub.url, await tokenFor('patient', CLINIC, { ticket: second.id, sub: `patient:${second.id}` }));
    sockets.push(firstPage, secondPage);
    const firstGot = recordConsult(firstPage);
    const secondGot = recordConsult(secondPage);

    const one = expectOk(await consultRequest(doctor, 'consult:admit', { dept: 'online', room: 'v1' }));
    expect(one.event.ticket.id).toBe(first.id);
    // Only called (the patient has not come in): the room is busy, as for call-next.
    expect(await consultRequest(doctor, 'consult:admit', { dept: 'online', room: 'v1' })).toMatchObject({ ok: false, error: { code: 'QUEUE_ROOM_BUSY' } });
    // The patient joins: their ticket is in consultation.
    expectOk(await consultRequest(firstPage, 'consult:join', {}));
    expect((await snapshotNow()).tickets.find((t) => t.id === first.id)?.status).toBe('in_consultation');

    const two = expectOk(await consultRequest(doctor, 'consult:admit', { dept: 'online', room: 'v1' }));
    expect(two.event.ticket).toMatchObject({ id: second.id, status: 'called', room: 'v1' });
    const tickets = (await snapshotNow()).tickets;
    expect(tickets.some((t) => t.id === first.id)).toBe(false);
    await waitFor('the first consultation to end', async () => ((await redis.hget(consultKeys(CLINIC, one.consultation.id).meta, 'status')) === 'ended' || undefined));
    await waitFor('the first patient\'s page to hear of the end', () => firstGot.ended.find((e) => e.consult === one.consultation.id));
    await waitFor('the second patient\'s page to get its join pass', () => secondGot.admitted.find((a) => a.consultation.id === two.consultation.id));
    // The clinician's "Join video" for the new patient finds the consultation.
    expect(expectOk(await consultRequest(doctor, 'consult:join', { ticketId: second.id })).consultation.id).toBe(two.consultation.id);
    expectOk(await consultRequest(doctor, 'consult:end', { consult: two.consultation.id }));
  });
});
