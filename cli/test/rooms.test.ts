/**
 * `clinic rooms` against a real hub and Redis: the open and recent video
 * consultations and the media-server nodes, as JSON for scripts and as a
 * table for people, without names.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CONSULT_HUB_ENV, announceMediaNode, connectConsult, consultRequest, type ConsultSocket } from '@clinic-hub/test-kit/consult-client';
import { startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { connectQueue, expectOk, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { cleanEnv, runCli } from '@clinic-hub/test-kit/run-cli';

vi.setConfig({ testTimeout: 120_000 });

let redisServer: TestRedis;
let redis: Redis;
let hub: HubNodeProcess;
let reception: QueueSocket;
let doctor: ConsultSocket;
let staff: string;
const admitted: { id: string; number: string }[] = [];

beforeAll(async () => {
  redisServer = await startTestRedis();
  redis = new Redis(redisServer.url);
  await announceMediaNode(redis, { id: 'media-cli', url: 'ws://media-cli.test:7000', rooms: 2, participants: 3 });
  await announceMediaNode(redis, { id: 'media-old', url: 'ws://media-old.test:7000', draining: true });
  hub = await startHubProcess({ redisUrl: redisServer.url, nodeId: 'cli-rooms', env: CONSULT_HUB_ENV });
  staff = await tokenFor('staff');
  reception = await connectQueue(hub.url, staff);
  doctor = await connectConsult(hub.url, await tokenFor('doctor', 'testclinic', { sub: 'doctor:cli' }));
  for (const room of ['v1', 'v2']) {
    expectOk(await request(reception, 'queue:checkin', { dept: 'online', patient: { name: '木村 一郎' } }));
    const ack = expectOk(await consultRequest(doctor, 'consult:admit', { dept: 'online', room }));
    admitted.push({ id: ack.consultation.id, number: ack.consultation.number });
  }
  expectOk(await consultRequest(doctor, 'consult:end', { consult: admitted[0]!.id }));
});

afterAll(async () => {
  reception?.close();
  doctor?.close();
  await hub?.stop();
  redis?.disconnect();
  await redisServer?.cleanup();
});

const asStaff = () => cleanEnv({ CLINIC_URL: hub.url, CLINIC_TOKEN: staff });

describe('clinic rooms', () => {
  it('--json: the consultations (open and ended) and the live media nodes', async () => {
    const run = await runCli(['rooms', '--json'], { env: asStaff() });
    expect(run.code, run.stderr).toBe(0);
    const view = run.json();
    expect(view.clinic).toBe('testclinic');
    const byId = new Map(view.consultations.map((c: { id: string }) => [c.id, c]));
    expect(byId.get(admitted[0]!.id)).toMatchObject({ status: 'ended', number: admitted[0]!.number, dept: 'online', room: 'v1', node: 'media-cli' });
    expect(byId.get(admitted[1]!.id)).toMatchObject({ status: 'waiting', number: admitted[1]!.number, room: 'v2', endedAt: null });
    expect(view.mediaNodes.map((n: { id: string; draining: boolean }) => [n.id, n.draining])).toEqual([
      ['media-cli', false],
      ['media-old', true],
    ]);
    expect(run.stdout).not.toContain('木村');
  });

  it('for people: a table without colour when stdout is not a terminal', async () => {
    const run = await runCli(['rooms'], { env: asStaff() });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('testclinic: 1 open consultation room, 2 media nodes');
    expect(run.stdout).toMatch(new RegExp(`${admitted[1]!.id}\\s+${admitted[1]!.number}\\s+online\\s+v2\\s+waiting\\s+media-cli`));
    expect(run.stdout).toMatch(/media-old\s+draining/);
    expect(run.stdout).not.toContain('\u001B[');
    expect(run.stdout).not.toContain('木村');
  });

  it('exits 3 for a token that may not list rooms and 2 for a bad --count', async () => {
    const display = await runCli(['rooms', '--json'], { env: cleanEnv({ CLINIC_URL: hub.url, CLINIC_TOKEN: await tokenFor('display') }) });
    expect(display.code).toBe(3);
    expect(display.error().code).toBe('AUTH_FORBIDDEN');
    const bad = await runCli(['rooms', '--count', '0', '--json'], { env: asStaff() });
    expect(bad.code).toBe(2);
  });
});
