import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRedisUnavailable } from '@clinic-hub/platform/redis';
import { NotificationService } from '../src/notify/notification-service.js';
import { startNotifyFixture, startWorkerProcess, type NotifyFixture, type WorkerProcess } from '@clinic-hub/test-kit/notify-fixture';
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
  workers.push(...(await Promise.all([startWorkerProcess(env), startWorkerProcess(env)])));
}, 120_000);

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  await service?.close();
  await group?.cleanup();
  await fixture?.stop();
});

const phoneOf = (n: number) => `+8190${String(n).padStart(8, '0')}`;
const seen = { storeUnavailable: 0, thrown: 0 };

/** Schedules one reminder, due now, until it is acknowledged; the same appointment and time each try (one notification). */
async function scheduleUntilAcknowledged(n: number, startsAt: number): Promise<string> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (Date.now() > deadline) throw new Error(`reminder ${n} never acknowledged`);
    try {
      const result = await service.scheduleAppointmentReminders({
        clinic: TEST_CLINIC,
        appointmentId: `failover-${n}`,
        startsAt,
        contact: { channel: 'sms', address: phoneOf(n) },
        kinds: ['reminder_1h'],
      });
      if (result.ok) {
        // Left out once its time has passed: the window below must outlast every retry.
        if (result.reminders.length === 0) throw new Error(`reminder ${n}: its time passed before it was acknowledged`);
        return result.reminders[0]!.id;
      }
      if (result.error.code !== 'STORE_UNAVAILABLE') throw new Error(`reminder ${n}: ${result.error.code}`);
      seen.storeUnavailable++;
    } catch (error) {
      if (!isRedisUnavailable(error)) throw error;
      seen.thrown++;
    }
    await sleep(100);
  }
}

describe('notifications across Sentinel failovers', () => {
  it('sends every acknowledged reminder exactly once when the master is SIGKILLed mid-stream, twice', { timeout: 300_000 }, async () => {
    const acknowledged = new Map<number, string>();
    let n = 0;
    const step = async () => {
      const i = n++;
      // The 1-hour reminder of an appointment an hour and 20 s away: sent in 20 s (a delayed job across the
      // failovers), and still due when a retry after a failover schedules it again.
      acknowledged.set(i, await scheduleUntilAcknowledged(i, Date.now() + 3600_000 + REMINDER_IN_MS));
    };
    for (let i = 0; i < 5; i++) await step();

    for (let round = 1; round <= FAILOVERS; round++) {
      let keepWorking = true;
      const atStart = n;
      const producer = (async () => {
        while (keepWorking) await step();
      })();
      await waitFor('a few reminders before the kill', () => n >= atStart + 3, 20_000);
      await sleep(Math.floor(Math.random() * 100));
      const { killed, promoted } = await group.killMaster();
      const afterFailover = n;
      await waitFor(`reminders to go on after failover ${round} (${killed} → ${promoted})`, () => n >= afterFailover + 5, 60_000);
      keepWorking = false;
      await producer;
    }

    // Every acknowledged reminder's job completes, and its phone got one message.
    for (const [i, id] of acknowledged) {
      await waitFor(`reminder ${i} (${id}) to complete`, async () => (await service.queue.getJobState(id).catch(() => 'unknown')) === 'completed', 60_000);
    }
    const accepted = new Map<string, number>();
    for (const message of fixture.sms.accepted) accepted.set(message.to, (accepted.get(message.to) ?? 0) + 1);
    for (const i of acknowledged.keys()) expect(accepted.get(phoneOf(i)), `reminder ${i}`).toBe(1);
    // Nothing else was sent (a reminder never acknowledged but made all the same would be the same phone, counted above).
    expect(fixture.sms.accepted).toHaveLength(acknowledged.size);
    expect(await service.queue.getJobCounts('failed')).toEqual({ failed: 0 });

    const requests = fixture.sms.requests.length;
    console.info(
      `notify failover: ${FAILOVERS} failovers, ${acknowledged.size} reminders acknowledged and sent once; ` +
        `${requests - fixture.sms.accepted.length} repeated provider requests answered from the idempotency key; scheduling saw ${JSON.stringify(seen)}`,
    );
    // The failovers were real: scheduling saw them and retried.
    expect(seen.storeUnavailable + seen.thrown).toBeGreaterThan(0);
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
        contact: { channel: 'sms', address: phoneOf(9999) },
        kinds: ['reminder_1h'],
      });
      expect(refused).toMatchObject({ ok: false, error: { code: 'STORE_UNAVAILABLE', detail: expect.stringContaining('replica') } });
      replica.process.kill('SIGCONT');
      stopped = false;
      const id = await scheduleUntilAcknowledged(9999, startsAt);
      await waitFor('the reminder to complete', async () => (await service.queue.getJobState(id)) === 'completed', 30_000);
      await sleep(500);
      expect(fixture.sms.accepted.filter((m) => m.to === phoneOf(9999))).toHaveLength(1);
    } finally {
      if (stopped) replica.process.kill('SIGCONT');
    }
  });
});
