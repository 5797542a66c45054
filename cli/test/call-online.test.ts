/**
 * `clinic call-next` in an online department, against a real hub and Redis:
 * the patient is admitted to video (the consultation opens and their page
 * gets the join pass), never called to a room they cannot walk to. The JSON
 * says so for scripts; the text says how the clinician gets in.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { consultKeys } from '@clinic-hub/protocol';
import { CONSULT_HUB_ENV, announceMediaNode, connectConsult, recordConsult, testRoomTokens } from '@clinic-hub/test-kit/consult-client';
import { startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { connectQueue, expectOk, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { waitFor } from '@clinic-hub/test-kit/wait';
import { cleanEnv, runCli } from '@clinic-hub/test-kit/run-cli';

vi.setConfig({ testTimeout: 120_000 });

const CLINIC = 'testclinic';
let redisServer: TestRedis;
let redis: Redis;
let hub: HubNodeProcess;
let reception: QueueSocket;
let staff: string;
const sockets: { close(): void }[] = [];

beforeAll(async () => {
  redisServer = await startTestRedis();
  redis = new Redis(redisServer.url);
  await announceMediaNode(redis, { id: 'media-cli', url: 'ws://media-cli.test:7000' });
  hub = await startHubProcess({ redisUrl: redisServer.url, nodeId: 'cli-online', env: CONSULT_HUB_ENV });
  staff = await tokenFor('staff', CLINIC, { sub: 'staff:desk' });
  reception = await connectQueue(hub.url, staff);
});

afterAll(async () => {
  for (const socket of sockets) socket.close();
  reception?.close();
  await hub?.stop();
  redis?.disconnect();
  await redisServer?.cleanup();
});

const asStaff = () => cleanEnv({ CLINIC_URL: hub.url, CLINIC_TOKEN: staff });

async function patientPage(ticketId: string) {
  const socket = await connectConsult(hub.url, await tokenFor('patient', CLINIC, { ticket: ticketId, sub: `patient:${ticketId}` }));
  sockets.push(socket);
  return recordConsult(socket);
}

describe('clinic call-next in an online department', () => {
  it('--json admits the next patient to video: the consultation opens and the patient gets the join pass', async () => {
    const ticket = expectOk(await request(reception, 'queue:checkin', { dept: 'online' })).event.ticket;
    const page = await patientPage(ticket.id);
    const run = await runCli(['call-next', '--dept', 'online', '--room', 'v1', '--json'], { env: asStaff() });
    expect(run.code, run.stderr).toBe(0);
    const result = run.json();
    expect(result).toMatchObject({ action: 'admit', replayed: false, ticket: { id: ticket.id, status: 'called', room: 'v1' }, consultation: { ticket: ticket.id, dept: 'online', room: 'v1' } });
    expect(await redis.hget(consultKeys(CLINIC, result.consultation.id).meta, 'status')).toBe('waiting');
    const admitted = await waitFor('the patient page\'s join pass', () => page.admitted.find((a) => a.consultation.id === result.consultation.id));
    expect(testRoomTokens.verify(admitted.pass.token)).toMatchObject({ part: 'patient', consult: result.consultation.id });
    // The link printed for the caller is their own pass into the same consultation (staff join as a nurse).
    const fragment = new URLSearchParams(new URL(result.joinUrl).hash.slice(1));
    expect(testRoomTokens.verify(fragment.get('token'))).toMatchObject({ part: 'nurse', sub: 'staff:desk', consult: result.consultation.id });
  });

  it('says in words who was admitted and how the clinician joins; a busy room is refused with its code', async () => {
    const ticket = expectOk(await request(reception, 'queue:checkin', { dept: 'online' })).event.ticket;
    const run = await runCli(['call-next', '--dept', 'online', '--room', 'v2'], { env: { ...asStaff(), NO_COLOR: '1' } });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(new RegExp(`^Admitted ${ticket.number} to video in v2 \\(オンライン診察室2 Video room 2\\): their page shows the join button\\.$`, 'm'));
    expect(run.stdout).toMatch(/^Join from the staff console \("Join video"\), or with this link until \d\d:\d\d:\d\d: http:\/\/127\.0\.0\.1:\d+\/consult#media=/m);

    // v2's patient has not come in yet: the room is busy, as for any call.
    expectOk(await request(reception, 'queue:checkin', { dept: 'online' }));
    const busy = await runCli(['call-next', '--dept', 'online', '--room', 'v2', '--json'], { env: asStaff() });
    expect(busy.code).toBe(5);
    expect(busy.error().code).toBe('QUEUE_ROOM_BUSY');
  });
});
