import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { io } from 'socket.io-client';
import { Queue } from 'bullmq';
import { type InAppNotice, NOTIFY_NAMESPACE, NOTIFY_QUEUE_NAME, NOTIFY_QUEUE_PREFIX } from '@clinic-hub/protocol';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { REPO_ROOT, TEST_CLINICS_DIR, childNodeArgs, startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { connectQueue, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import { waitFor } from '@clinic-hub/test-kit/wait';

/** The hub stores the contact given at check-in; the worker (its own process) tells the patient on their ticket page. */
let redis: TestRedis;
let hub: HubNodeProcess;
let worker: ChildProcess;
let staff: QueueSocket;

beforeAll(async () => {
  redis = await startTestRedis();
  hub = await startHubProcess({ redisUrl: redis.url, nodeId: 'notify-hub' });
  worker = spawn(process.execPath, childNodeArgs(resolve(REPO_ROOT, 'hub/src/notify/worker-main.ts')), {
    cwd: REPO_ROOT,
    env: { ...process.env, REDIS_URL: redis.url, CLINICS_DIR: TEST_CLINICS_DIR, LOG_LEVEL: 'warn', NOTIFY_QUIET_HOURS: 'off' },
    stdio: 'ignore',
  });
  staff = await connectQueue(hub.url, await tokenFor('staff'));
});
afterAll(async () => {
  staff?.close();
  if (worker && worker.exitCode === null) {
    worker.kill('SIGTERM');
    await new Promise((r) => worker.once('exit', r));
  }
  await hub?.stop();
  await redis?.cleanup();
});

describe('check-in with notifications', () => {
  it('tells an in-app patient when they are called, on their own socket only', async () => {
    const mine = await request(staff, 'queue:checkin', { dept: 'peds', notify: { channel: 'in_app', locale: 'en' } });
    const other = await request(staff, 'queue:checkin', { dept: 'peds', notify: { channel: 'in_app' } });
    if (!mine.ok || !other.ok) throw new Error('check-in failed');
    expect(mine.notify).toEqual({ ok: true });

    const received: InAppNotice[] = [];
    const otherReceived: InAppNotice[] = [];
    const connect = (token: string, into: InAppNotice[]) => {
      const socket = io(`${hub.url}${NOTIFY_NAMESPACE}`, { auth: { token }, transports: ['websocket'], forceNew: true });
      socket.on('notify:notice', (notice: InAppNotice) => into.push(notice));
      return socket;
    };
    const mySocket = connect(mine.patientToken, received);
    const otherSocket = connect(other.patientToken, otherReceived);
    try {
      await waitFor('notify sockets connected', () => mySocket.connected && otherSocket.connected);
      const called = await request(staff, 'queue:call-next', { dept: 'peds', room: 'r3' });
      expect(called.ok && called.event.ticket.id).toBe(mine.event.ticket.id);
      const notice = await waitFor('the called notice', () => received.find((n) => n.kind === 'queue_called'), 15_000);
      expect(notice.ticketNumber).toBe(mine.event.ticket.number);
      expect(notice.locale).toBe('en');
      expect(notice.body).toContain(mine.event.ticket.number);
      expect(otherReceived.filter((n) => n.kind === 'queue_called')).toEqual([]);
    } finally {
      mySocket.close();
      otherSocket.close();
    }
  });

  it('gives a patient who checks in first in line the "1 ahead" notice with no further queue change', async () => {
    // gp has two free rooms and nobody waiting: this ticket is next, 0 ahead. The worker's first look at
    // the queue after this check-in must already find the contact.
    const mine = await request(staff, 'queue:checkin', { dept: 'gp', notify: { channel: 'in_app' } });
    if (!mine.ok) throw new Error(mine.error.code);
    const queue = new Queue(NOTIFY_QUEUE_NAME, { connection: { url: redis.url }, prefix: NOTIFY_QUEUE_PREFIX });
    try {
      const job = await waitFor('a sent 1-ahead notice for this ticket', async () => {
        const done = await queue.getCompleted(0, 50);
        return done.find(
          (j) => j.data.kind === 'queue_1_ahead' && j.data.recipient.type === 'ticket' && j.data.recipient.ticketId === mine.event.ticket.id,
        );
      }, 15_000);
      expect(job.returnvalue).toMatchObject({ outcome: 'sent', channel: 'in_app' });
    } finally {
      await queue.close();
    }
  });

  it('keeps the ticket and says so when the chosen channel is not configured', async () => {
    const reply = await request(staff, 'queue:checkin', { dept: 'gp', notify: { channel: 'sms', address: '+819012345678' } });
    if (!reply.ok) throw new Error(reply.error.code);
    expect(reply.notify).toMatchObject({ ok: false, error: { code: 'NOTIFY_CHANNEL_DISABLED' } });
    const snapshot = await request(staff, 'queue:sync', {});
    expect(snapshot.ok && snapshot.mode === 'snapshot' && snapshot.snapshot.tickets.some((t) => t.id === reply.event.ticket.id)).toBe(true);
  });

  it('refuses a malformed contact with INVALID_PAYLOAD and issues no ticket', async () => {
    const before = await request(staff, 'queue:sync', {});
    const reply = await request(staff, 'queue:checkin', { dept: 'gp', notify: { channel: 'sms', address: '090-not-e164' } } as never);
    expect(reply).toMatchObject({ ok: false, error: { code: 'INVALID_PAYLOAD' } });
    const after = await request(staff, 'queue:sync', {});
    const seqOf = (r: typeof before) => (r.ok && r.mode === 'snapshot' ? r.snapshot.seq : -1);
    expect(seqOf(after)).toBe(seqOf(before));
  });
});
