import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { io } from 'socket.io-client';
import { CHAT_NAMESPACE, CONSULT_NAMESPACE, NOTIFY_NAMESPACE, type QueueEvent } from '@clinic-hub/protocol';
import { signed, tampered, unsigned } from '@clinic-hub/test-kit/forged-tokens';
import { startHubProcess, testTokens, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import {
  connectError,
  connectQueue,
  expectOk,
  followQueue,
  namespaceConnectError,
  recordArrivals,
  request,
  requestRaw,
  type ConnectOptions,
  type QueueSocket,
} from '@clinic-hub/test-kit/queue-client';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { sleep, waitFor } from '@clinic-hub/test-kit/wait';

let redis: TestRedis;
let hub: HubNodeProcess;
const sockets: QueueSocket[] = [];
let staff: QueueSocket;
let healthyDisplay: QueueSocket;
let follower: ReturnType<typeof followQueue>;
/** Tickets accepted before the bad input: they must survive all of it. */
let accepted: QueueEvent[] = [];

async function open(role: Parameters<typeof tokenFor>[0], clinic = 'testclinic', options: ConnectOptions = {}): Promise<QueueSocket> {
  const socket = await connectQueue(hub.url, await tokenFor(role, clinic), options);
  sockets.push(socket);
  return socket;
}

/**
 * The node keeps serving: a call made now reaches the healthy display on the
 * same node, and every ticket accepted before is still there.
 */
async function expectStillServing() {
  const checkin = expectOk(await request(staff, 'queue:checkin', { dept: 'gp' }));
  const call = expectOk(await request(staff, 'queue:call-next', { dept: 'gp', room: 'r1' }));
  expect(call.event.ticket.id).toBe(checkin.event.ticket.id);
  await waitFor('the call on the healthy display', () => follower.events.some((e) => e.seq === call.event.seq));
  const done = expectOk(await request(staff, 'queue:done', { ticketId: call.event.ticket.id }));
  // Seen too, so that nothing of this check is still on its way to the display when the next test starts watching.
  await waitFor('the done on the healthy display', () => follower.events.some((e) => e.seq === done.event.seq));
  const sync = expectOk(await request(healthyDisplay, 'queue:sync', {}));
  if (sync.mode !== 'snapshot') throw new Error('expected a snapshot');
  const ids = new Set(sync.snapshot.tickets.map((t) => t.id));
  for (const event of accepted) expect(ids.has(event.ticket.id), `ticket ${event.ticket.number} still there`).toBe(true);
  expect(healthyDisplay.connected).toBe(true);
  expect(hub.process.exitCode).toBeNull();
}

beforeAll(async () => {
  redis = await startTestRedis();
  hub = await startHubProcess({ redisUrl: redis.url, nodeId: 'node-bad-input' });
  staff = await open('staff');
  healthyDisplay = await open('display');
  follower = followQueue(healthyDisplay);
  await follower.resync();
  accepted = [];
  for (let i = 0; i < 3; i++) {
    accepted.push(expectOk(await request(staff, 'queue:checkin', { dept: 'peds', patient: { name: '患者 花子' } })).event);
  }
});

afterAll(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  await hub?.stop();
  await redis?.cleanup();
});

describe('refused connections', () => {
  it('AUTH_REQUIRED without a token', async () => {
    expect(await connectError(hub.url, undefined)).toMatchObject({ code: 'AUTH_REQUIRED' });
    expect(await connectError(hub.url, '')).toMatchObject({ code: 'AUTH_REQUIRED' });
    await expectStillServing();
  });

  it('AUTH_INVALID for forged tokens: another secret, a tampered payload, alg none, another algorithm, garbage', async () => {
    const genuine = await tokenFor('display');
    const forged = [
      await signed({ role: 'admin', clinic: 'testclinic' }, { secret: 'another-secret-that-is-also-long-enough-0123456789' }),
      tampered(genuine, { role: 'admin' }),
      tampered(genuine, { clinic: 'otherclinic' }),
      tampered(await tokenFor('display', 'testclinic', { ttlSeconds: -60 }), { exp: Math.floor(Date.now() / 1000) + 3600 }),
      unsigned({ role: 'admin', clinic: 'testclinic' }),
      await signed({ role: 'admin', clinic: 'testclinic' }, { alg: 'HS512' }),
      await signed({ role: 'admin', clinic: 'testclinic', iss: 'someone-else' }),
      await signed({ role: 'superuser', clinic: 'testclinic' }),
      // '*' is for admin and service only.
      await signed({ role: 'staff', clinic: '*' }),
      // A patient token must name its ticket.
      await signed({ role: 'patient', clinic: 'testclinic' }),
      'not-a-jwt',
      'a.b.c',
      `${genuine}x`.repeat(400),
    ];
    for (const [i, token] of forged.entries()) {
      expect(await connectError(hub.url, token), `forged token #${i}`).toMatchObject({ code: 'AUTH_INVALID' });
    }
    await expectStillServing();
  });

  it('AUTH_EXPIRED for an expired token', async () => {
    const { token } = await testTokens.issue({ sub: 'display:old', role: 'display', clinic: 'testclinic' }, -60);
    expect(await connectError(hub.url, token)).toMatchObject({ code: 'AUTH_EXPIRED' });
    await expectStillServing();
  });

  it('AUTH_WRONG_CLINIC for a token of another clinic asking for this one', async () => {
    expect(await connectError(hub.url, await tokenFor('display', 'otherclinic'), { clinic: 'testclinic' })).toMatchObject({
      code: 'AUTH_WRONG_CLINIC',
    });
    expect(await connectError(hub.url, await tokenFor('staff', 'otherclinic'), { clinic: 'testclinic' })).toMatchObject({
      code: 'AUTH_WRONG_CLINIC',
    });
    await expectStillServing();
  });

  it('CLINIC_NOT_FOUND for a token of a clinic this hub does not serve, on every namespace', async () => {
    for (const role of ['display', 'staff', 'doctor'] as const) {
      expect(await connectError(hub.url, await tokenFor(role, 'ghostclinic')), role).toMatchObject({ code: 'CLINIC_NOT_FOUND', detail: 'ghostclinic' });
    }
    for (const namespace of [CHAT_NAMESPACE, CONSULT_NAMESPACE, NOTIFY_NAMESPACE]) {
      expect(await namespaceConnectError(hub.url, namespace, await tokenFor('staff', 'ghostclinic')), namespace).toMatchObject({ code: 'CLINIC_NOT_FOUND' });
    }
    await expectStillServing();
  });

  it('NAMESPACE_NOT_FOUND on the root namespace, with or without a token, and the connection is closed', async () => {
    for (const token of [undefined, await tokenFor('staff')]) {
      const socket = io(hub.url, { auth: token ? { token } : {}, transports: ['websocket'], reconnection: false, forceNew: true });
      const refused = await new Promise<{ code?: string }>((resolve, reject) => {
        socket.once('connect', () => reject(new Error('the root namespace accepted a connection')));
        socket.once('connect_error', (error: Error & { data?: { code?: string } }) => resolve(error.data ?? {}));
      });
      expect(refused).toMatchObject({ code: 'NAMESPACE_NOT_FOUND' });
      // Joined to no namespace, the transport is closed by the hub (connectTimeout, 10 s), not kept open.
      const closedAfter = await new Promise<number>((resolve) => {
        const started = Date.now();
        if (!socket.io.engine || socket.io.engine.readyState === 'closed') return resolve(0);
        socket.io.engine.once('close', () => resolve(Date.now() - started));
      });
      expect(closedAfter).toBeLessThan(12_000);
      socket.close();
    }
    await expectStillServing();
  }, 40_000);

  it('CLINIC_NOT_FOUND for an all-clinics admin token naming no clinic or an unknown one', async () => {
    const admin = await tokenFor('admin', '*');
    expect(await connectError(hub.url, admin, { clinic: 'ghostclinic' })).toMatchObject({ code: 'CLINIC_NOT_FOUND' });
    expect(await connectError(hub.url, admin)).toMatchObject({ code: 'CLINIC_NOT_FOUND' });
    // Named properly, it acts for that clinic.
    const socket = await open('admin', '*', { clinic: 'testclinic' });
    const ack = expectOk(await request(socket, 'queue:sync', {}));
    expect(ack.mode === 'snapshot' && ack.snapshot.clinic.id).toBe('testclinic');
    await expectStillServing();
  });

  it('keeps a token of another clinic in its own clinic', async () => {
    // Naming its own clinic is fine.
    const otherStaff = await open('staff', 'otherclinic', { clinic: 'otherclinic' });
    const arrivals = recordArrivals(healthyDisplay);
    const seqBefore = follower.seq;
    const other = expectOk(await request(otherStaff, 'queue:checkin', { dept: 'gp' }));
    expect(other.event.seq).toBe(1);
    // Not a ticket of this clinic: it cannot be called or read from there.
    expect(await request(otherStaff, 'queue:done', { ticketId: accepted[0]!.ticket.id })).toMatchObject({
      ok: false,
      error: { code: 'QUEUE_TICKET_NOT_FOUND' },
    });
    expect(await request(otherStaff, 'queue:patient', { ticketId: accepted[0]!.ticket.id })).toMatchObject({
      ok: false,
      error: { code: 'QUEUE_TICKET_NOT_FOUND' },
    });
    await sleep(300);
    expect(arrivals.events).toEqual([]);
    expect(follower.seq).toBe(seqBefore);
    await expectStillServing();
  });
});

describe('refused events', () => {
  it('AUTH_FORBIDDEN when the role may not send the event', async () => {
    const display = await open('display');
    for (const [event, payload] of [
      ['queue:call-next', { dept: 'gp', room: 'r1' }],
      ['queue:checkin', { dept: 'gp' }],
      ['queue:patient', { ticketId: accepted[0]!.ticket.id }],
      ['queue:announce', { text: { ja: 'テスト', en: 'test' } }],
      ['queue:done', { ticketId: accepted[0]!.ticket.id }],
    ] as const) {
      expect(await requestRaw(display, event, payload), `display ${event}`).toMatchObject({ ok: false, error: { code: 'AUTH_FORBIDDEN' } });
    }
    const ticketId = accepted[0]!.ticket.id;
    const patient = await connectQueue(hub.url, await tokenFor('patient', 'testclinic', { ticket: ticketId }));
    sockets.push(patient);
    expect(await requestRaw(patient, 'queue:checkin', { dept: 'gp' })).toMatchObject({ ok: false, error: { code: 'AUTH_FORBIDDEN' } });
    expect(await requestRaw(patient, 'queue:patient', { ticketId })).toMatchObject({ ok: false, error: { code: 'AUTH_FORBIDDEN' } });
    expect(await requestRaw(patient, 'queue:cancel', { ticketId })).toMatchObject({ ok: false, error: { code: 'AUTH_FORBIDDEN' } });
    // What a patient may do still works.
    expect(await requestRaw(patient, 'queue:sync', {})).toMatchObject({ ok: true });
    const doctor = await open('doctor');
    expect(await requestRaw(doctor, 'queue:checkin', { dept: 'gp' })).toMatchObject({ ok: false, error: { code: 'AUTH_FORBIDDEN' } });
    expect(await requestRaw(doctor, 'queue:announce', { text: { ja: 'テスト', en: 'test' } })).toMatchObject({
      ok: false,
      error: { code: 'AUTH_FORBIDDEN' },
    });
    // Nothing forbidden changed anything.
    expect(display.connected && patient.connected && doctor.connected).toBe(true);
    await expectStillServing();
  });

  it('AUTH_EXPIRED when the token expires: hub:session-ended, then the hub disconnects the socket', async () => {
    const display = await connectQueue(hub.url, await tokenFor('display', 'testclinic', { ttlSeconds: 2 }));
    sockets.push(display);
    const ended = new Promise<{ code: string }>((resolve) => display.once('hub:session-ended', resolve));
    const disconnected = new Promise<string>((resolve) => display.once('disconnect', (reason) => resolve(reason)));
    expectOk(await request(display, 'queue:sync', {}));
    expect(await ended).toMatchObject({ code: 'AUTH_EXPIRED' });
    expect(await disconnected).toBe('io server disconnect');
    await expectStillServing();
  });

  it('auth:refresh before expiry keeps a socket working past its first token', async () => {
    const socket = await connectQueue(hub.url, await tokenFor('staff', 'testclinic', { ttlSeconds: 2 }));
    sockets.push(socket);
    const refreshed = expectOk(await request(socket, 'auth:refresh', {}));
    expect(refreshed.expiresAt).toBeGreaterThan(Date.now() + 3600_000);
    await sleep(2100);
    expectOk(await request(socket, 'queue:sync', {}));
    // The new token is a real one: it connects.
    const again = await connectQueue(hub.url, refreshed.token);
    sockets.push(again);
    expectOk(await request(again, 'queue:sync', {}));
    await expectStillServing();
  });

  it('INVALID_PAYLOAD for payloads that do not match the schema, naming the field', async () => {
    const cases: [string, unknown, string | null][] = [
      ['queue:checkin', { dept: 5 }, 'dept'],
      ['queue:checkin', {}, 'dept'],
      ['queue:checkin', 'gp', null],
      ['queue:checkin', ['gp'], null],
      ['queue:checkin', 42, null],
      ['queue:checkin', { dept: 'gp', priority: 'vip' }, 'priority'],
      ['queue:checkin', { dept: 'gp', requestId: 'bad id with spaces' }, 'requestId'],
      ['queue:checkin', { dept: 'gp', patient: { name: 'x'.repeat(5000) } }, 'patient.name'],
      ['queue:checkin', { dept: 'gp', patient: { phone: '090' } }, 'patient.name'],
      ['queue:call-next', { dept: 'gp' }, 'room'],
      ['queue:call-next', { dept: 'gp', room: 'r'.repeat(10_000) }, 'room'],
      ['queue:call-next', null, null],
      ['queue:done', { ticketId: '../../etc' }, 'ticketId'],
      ['queue:sync', { afterSeq: -1 }, 'afterSeq'],
      ['queue:sync', { afterSeq: 1.5 }, 'afterSeq'],
      ['queue:sync', { afterSeq: '3' }, 'afterSeq'],
      ['queue:announce', { text: { ja: 'テスト', en: 'test' }, durationSeconds: 100_000 }, 'durationSeconds'],
      ['queue:announce', { text: { ja: 'あ'.repeat(300), en: 'test' } }, 'text.ja'],
      ['auth:refresh', { extra: true }, null],
    ];
    for (const [event, payload, field] of cases) {
      const ack = await requestRaw(staff, event, payload);
      expect(ack, `${event} ${JSON.stringify(payload).slice(0, 60)}`).toMatchObject({ ok: false, error: { code: 'INVALID_PAYLOAD' } });
      if (field) expect(ack.error!.detail).toMatch(new RegExp(`^${field.replace('.', '\\.')}:`));
    }
    // An ack with no payload at all.
    expect(await requestRaw(staff, 'queue:call-next')).toMatchObject({ ok: false, error: { code: 'INVALID_PAYLOAD' } });
    await expectStillServing();
  });

  it('PAYLOAD_TOO_LARGE over 16 KiB, before anything else is looked at', async () => {
    const note = 'x'.repeat(17 * 1024);
    expect(await requestRaw(staff, 'queue:checkin', { dept: 'gp', patient: { name: 'a', note } })).toMatchObject({
      ok: false,
      error: { code: 'PAYLOAD_TOO_LARGE' },
    });
    // Size is checked for every event, whatever the role.
    const display = await open('display');
    expect(await requestRaw(display, 'queue:sync', { afterSeq: 1, padding: note })).toMatchObject({
      ok: false,
      error: { code: 'PAYLOAD_TOO_LARGE' },
    });
    await expectStillServing();
  });

  it('closes only the offending transport for a payload over 1 MiB', async () => {
    const socket = await open('staff');
    const disconnected = new Promise<string>((resolve) => socket.once('disconnect', (reason) => resolve(reason)));
    socket.emit('queue:checkin', { dept: 'gp', patient: { name: 'a', note: 'x'.repeat(1_100_000) } }, () => undefined);
    expect(await disconnected).toMatch(/transport (close|error)/);
    await expectStillServing();
  });

  it('UNKNOWN_EVENT for an event the hub does not know', async () => {
    for (const event of ['queue:nope', 'hello', 'constructor', '__proto__', 'x'.repeat(500)]) {
      const ack = await requestRaw(staff, event, {});
      expect(ack, event.slice(0, 20)).toMatchObject({ ok: false, error: { code: 'UNKNOWN_EVENT' } });
      expect(ack.error!.detail!.length).toBeLessThanOrEqual(64);
    }
    await expectStillServing();
  });

  it('answers a bad event sent without an ack callback with hub:error', async () => {
    const display = await open('display');
    const arrivals = recordArrivals(display);
    // Emitted with a payload and no ack callback.
    const send = (event: string, payload: unknown) => (display as unknown as { emit(e: string, p: unknown): void }).emit(event, payload);
    send('queue:nope', {});
    send('queue:call-next', { dept: 'gp', room: 'r1' });
    send('queue:sync', { afterSeq: -5 });
    send('queue:sync', { afterSeq: 1, padding: 'x'.repeat(17 * 1024) });
    await waitFor('four hub:error events', () => arrivals.errors.length >= 4);
    expect(arrivals.errors).toEqual([
      expect.objectContaining({ code: 'UNKNOWN_EVENT', event: 'queue:nope' }),
      expect.objectContaining({ code: 'AUTH_FORBIDDEN', event: 'queue:call-next' }),
      expect.objectContaining({ code: 'INVALID_PAYLOAD', event: 'queue:sync' }),
      expect.objectContaining({ code: 'PAYLOAD_TOO_LARGE', event: 'queue:sync' }),
    ]);
    expect(display.connected).toBe(true);
    await expectStillServing();
  });

  it('answers domain mistakes with their codes', async () => {
    expect(await request(staff, 'queue:checkin', { dept: 'dentistry' })).toMatchObject({ ok: false, error: { code: 'QUEUE_DEPT_NOT_FOUND' } });
    expect(await request(staff, 'queue:call-next', { dept: 'gp', room: 'r3' })).toMatchObject({ ok: false, error: { code: 'QUEUE_ROOM_NOT_FOUND' } });
    expect(await request(staff, 'queue:start', { ticketId: 'nosuchticket' })).toMatchObject({
      ok: false,
      error: { code: 'QUEUE_TICKET_NOT_FOUND' },
    });
    expect(await request(staff, 'queue:start', { ticketId: accepted[0]!.ticket.id })).toMatchObject({
      ok: false,
      error: { code: 'QUEUE_INVALID_TRANSITION' },
    });
    await expectStillServing();
  });
});
