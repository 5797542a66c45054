import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { NotificationService } from '../src/notify/notification-service.js';
import { hashSlot } from '@clinic-hub/platform/redis';
import { legacySendRecordKey, sendRecordKey } from '../src/notify/notify-keys.js';
import {
  TEST_CLINIC,
  lineUserId,
  sleep,
  startNotifyFixture,
  startWorkerProcess,
  waitFor,
  type NotifyFixture,
  type WorkerProcess,
} from '@clinic-hub/test-kit/notify-fixture';

/**
 * A worker process killed (SIGKILL) while the provider holds its request,
 * after the provider has accepted the message: the job is handed to a new
 * worker once the dead one's lock expires (NOTIFY_LOCK_MS), the retry carries
 * the same provider idempotency key, and the provider sends the notice once.
 */
let fixture: NotifyFixture;
let service: NotificationService;
let redis: Redis;
const workers: WorkerProcess[] = [];

beforeAll(async () => {
  fixture = await startNotifyFixture();
  service = new NotificationService({ config: fixture.config(), clinics: fixture.clinics });
  redis = new Redis(fixture.redisUrl);
});
afterAll(async () => {
  for (const worker of workers) await worker.stop();
  await service?.close();
  redis?.disconnect();
  await fixture?.stop();
});

async function startWorker(): Promise<WorkerProcess> {
  const worker = await startWorkerProcess(fixture.env({ NOTIFY_LOCK_MS: '1000', NOTIFY_STALLED_CHECK_MS: '250' }));
  workers.push(worker);
  return worker;
}

async function remindNow(appointmentId: string, contact: { channel: 'line' | 'sms'; address: string }): Promise<string> {
  const result = await service.scheduleAppointmentReminders({
    clinic: TEST_CLINIC,
    appointmentId,
    // Due in a second: a reminder whose time passed before the service read the clock (a loaded machine) would be left out.
    startsAt: Date.now() + 3600_000 + 1000,
    contact,
    kinds: ['reminder_1h'],
  });
  if (!result.ok) throw new Error(result.error.code);
  return result.reminders[0]!.id;
}

async function completedJob(id: string) {
  await waitFor(async () => (await service.queue.getJobState(id)) === 'completed', `job ${id} to complete`, 20_000);
  return (await service.queue.getJob(id))!;
}

describe('a worker killed in the middle of a send', () => {
  it('LINE: the retry is recognised by its X-Line-Retry-Key and the user gets one message', async () => {
    const to = lineUserId(99);
    const first = await startWorker();
    fixture.line.stallNext(1);
    const id = await remindNow('crash-line', { channel: 'line', address: to });
    await fixture.line.whenStalled();
    expect(JSON.parse((await redis.get(sendRecordKey(id)))!)).toMatchObject({ state: 'sending' });
    await first.kill9();

    const second = await startWorker();
    const job = await completedJob(id);
    const requests = fixture.line.requests.filter((r) => r.body.includes(to));
    expect(requests).toHaveLength(2);
    expect(requests[1]!.headers['x-line-retry-key']).toBe(requests[0]!.headers['x-line-retry-key']);
    const accepted = fixture.line.accepted.filter((p) => p.to === to);
    expect(accepted).toHaveLength(1);
    // The 409 answer carries the first request's message id.
    expect(job.returnvalue).toEqual({ outcome: 'sent', channel: 'line', providerId: accepted[0]!.sentMessages[0]!.id });
    expect(JSON.parse((await redis.get(sendRecordKey(id)))!)).toMatchObject({ state: 'sent' });
    expect(second.logs()).toContain('resuming an interrupted send');
    await sleep(500);
    expect(fixture.line.accepted.filter((p) => p.to === to)).toHaveLength(1);
    await second.stop();
  });

  it('SMS: the retry carries the same Idempotency-Key and the phone gets one message', async () => {
    const to = '+819011112222';
    const first = await startWorker();
    fixture.sms.stallNext(1);
    const id = await remindNow('crash-sms', { channel: 'sms', address: to });
    await fixture.sms.whenStalled();
    await first.kill9();

    const second = await startWorker();
    const job = await completedJob(id);
    const requests = fixture.sms.requests.filter((r) => new URLSearchParams(r.body).get('To') === to);
    expect(requests).toHaveLength(2);
    expect(requests[1]!.headers['idempotency-key']).toBe(requests[0]!.headers['idempotency-key']);
    const accepted = fixture.sms.accepted.filter((m) => m.to === to);
    expect(accepted).toHaveLength(1);
    expect(job.returnvalue).toEqual({ outcome: 'sent', channel: 'sms', providerId: accepted[0]!.sid });
    await second.stop();
  });
});

describe('send records across an upgrade', () => {
  it('lie in their clinic\'s slot, and a send an earlier version recorded under {notify} is not made again', async () => {
    const to = '+819033334444';
    // No worker yet: the record of "the earlier version" is there before any attempt.
    const id = await remindNow('upgrade-sms', { channel: 'sms', address: to });
    expect(hashSlot(sendRecordKey(id))).toBe(hashSlot(`{${TEST_CLINIC}}`));
    await redis.set(legacySendRecordKey(id), JSON.stringify({ state: 'sent', providerId: 'SM-before-upgrade', at: Date.now() }), 'EX', 600);
    const worker = await startWorker();
    const job = await completedJob(id);
    expect(job.returnvalue).toEqual({ outcome: 'already_sent', providerId: 'SM-before-upgrade' });
    expect(JSON.parse((await redis.get(sendRecordKey(id)))!)).toMatchObject({ state: 'sent', providerId: 'SM-before-upgrade' });
    await sleep(300);
    expect(fixture.sms.requests.filter((r) => new URLSearchParams(r.body).get('To') === to)).toHaveLength(0);
    await worker.stop();
  });
});
