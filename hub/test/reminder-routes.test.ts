import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { startNotifyFixture, startWorkerProcess, waitFor, type NotifyFixture, type WorkerProcess } from '@clinic-hub/test-kit/notify-fixture';

/**
 * Appointment reminders over HTTP, end to end: a hub process takes the
 * schedule, a worker process sends the due reminder to a local Twilio-style
 * SMS provider; a cancelled appointment's reminder never arrives.
 */
let fixture: NotifyFixture;
let hub: HubNodeProcess;
let worker: WorkerProcess;
let staff: string;

beforeAll(async () => {
  fixture = await startNotifyFixture();
  hub = await startHubProcess({ redisUrl: fixture.redisUrl, nodeId: 'reminders', env: fixture.env() });
  worker = await startWorkerProcess(fixture.env());
  staff = await tokenFor('staff');
});
afterAll(async () => {
  await worker?.stop();
  await hub?.stop();
  await fixture?.stop();
});

async function reminders(appointment: string, options: { method: 'PUT' | 'DELETE'; token?: string; body?: unknown; clinic?: string }) {
  const res = await fetch(`${hub.url}/api/clinics/${options.clinic ?? 'testclinic'}/appointments/${appointment}/reminders`, {
    method: options.method,
    headers: { authorization: `Bearer ${options.token ?? staff}`, 'content-type': 'application/json' },
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  });
  return { status: res.status, json: (await res.json()) as any };
}

const HOUR = 3600_000;

describe('appointment reminders over HTTP', () => {
  it('sends the 1-hour reminder when it falls due, and a cancelled appointment gets none', async () => {
    const startsAt = Date.now() + HOUR + 2_000;
    const kept = await reminders('appt-kept', {
      method: 'PUT',
      body: { startsAt, contact: { channel: 'sms', address: '+819011112222', locale: 'ja' }, room: 'r1' },
    });
    expect(kept.status).toBe(200);
    // The 24-hour reminder is already in the past: only the 1-hour one is scheduled.
    expect(kept.json.reminders.map((r: { kind: string }) => r.kind)).toEqual(['reminder_1h']);

    const cancelled = await reminders('appt-cancelled', {
      method: 'PUT',
      body: { startsAt: new Date(Date.now() + HOUR + 2_500).toISOString(), contact: { channel: 'sms', address: '+819033334444' } },
    });
    expect(cancelled.status).toBe(200);
    const removed = await reminders('appt-cancelled', { method: 'DELETE' });
    expect(removed).toMatchObject({ status: 200, json: { ok: true, removed: 1 } });

    const sms = await waitFor(() => fixture.sms.accepted.find((m) => m.to === '+819011112222'), 'the reminder SMS', 15_000);
    const clock = new Intl.DateTimeFormat('ja-JP', { timeZone: 'Asia/Tokyo', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(startsAt);
    expect(sms.body).toContain(clock);
    expect(sms.body).toContain('予約');
    await new Promise((r) => setTimeout(r, 2_000));
    expect(fixture.sms.accepted.filter((m) => m.to === '+819033334444')).toEqual([]);
    expect(fixture.sms.accepted.filter((m) => m.to === '+819011112222')).toHaveLength(1);
  });

  it('refuses with codes: past appointments, bad bodies, doctors, other clinics, unknown appointments', async () => {
    const contact = { channel: 'sms', address: '+819055556666' };
    expect(await reminders('appt-past', { method: 'PUT', body: { startsAt: Date.now() - 1000, contact } })).toMatchObject({
      status: 400,
      json: { error: { code: 'NOTIFY_APPOINTMENT_PAST' } },
    });
    expect(await reminders('appt-bad', { method: 'PUT', body: { startsAt: 'tomorrow', contact } })).toMatchObject({
      status: 400,
      json: { error: { code: 'INVALID_PAYLOAD' } },
    });
    expect(await reminders('appt-bad', { method: 'PUT', body: { startsAt: Date.now() + 2 * HOUR, contact: { channel: 'sms', address: '090' } } })).toMatchObject({
      status: 400,
      json: { error: { code: 'INVALID_PAYLOAD' } },
    });
    expect(await reminders('appt-x', { method: 'PUT', token: await tokenFor('doctor'), body: { startsAt: Date.now() + 2 * HOUR, contact } })).toMatchObject({
      status: 403,
      json: { error: { code: 'AUTH_FORBIDDEN' } },
    });
    expect(await reminders('appt-x', { method: 'DELETE', token: await tokenFor('staff', 'otherclinic') })).toMatchObject({
      status: 403,
      json: { error: { code: 'AUTH_WRONG_CLINIC' } },
    });
    expect(await reminders('never-booked', { method: 'DELETE' })).toMatchObject({ status: 404, json: { error: { code: 'NOTIFY_APPOINTMENT_NOT_FOUND' } } });
  });
});
