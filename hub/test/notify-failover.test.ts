import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NotificationService } from '../src/notify/notification-service.js';
import { reminderPhone, reminderStream, startNotifyFixture, startWorkerProcess, type NotifyFixture, type ReminderStream, type WorkerProcess } from '@clinic-hub/test-kit/notify-fixture';
import { startSentinelGroup, type SentinelGroup } from '@clinic-hub/test-kit/redis-sentinel';
import { sleep, waitFor } from '@clinic-hub/test-kit/wait';

/**
 * Notifications (BullMQ) on Redis Sentinel, the master killed with SIGKILL
 * in the middle of a stream of reminders being scheduled and sent by two
 * worker processes, twice. A reminder is acknowledged only once a replica
 * holds its job and contact (NOTIFY_REDIS_ACK_REPLICAS, 1 by default with
 * Sentinel); what was not acknowledged is scheduled again with the same
 * appointment and time (the same notification). Afterwards every
 * acknowledged reminder has reached the SMS provider exactly once: none
 * vanished with the old master, and none was sent twice by a job the
 * failover brought back (its completion lost): the worker's send record was
 * on a replica before the job completed, and every attempt carries the same
 * provider idempotency key.
 */
const FAILOVERS = 2;
const REMINDER_IN_MS = 20_000;
const TEST_CLINIC = 'testclinic';

let fixture: NotifyFixture;
let group: SentinelGroup;
let service: NotificationService;
let env: Record<string, string>;
const workers: WorkerProcess[] = [];
let stream: ReminderStream;

beforeAll(async () => {
  [fixture, group] = await Promise.all([startNotifyFixture(), startSentinelGroup()]);
  env = fixture.env({
    REDIS_URL: undefined,
    ...group.env,
    NOTIFY_ATTEMPTS: '20',
    NOTIFY_BACKOFF_MS: '200',
    NOTIFY_LOCK_MS: '2000',
    NOTIFY_STALLED_CHECK_MS: '500',
  });
  service = new NotificationService({ config: fixture.config({ REDIS_URL: undefined, ...group.env }), clinics: fixture.clinics });
  stream = reminderStream(service, fixture.sms, { clinic: TEST_CLINIC, remindInMs: REMINDER_IN_MS });
  workers.push(...(await Promise.all([startWorkerProcess(env), startWorkerProcess(env)])));
}, 120_000);

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  await service?.close();
  await group?.cleanup();
  await fixture?.stop();
});

describe('notifications across Sentinel failovers', () => {
  it('sends every acknowledged reminder exactly once when the master is SIGKILLed mid-stream, twice', { timeout: 300_000 }, async () => {
    await stream.throughFailovers(FAILOVERS, async () => {
      // The replica 800 ms behind when the master dies, so that the failover loses what was not waited for (a SIGKILL
      // alone loses nothing on loopback: test-kit redis-sentinel, killMaster).
      const { killed, promoted } = await group.killMaster({ lagMs: 800 });
      return `${killed} → ${promoted}`;
    });

    // Every acknowledged reminder's job completes, and its phone got one message.
    await stream.allCompleted();
    for (const [i, count] of stream.sentCounts()) expect(count, `reminder ${i}`).toBe(1);
    // Nothing else was sent (a reminder never acknowledged but made all the same would be the same phone, counted above).
    expect(fixture.sms.accepted).toHaveLength(stream.acknowledged.size);
    expect(await service.queue.getJobCounts('failed')).toEqual({ failed: 0 });

    const requests = fixture.sms.requests.length;
    console.info(
      `notify failover: ${FAILOVERS} failovers, ${stream.acknowledged.size} reminders acknowledged and sent once; ` +
        `${requests - fixture.sms.accepted.length} repeated provider requests answered from the idempotency key; scheduling saw ${JSON.stringify(stream.seen)}`,
    );
    // The failovers were real: scheduling saw them and retried.
    expect(stream.seen.storeUnavailable + stream.seen.thrown).toBeGreaterThan(0);
  });

  it('never acknowledges a reminder the replica does not hold: STORE_UNAVAILABLE, then the same reminder once', { timeout: 60_000 }, async () => {
    const replica = await group.replica();
    const startsAt = Date.now() + 3600_000 + 2000;
    replica.process.kill('SIGSTOP');
    let stopped = true;
    try {
      const refused = await service.scheduleAppointmentReminders({
        clinic: TEST_CLINIC,
        appointmentId: 'failover-9999',
        startsAt,
        contact: { channel: 'sms', address: reminderPhone(9999) },
        kinds: ['reminder_1h'],
      });
      expect(refused).toMatchObject({ ok: false, error: { code: 'STORE_UNAVAILABLE', detail: expect.stringContaining('replica') } });
      replica.process.kill('SIGCONT');
      stopped = false;
      const id = await stream.scheduleUntilAcknowledged(9999, startsAt);
      await waitFor('the reminder to complete', async () => (await service.queue.getJobState(id)) === 'completed', 30_000);
      await sleep(500);
      expect(fixture.sms.accepted.filter((m) => m.to === reminderPhone(9999))).toHaveLength(1);
    } finally {
      if (stopped) replica.process.kill('SIGCONT');
    }
  });
});
