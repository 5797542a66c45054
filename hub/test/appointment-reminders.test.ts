import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Appointment } from '@clinic-hub/protocol';
import { startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { startNotifyFixture, startWorkerProcess, waitFor, type NotifyFixture, type WorkerProcess } from '@clinic-hub/test-kit/notify-fixture';

/**
 * An appointment's reminder carries its arrival: a hub process stores the
 * appointment (alone, or through the reminders route with a department), a
 * worker process sends the due reminder by SMS to a local Twilio-style
 * provider, and the text holds the arrival link and code.
 */
let fixture: NotifyFixture;
let hub: HubNodeProcess;
let worker: WorkerProcess;
let staff: string;
const PUBLIC = 'https://clinic.example.jp';
const HOUR = 3600_000;

beforeAll(async () => {
  fixture = await startNotifyFixture();
  hub = await startHubProcess({ redisUrl: fixture.redisUrl, nodeId: 'appt-reminders', env: fixture.env({ HUB_PUBLIC_URL: PUBLIC }) });
  worker = await startWorkerProcess(fixture.env({ HUB_PUBLIC_URL: PUBLIC }));
  staff = await tokenFor('staff');
});
afterAll(async () => {
  await worker?.stop();
  await hub?.stop();
  await fixture?.stop();
});

async function put(path: string, body: unknown) {
  const res = await fetch(`${hub.url}/api/clinics/testclinic/appointments/${path}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${staff}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as { appointment: Appointment; reminders: { kind: string }[] } };
}

describe('appointment reminders with the arrival', () => {
  it('text the arrival link and code, for appointments stored directly and through the reminders route', async () => {
    const direct = await put('rem-arrival-1', { startsAt: Date.now() + HOUR + 2_000, dept: 'gp', contact: { channel: 'sms', address: '+819070000001', locale: 'ja' } });
    expect(direct.status).toBe(200);
    expect(direct.json.reminders.map((r) => r.kind)).toEqual(['reminder_1h']);
    const viaReminders = await put('rem-arrival-2/reminders', {
      startsAt: Date.now() + HOUR + 2_500,
      dept: 'peds',
      contact: { channel: 'sms', address: '+819070000002', locale: 'en' },
    });
    expect(viaReminders.status).toBe(200);
    expect(viaReminders.json.appointment.dept).toBe('peds');

    for (const [answer, to] of [
      [direct.json.appointment, '+819070000001'],
      [viaReminders.json.appointment, '+819070000002'],
    ] as const) {
      const sms = await waitFor(() => fixture.sms.accepted.find((m) => m.to === to), `the reminder to ${to}`, 20_000);
      expect(answer.arrivalUrl).toBe(`${PUBLIC}/checkin#clinic=testclinic&code=${answer.arrivalCode}`);
      expect(sms.body).toContain(answer.arrivalUrl);
    }
    // E-mail and LINE get the whole body, with the code for the kiosk as well.
    const mail = await put('rem-arrival-3', { startsAt: Date.now() + HOUR + 3_000, dept: 'gp', contact: { channel: 'email', address: 'patient@example.jp', locale: 'ja' } });
    const message = await waitFor(() => fixture.smtp.received.find((m) => m.envelopeTo.includes('patient@example.jp')), 'the reminder e-mail', 20_000);
    const code = mail.json.appointment.arrivalCode;
    expect(message.parsed.text).toContain(mail.json.appointment.arrivalUrl);
    expect(message.parsed.text).toContain(`予約番号 ${code.slice(0, 3)}-${code.slice(3, 6)}-${code.slice(6)}`);
  });

  it('cancelling the appointment removes its arrival with its reminders', async () => {
    const made = await put('rem-cancel', { startsAt: Date.now() + 25 * HOUR, dept: 'gp', contact: { channel: 'sms', address: '+819070000009' } });
    const removed = await fetch(`${hub.url}/api/clinics/testclinic/appointments/rem-cancel`, { method: 'DELETE', headers: { authorization: `Bearer ${staff}` } });
    expect(await removed.json()).toEqual({ ok: true, removedReminders: 2 });
    const arrival = await fetch(`${hub.url}/api/clinics/testclinic/self-checkin`, { method: 'POST', body: JSON.stringify({ appointmentCode: made.json.appointment.arrivalCode }) });
    expect(arrival.status).toBe(404);
  });
});
