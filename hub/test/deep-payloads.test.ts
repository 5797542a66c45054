import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Socket } from 'socket.io-client';
import { CHAT_NAMESPACE, CONSULT_NAMESPACE, NOTIFY_NAMESPACE, PAYLOAD_MAX_DEPTH, QUEUE_NAMESPACE, isErrorCode } from '@clinic-hub/protocol';
import { healthStatus, startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { connectNamespace, connectQueue, expectOk, followQueue, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import { deepArrays, deepObjects, sendRawBinaryEvent, sendRawEvent, sendRawEventWithoutAck } from './support/raw-frames.js';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { waitFor } from '@clinic-hub/test-kit/wait';

/**
 * A payload nested thousands of levels deep is 10 KB, under the 16 KiB cap:
 * it once overflowed JSON.stringify's stack in the event guard and stopped
 * the node. Every namespace, every role, with and without an ack: an error
 * code, and the node goes on serving.
 */
let redis: TestRedis;
let hub: HubNodeProcess;
const sockets: Socket[] = [];
let staff: QueueSocket;
let follower: ReturnType<typeof followQueue>;
let patientToken: string;

async function open(namespace: string, token: string): Promise<Socket> {
  const socket = await connectNamespace<Socket>(hub.url, namespace, token);
  sockets.push(socket);
  return socket;
}

/** A change made now reaches a display on the node: it still serves. */
async function expectStillServing(): Promise<void> {
  expect(hub.process.exitCode, hub.logs()).toBeNull();
  expect(await healthStatus(hub)).toBe(200);
  const checkin = expectOk(await request(staff, 'queue:checkin', { dept: 'gp' }));
  await waitFor('the check-in on the display', () => follower.events.some((e) => e.seq === checkin.event.seq));
}

beforeAll(async () => {
  redis = await startTestRedis();
  hub = await startHubProcess({ redisUrl: redis.url, nodeId: 'node-deep' });
  staff = await connectQueue(hub.url, await tokenFor('staff'));
  sockets.push(staff);
  const display = await connectQueue(hub.url, await tokenFor('display'));
  sockets.push(display);
  follower = followQueue(display);
  await follower.resync();
  patientToken = expectOk(await request(staff, 'queue:checkin', { dept: 'online' })).patientToken;
});

afterAll(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  await hub?.stop();
  await redis?.cleanup();
});

const CASES: { namespace: string; role: 'display' | 'patient' | 'staff' | 'doctor'; event: string }[] = [
  { namespace: QUEUE_NAMESPACE, role: 'display', event: 'queue:sync' },
  { namespace: QUEUE_NAMESPACE, role: 'patient', event: 'queue:sync' },
  { namespace: QUEUE_NAMESPACE, role: 'staff', event: 'queue:checkin' },
  { namespace: CHAT_NAMESPACE, role: 'patient', event: 'chat:history' },
  { namespace: CHAT_NAMESPACE, role: 'staff', event: 'chat:send' },
  { namespace: CONSULT_NAMESPACE, role: 'patient', event: 'consult:join' },
  { namespace: CONSULT_NAMESPACE, role: 'doctor', event: 'consult:admit' },
];

describe.each(CASES)('$event on $namespace from a $role', ({ namespace, role, event }) => {
  let socket: Socket;
  beforeAll(async () => {
    socket = await open(namespace, role === 'patient' ? patientToken : await tokenFor(role));
  });

  it('answers 5,000 levels of arrays (10 KB) and of objects with PAYLOAD_TOO_DEEP', async () => {
    const arrays = deepArrays(5000);
    expect(arrays.length).toBeLessThan(16_384);
    for (const payload of [arrays, deepObjects(2000)]) {
      const reply = await sendRawEvent(socket, event, payload);
      expect(reply, hub.logs()).toEqual({ ack: { ok: false, error: expect.objectContaining({ code: 'PAYLOAD_TOO_DEEP' }) }, closed: false });
    }
    await expectStillServing();
  });

  it('answers one level past the limit with PAYLOAD_TOO_DEEP and the limit itself with the schema’s verdict', async () => {
    // [payload] is one level; the payload's own arrays make up the rest.
    const over = await sendRawEvent(socket, event, `{"x":${'['.repeat(PAYLOAD_MAX_DEPTH - 1)}${']'.repeat(PAYLOAD_MAX_DEPTH - 1)}}`);
    expect(over.ack?.error?.code).toBe('PAYLOAD_TOO_DEEP');
    const at = await sendRawEvent(socket, event, `{"x":${'['.repeat(PAYLOAD_MAX_DEPTH - 2)}${']'.repeat(PAYLOAD_MAX_DEPTH - 2)}}`);
    // Accepted (unknown fields are dropped), or refused by the schema: never for its depth, never INTERNAL.
    expect(at.ack).toBeDefined();
    if (!at.ack!.ok) {
      expect(isErrorCode(at.ack!.error?.code)).toBe(true);
      expect(['PAYLOAD_TOO_DEEP', 'INTERNAL']).not.toContain(at.ack!.error?.code);
    }
  });

  it('answers a deep payload sent without an ack with hub:error', async () => {
    const errors: { code: string; event?: string }[] = [];
    socket.on('hub:error', (error: { code: string; event?: string }) => errors.push(error));
    sendRawEventWithoutAck(socket, event, deepArrays(5000));
    await waitFor('hub:error', () => errors.length > 0);
    expect(errors[0]).toMatchObject({ code: 'PAYLOAD_TOO_DEEP', event });
    expect(socket.connected).toBe(true);
  });

  it('survives a deep payload around a binary attachment: an error code, or only that transport closes', async () => {
    const reply = await sendRawBinaryEvent(socket, event, `{"x":${'['.repeat(5000)}{"_placeholder":true,"num":0}${']'.repeat(5000)}}`, [Buffer.alloc(16, 1)]);
    if (!reply.closed) expect(reply.ack?.error?.code).toBe('PAYLOAD_TOO_DEEP');
    await expectStillServing();
    if (!socket.connected) socket = await open(namespace, role === 'patient' ? patientToken : await tokenFor(role));
  });
});

describe('/notify, where clients send nothing', () => {
  it('answers any event, however deep, with UNKNOWN_EVENT', async () => {
    const socket = await open(NOTIFY_NAMESPACE, patientToken);
    const deep = await sendRawEvent(socket, 'notify:anything', deepArrays(5000));
    expect(deep.ack?.error?.code).toBe('UNKNOWN_EVENT');
    await expectStillServing();
  });
});

describe('the deepest payload the transport takes', () => {
  it('answers 400,000 levels (800 KB, under the 1 MiB transport cap) with an error code or by closing that transport', async () => {
    const socket = await open(QUEUE_NAMESPACE, await tokenFor('display'));
    const reply = await sendRawEvent(socket, 'queue:sync', deepArrays(400_000), 10_000);
    if (!reply.closed) expect(['PAYLOAD_TOO_DEEP', 'PAYLOAD_TOO_LARGE']).toContain(reply.ack?.error?.code);
    await expectStillServing();
  });
});
