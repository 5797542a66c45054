import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Socket } from 'socket.io-client';
import { CHAT_NAMESPACE, CONSULT_NAMESPACE, NOTIFY_NAMESPACE, QUEUE_NAMESPACE, type SessionEnded } from '@clinic-hub/protocol';
import { startTestHubs, stopTestHubs, testTokens, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { connectNamespace, connectQueue, expectOk, followQueue, namespaceConnectError, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import type { TestRedis } from '@clinic-hub/test-kit/redis';
import { sleep, waitFor } from '@clinic-hub/test-kit/wait';

/**
 * Tokens end: at their expiry, when revoked (by token, user or clinic, on
 * every node within a second), with their patient's ticket (after the
 * clinic's grace period), and auth:refresh stops at the session's maximum
 * age. A socket whose session ends gets `hub:session-ended { code }` and is
 * disconnected, on every namespace.
 */
const NAMESPACES = [QUEUE_NAMESPACE, CHAT_NAMESPACE, CONSULT_NAMESPACE, NOTIFY_NAMESPACE];
const STAFF_SESSION_MAX_SECONDS = 3600;

let redis: TestRedis;
let hubA: HubNodeProcess;
let hubB: HubNodeProcess;
const sockets: Socket[] = [];

beforeAll(async () => {
  const env = { HUB_STAFF_SESSION_MAX_SECONDS: String(STAFF_SESSION_MAX_SECONDS), HUB_RATE_LIMIT_USER_PER_SECOND: '0', HUB_RATE_LIMIT_SOCKET_PER_SECOND: '0' };
  ({ redis, nodes: [hubA, hubB] } = await startTestHubs(['tokens-a', 'tokens-b'], { env }));
});

afterAll(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  await stopTestHubs(redis, [hubA, hubB]);
});

interface Watched {
  socket: Socket;
  namespace: string;
  ended: (SessionEnded & { at: number })[];
  disconnectedAt: number | null;
  reason: string | null;
}

async function watch(hub: HubNodeProcess, namespace: string, token: string, clinic?: string): Promise<Watched> {
  const socket = await connectNamespace<Socket>(hub.url, namespace, token, clinic ? { clinic } : {});
  sockets.push(socket);
  const watched: Watched = { socket, namespace, ended: [], disconnectedAt: null, reason: null };
  socket.on('hub:session-ended', (ended: SessionEnded) => watched.ended.push({ ...ended, at: Date.now() }));
  socket.on('disconnect', (reason) => {
    watched.disconnectedAt = Date.now();
    watched.reason = reason;
  });
  return watched;
}

async function watchEverywhere(hubs: HubNodeProcess[], token: string, namespaces = NAMESPACES): Promise<Watched[]> {
  const all: Watched[] = [];
  for (const hub of hubs) for (const namespace of namespaces) all.push(await watch(hub, namespace, token));
  return all;
}

const endedBy = (code: string) => (w: Watched) => w.disconnectedAt !== null && w.ended.some((e) => e.code === code);

async function api(hub: HubNodeProcess, path: string, token: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> & { error?: { code: string; detail?: string } } }> {
  const res = await fetch(`${hub.url}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, json: (await res.json()) as never };
}

async function checkinPatient(hub: HubNodeProcess, clinic = 'testclinic'): Promise<{ staff: QueueSocket; ticketId: string; patientToken: string }> {
  const staff = await connectQueue(hub.url, await tokenFor('staff', clinic));
  sockets.push(staff);
  const checkin = expectOk(await request(staff, 'queue:checkin', { dept: 'gp' }));
  return { staff, ticketId: checkin.event.ticket.id, patientToken: checkin.patientToken };
}

describe('a token that expires', () => {
  it('ends its sockets on every namespace at its expiry, with hub:session-ended AUTH_EXPIRED, and they stop receiving', async () => {
    const { staff, patientToken: _ } = await checkinPatient(hubA);
    const expiresAt = Date.now() + 3000;
    const staffToken = testTokens.issueSync({ sub: 'staff:short', role: 'staff', clinic: 'testclinic' }, 3).token;
    const displayToken = testTokens.issueSync({ sub: 'display:short', role: 'display', clinic: 'testclinic' }, 3).token;
    const watched = [...(await watchEverywhere([hubA], staffToken)), await watch(hubA, QUEUE_NAMESPACE, displayToken)];
    const display = watched.at(-1)!;
    const follower = followQueue(display.socket as unknown as QueueSocket);
    await follower.resync();

    await waitFor('every socket ended', () => watched.every(endedBy('AUTH_EXPIRED')), 8000);
    for (const w of watched) {
      expect(w.ended[0], w.namespace).toMatchObject({ code: 'AUTH_EXPIRED', message: expect.any(String) });
      expect(w.disconnectedAt! - expiresAt, w.namespace).toBeLessThan(1500);
      expect(w.disconnectedAt!, w.namespace).toBeGreaterThanOrEqual(expiresAt - 1000);
      expect(w.reason).toBe('io server disconnect');
    }
    // The display hears nothing more.
    const seen = follower.events.length;
    expectOk(await request(staff, 'queue:checkin', { dept: 'gp' }));
    await sleep(500);
    expect(follower.events.length).toBe(seen);
    // And the token is refused at connect.
    expect(await namespaceConnectError(hubA.url, CHAT_NAMESPACE, staffToken)).toMatchObject({ code: 'AUTH_EXPIRED' });
  });

  it('lasts as long as it is refreshed: a refreshed socket stays past the first token’s expiry', async () => {
    const token = testTokens.issueSync({ sub: 'staff:refresher', role: 'staff', clinic: 'testclinic' }, 3).token;
    const queue = await watch(hubA, QUEUE_NAMESPACE, token);
    const refreshed = expectOk(await request(queue.socket as unknown as QueueSocket, 'auth:refresh', {}));
    expect(refreshed.expiresAt).toBeGreaterThan(Date.now() + 60_000);
    await sleep(4000);
    expect(queue.socket.connected).toBe(true);
    expect(queue.ended).toEqual([]);
  });
});

describe('revocation', () => {
  it('by token id: every socket of the token and of the tokens refreshed from it ends on every node within a second', async () => {
    const admin = await tokenFor('admin');
    const issued = testTokens.issueSync({ sub: 'staff:leaked', role: 'staff', clinic: 'testclinic' }, 600);
    const watched = await watchEverywhere([hubA, hubB], issued.token);
    // A token refreshed from it before the revocation: the same session.
    const refreshed = expectOk(await request(watched[0]!.socket as unknown as QueueSocket, 'auth:refresh', {}));
    const other = await watch(hubB, QUEUE_NAMESPACE, await tokenFor('staff', 'testclinic', { sub: 'staff:leaked' }));

    const started = Date.now();
    const revoked = await api(hubA, '/api/tokens/revoke', admin, { tokenId: issued.id, reason: 'left on a shared PC' });
    expect(revoked.status).toBe(200);
    expect(revoked.json.revocation).toMatchObject({ kind: 'token', id: issued.id, by: 'admin:test', reason: 'left on a shared PC' });
    await waitFor('every socket of the token ended', () => watched.every(endedBy('AUTH_REVOKED')), 3000);
    const slowest = Math.max(...watched.map((w) => w.disconnectedAt! - started));
    process.stdout.write(`revocation by token id: ${watched.length} sockets on 2 nodes ended within ${slowest} ms\n`);
    expect(slowest).toBeLessThan(1000);
    // Another token of the same user is another session.
    expect(other.socket.connected).toBe(true);

    for (const [hub, token] of [[hubA, issued.token], [hubB, issued.token], [hubB, refreshed.token]] as const) {
      expect(await namespaceConnectError(hub.url, QUEUE_NAMESPACE, token)).toMatchObject({ code: 'AUTH_REVOKED' });
      expect((await api(hub, '/api/clinics/testclinic/queue', token)).json.error).toMatchObject({ code: 'AUTH_REVOKED' });
    }
  });

  it('by the token itself (what a leak hands you), as the session it belongs to', async () => {
    const issued = testTokens.issueSync({ sub: 'staff:pasted', role: 'staff', clinic: 'testclinic' }, 600);
    const watched = await watch(hubB, CHAT_NAMESPACE, issued.token);
    expect((await api(hubA, '/api/tokens/revoke', await tokenFor('admin'), { token: issued.token })).json.revocation).toMatchObject({ kind: 'token', id: issued.id });
    await waitFor('the socket ended', () => endedBy('AUTH_REVOKED')(watched), 3000);
  });

  it('by user: every token of that user issued until then, on every node, and the next token works', async () => {
    const bob = [await tokenFor('staff', 'testclinic', { sub: 'staff:bob' }), await tokenFor('doctor', 'testclinic', { sub: 'staff:bob' })];
    const watched = [...(await watchEverywhere([hubA, hubB], bob[0]!, [QUEUE_NAMESPACE, CHAT_NAMESPACE])), await watch(hubB, CONSULT_NAMESPACE, bob[1]!)];
    const carol = await watch(hubA, CHAT_NAMESPACE, await tokenFor('staff', 'testclinic', { sub: 'staff:carol' }));
    const elsewhere = await watch(hubA, QUEUE_NAMESPACE, await tokenFor('staff', 'otherclinic', { sub: 'staff:bob' }));

    const started = Date.now();
    const revoked = await api(hubB, '/api/tokens/revoke', await tokenFor('admin'), { clinic: 'testclinic', sub: 'staff:bob' });
    expect(revoked.json.revocation).toMatchObject({ kind: 'user', clinic: 'testclinic', sub: 'staff:bob' });
    await waitFor('bob’s sockets ended', () => watched.every(endedBy('AUTH_REVOKED')), 3000);
    expect(Math.max(...watched.map((w) => w.disconnectedAt! - started))).toBeLessThan(1000);
    expect(carol.socket.connected).toBe(true);
    expect(elsewhere.socket.connected).toBe(true);
    // Issued after the answer: a new token is good.
    const fresh = await watch(hubA, QUEUE_NAMESPACE, await tokenFor('staff', 'testclinic', { sub: 'staff:bob' }));
    expectOk(await request(fresh.socket as unknown as QueueSocket, 'queue:sync', {}));
    expect(await namespaceConnectError(hubA.url, QUEUE_NAMESPACE, bob[0]!)).toMatchObject({ code: 'AUTH_REVOKED' });
  });

  it('by clinic: every token of the clinic, whatever its role, and not another clinic’s', async () => {
    const { patientToken } = await checkinPatient(hubA, 'otherclinic');
    const watched = [
      await watch(hubA, QUEUE_NAMESPACE, await tokenFor('display', 'otherclinic')),
      await watch(hubB, CHAT_NAMESPACE, await tokenFor('staff', 'otherclinic', { sub: 'staff:x' })),
      await watch(hubB, NOTIFY_NAMESPACE, patientToken),
    ];
    const unaffected = await watch(hubB, QUEUE_NAMESPACE, await tokenFor('display', 'testclinic'));
    const revoked = await api(hubA, '/api/tokens/revoke', await tokenFor('admin', '*'), { clinic: 'otherclinic', all: true });
    expect(revoked.json.revocation).toMatchObject({ kind: 'clinic', clinic: 'otherclinic' });
    await waitFor('the clinic’s sockets ended', () => watched.every(endedBy('AUTH_REVOKED')), 3000);
    expect(unaffected.socket.connected).toBe(true);
    await watch(hubB, QUEUE_NAMESPACE, await tokenFor('display', 'otherclinic'));
  });

  it('is for admins, within their clinic; revocations are listed', async () => {
    expect((await api(hubA, '/api/tokens/revoke', await tokenFor('staff'), { clinic: 'testclinic', all: true })).json.error).toMatchObject({ code: 'AUTH_FORBIDDEN' });
    expect((await api(hubA, '/api/tokens/revoke', await tokenFor('admin'), { clinic: 'otherclinic', sub: 'x' })).json.error).toMatchObject({ code: 'AUTH_WRONG_CLINIC' });
    expect((await api(hubA, '/api/tokens/revoke', await tokenFor('admin'), { clinic: 'ghostclinic', sub: 'x' })).json.error).toMatchObject({ code: 'AUTH_WRONG_CLINIC' });
    expect((await api(hubA, '/api/tokens/revoke', await tokenFor('admin', '*'), { clinic: 'ghostclinic', sub: 'x' })).json.error).toMatchObject({ code: 'CLINIC_NOT_FOUND' });
    expect((await api(hubA, '/api/tokens/revoke', await tokenFor('admin'), { everything: true })).json.error).toMatchObject({ code: 'INVALID_PAYLOAD' });
    const listed = await api(hubB, '/api/tokens/revocations', await tokenFor('admin'));
    const kinds = (listed.json.revocations as { kind: string; clinic: string }[]).map((r) => `${r.kind}:${r.clinic}`);
    expect(kinds).toContain('user:testclinic');
    expect(kinds).not.toContain('clinic:otherclinic');
    const everything = await api(hubB, '/api/tokens/revocations', await tokenFor('admin', '*'));
    expect((everything.json.revocations as { kind: string; clinic: string }[]).map((r) => `${r.kind}:${r.clinic}`)).toContain('clinic:otherclinic');
  });
});

describe('auth:refresh', () => {
  it('keeps the session’s id and start, and stops at the session’s maximum age (AUTH_SESSION_EXPIRED)', async () => {
    const now = Math.floor(Date.now() / 1000);
    const first = testTokens.issueSync({ sub: 'staff:long-shift', role: 'staff', clinic: 'testclinic' }, 600);
    const socket = (await watch(hubA, QUEUE_NAMESPACE, first.token)).socket as unknown as QueueSocket;
    const refreshed = expectOk(await request(socket, 'auth:refresh', {}));
    expect(testTokens.verifySync(refreshed.token)).toMatchObject({ sid: first.id, authTime: testTokens.verifySync(first.token).authTime });
    const again = expectOk(await request(socket, 'auth:refresh', {}));
    expect(testTokens.verifySync(again.token)).toMatchObject({ sid: first.id });

    // A session that began nearly an hour ago (the maximum here): the new token ends with the session.
    const late = testTokens.issueSync({ sub: 'staff:late', role: 'staff', clinic: 'testclinic' }, 600, { authTime: now - STAFF_SESSION_MAX_SECONDS + 300 });
    const lateSocket = (await watch(hubA, CHAT_NAMESPACE, late.token)).socket as unknown as QueueSocket;
    const capped = expectOk(await request(lateSocket, 'auth:refresh', {}));
    expect(capped.expiresAt).toBeLessThanOrEqual((now + 300) * 1000 + 2000);
    expect(capped.expiresAt).toBeGreaterThan(Date.now() + 250_000);

    // A minute from its end: no more tokens.
    const over = testTokens.issueSync({ sub: 'staff:over', role: 'staff', clinic: 'testclinic' }, 600, { authTime: now - STAFF_SESSION_MAX_SECONDS + 30 });
    const overSocket = (await watch(hubB, CONSULT_NAMESPACE, over.token)).socket as unknown as QueueSocket;
    expect(await request(overSocket, 'auth:refresh', {})).toMatchObject({ ok: false, error: { code: 'AUTH_SESSION_EXPIRED' } });
    // Its current token still works until it expires.
    expect(overSocket.connected).toBe(true);
  });
});

describe('a patient’s token', () => {
  it('ends with their ticket, after the clinic’s grace period (3 s in briefclinic), on every namespace', async () => {
    const { staff, ticketId, patientToken } = await checkinPatient(hubA, 'briefclinic');
    const watched = await watchEverywhere([hubB], patientToken);
    expectOk(await request(staff, 'queue:call-next', { dept: 'gp', room: 'r1' }));
    const done = expectOk(await request(staff, 'queue:done', { ticketId }));
    const endedAt = done.event.ticket.endedAt!;
    await sleep(1500);
    expect(watched.every((w) => w.socket.connected)).toBe(true);
    await waitFor('the patient’s sockets ended', () => watched.every(endedBy('AUTH_EXPIRED')), 8000);
    for (const w of watched) {
      expect(w.disconnectedAt! - (endedAt + 3000), w.namespace).toBeLessThan(1500);
      expect(w.disconnectedAt! - (endedAt + 3000), w.namespace).toBeGreaterThan(-1000);
    }
    expect(await namespaceConnectError(hubA.url, CHAT_NAMESPACE, patientToken)).toMatchObject({ code: 'AUTH_EXPIRED', detail: 'the ticket has ended' });
    expect((await api(hubA, `/api/chat/attachments/${'a'.repeat(22)}`, patientToken)).json.error).toMatchObject({ code: 'AUTH_EXPIRED' });
  });

  it('keeps working within the grace period (60 min by default), and a refresh then ends with it', async () => {
    const { staff, ticketId, patientToken } = await checkinPatient(hubA, 'testclinic');
    const chat = await watch(hubB, CHAT_NAMESPACE, patientToken);
    const ask = (event: string, payload: unknown) =>
      (chat.socket.timeout(5000) as unknown as { emitWithAck(e: string, p: unknown): Promise<{ ok: boolean; expiresAt: number; messages: unknown[] }> }).emitWithAck(event, payload);
    expect(await ask('chat:send', { threadId: `patient.${ticketId}`, clientMessageId: 'before-cancel-1', text: 'ありがとうございました' })).toMatchObject({ ok: true });
    expectOk(await request(staff, 'queue:cancel', { ticketId }));
    await sleep(300);
    const history = await ask('chat:history', { threadId: `patient.${ticketId}` });
    expect(history).toMatchObject({ ok: true, messages: [expect.objectContaining({ text: 'ありがとうございました' })] });
    const refreshed = await ask('auth:refresh', {});
    expect(refreshed.ok).toBe(true);
    expect(refreshed.expiresAt).toBeLessThanOrEqual(Date.now() + 60 * 60_000 + 1000);
    expect(chat.socket.connected).toBe(true);
  });

  it('for a ticket that is not in the queue and did not end lately is refused at connect', async () => {
    const token = await tokenFor('patient', 'testclinic', { ticket: 'no-such-ticket', sub: 'patient:no-such-ticket' });
    for (const namespace of NAMESPACES) expect(await namespaceConnectError(hubA.url, namespace, token), namespace).toMatchObject({ code: 'AUTH_EXPIRED' });
  });
});
