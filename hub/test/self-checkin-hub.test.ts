import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHAT_NAMESPACE, CONSULT_NAMESPACE, type Appointment, type AppointmentImportResponse, type QueueEvent, type SelfCheckinInfo, type SelfCheckinResult } from '@clinic-hub/protocol';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { connectQueue, expectOk, namespaceConnectError, recordArrivals, request, requestRaw, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import { waitFor } from '@clinic-hub/test-kit/wait';

/**
 * Self check-in through a real hub process: the kiosk's token checks in and
 * does nothing else, phones check in from a poster or an appointment's
 * link over HTTP, and every path gives staff the same `ticket.issued` as a
 * check-in at reception. Appointments come one by one or as a day's list,
 * with each row's errors.
 */
let redis: TestRedis;
let hub: HubNodeProcess;
let staffToken: string;
let kioskToken: string;
let staff: QueueSocket;
let kiosk: QueueSocket;

const C = 'testclinic';
const MIN = 60_000;

async function http<T = any>(method: string, path: string, options: { token?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<{ status: number; json: T }> {
  const res = await fetch(`${hub.url}${path}`, {
    method,
    headers: { ...(options.token ? { authorization: `Bearer ${options.token}` } : {}), 'content-type': 'application/json', ...options.headers },
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  });
  return { status: res.status, json: (await res.json()) as T };
}

beforeAll(async () => {
  redis = await startTestRedis();
  hub = await startHubProcess({
    redisUrl: redis.url,
    nodeId: 'self-checkin',
    env: { HUB_KIOSK_CHECKINS_PER_MINUTE: '6', HUB_TRUSTED_PROXIES: '127.0.0.1', HUB_PUBLIC_URL: 'https://hub.example.jp' },
  });
  staffToken = await tokenFor('staff');
  kioskToken = await tokenFor('kiosk', C, { sub: 'kiosk:entrance' });
  staff = await connectQueue(hub.url, staffToken);
  kiosk = await connectQueue(hub.url, kioskToken);
});
afterAll(async () => {
  staff?.close();
  kiosk?.close();
  await hub?.stop();
  await redis?.cleanup();
});

describe('the kiosk', () => {
  it('checks a patient in: the ticket staff see is the same as from reception, and the kiosk hears no queue events', async () => {
    const seen = recordArrivals(staff);
    const atKiosk = recordArrivals(kiosk);
    const reply = expectOk(await request(kiosk, 'queue:self-checkin', { dept: 'gp', language: 'en', requestId: 'kiosk-req-000001' }));
    expect(reply.event).toMatchObject({ type: 'ticket.issued', ticket: { dept: 'gp', status: 'waiting', priority: 'normal' } });
    expect(reply.patientUrl).toBe(`https://hub.example.jp/ticket#token=${reply.patientToken}`);
    expect(reply).toMatchObject({ appointment: null, ahead: 0, notify: { ok: true } });
    const event = await waitFor('staff got the ticket', () => seen.events.find((e) => e.ticket.id === reply.event.ticket.id));
    expect(event).toEqual(reply.event);
    // From reception, the same shape of event.
    const atReception = expectOk(await request(staff, 'queue:checkin', { dept: 'gp' }));
    expect(Object.keys(atReception.event.ticket).sort()).toEqual(Object.keys(reply.event.ticket).sort());
    await waitFor('staff got the reception ticket', () => seen.events.some((e) => e.ticket.id === atReception.event.ticket.id));
    expect(atKiosk.events).toEqual([]);
    // A lost ack resent with the same requestId is the same check-in.
    const again = expectOk(await request(kiosk, 'queue:self-checkin', { dept: 'gp', language: 'en', requestId: 'kiosk-req-000001' }));
    expect(again).toMatchObject({ replayed: true, event: { ticket: { id: reply.event.ticket.id } } });
  });

  it('can do nothing else: no queue actions, no snapshot, no patient data, no chat or consultations', async () => {
    for (const [event, payload] of [
      ['queue:checkin', { dept: 'gp' }],
      ['queue:sync', {}],
      ['queue:call-next', { dept: 'gp', room: 'r1' }],
      ['queue:patient', { ticketId: 'x' }],
      ['queue:patient-link', { ticketId: 'x' }],
      ['queue:cancel', { ticketId: 'x' }],
      ['queue:announce', { text: { ja: 'あ', en: 'a' } }],
    ] as const) {
      expect(await requestRaw(kiosk, event, payload), event).toMatchObject({ ok: false, error: { code: 'AUTH_FORBIDDEN' } });
    }
    expect((await http('GET', `/api/clinics/${C}/queue`, { token: kioskToken })).status).toBe(403);
    expect((await http('GET', `/api/clinics/${C}/audit`, { token: kioskToken })).status).toBe(403);
    expect((await http('GET', `/api/clinics/${C}/appointments`, { token: kioskToken })).status).toBe(403);
    expect((await http('GET', `/api/clinics/${C}/posters`, { token: kioskToken })).status).toBe(403);
    expect(await namespaceConnectError(hub.url, CHAT_NAMESPACE, kioskToken)).toMatchObject({ code: 'AUTH_FORBIDDEN' });
    expect(await namespaceConnectError(hub.url, CONSULT_NAMESPACE, kioskToken)).toMatchObject({ code: 'AUTH_FORBIDDEN' });
    // What it may do: refresh its token, read what the kiosk shows.
    expectOk(await request(kiosk, 'auth:refresh', {}));
    const info = await http<SelfCheckinInfo>('GET', `/api/clinics/${C}/self-checkin`, { token: kioskToken });
    expect(info).toMatchObject({ status: 200, json: { departments: ['gp', 'peds'], languages: ['ja', 'en', 'zh', 'ko'] } });
  });

  it('is limited per kiosk (HUB_KIOSK_CHECKINS_PER_MINUTE), counted with its HTTP check-ins', async () => {
    const other = await connectQueue(hub.url, await tokenFor('kiosk', C, { sub: 'kiosk:limited' }));
    try {
      const codes: string[] = [];
      for (let i = 0; i < 4; i++) {
        const ack = await request(other, 'queue:self-checkin', { dept: 'peds' });
        codes.push(ack.ok ? 'ok' : ack.error.code);
      }
      for (let i = 0; i < 3; i++) {
        const res = await http('POST', `/api/clinics/${C}/self-checkin`, { token: await tokenFor('kiosk', C, { sub: 'kiosk:limited' }), body: { dept: 'peds' } });
        codes.push(res.status === 201 ? 'ok' : res.json.error.code);
      }
      expect(codes).toEqual(['ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'RATE_LIMITED']);
    } finally {
      other.close();
    }
  });
});

describe('phones and posters', () => {
  it('checks a phone in from a poster, and not once the poster is withdrawn', async () => {
    const created = await http('POST', `/api/clinics/${C}/posters`, { token: staffToken, body: { label: 'entrance' } });
    expect(created.status).toBe(201);
    const { poster } = created.json;
    expect(poster.url).toBe(`https://hub.example.jp/checkin#clinic=${C}&poster=${poster.id}`);
    const info = await http('GET', `/api/clinics/${C}/self-checkin?poster=${poster.id}`);
    expect(info).toMatchObject({ status: 200, json: { mobile: { enabled: true, open: true } } });
    const seen = recordArrivals(staff);
    const res = await http<SelfCheckinResult>('POST', `/api/clinics/${C}/self-checkin`, {
      body: { dept: 'peds', poster: poster.id, phone: '+819012345678' },
      headers: { 'x-forwarded-for': '198.51.100.7' },
    });
    expect(res.status).toBe(201);
    expect(res.json.event.type).toBe('ticket.issued');
    await waitFor('staff got it', () => seen.events.some((e) => e.ticket.id === res.json.event.ticket.id));
    // Audited with the phone's address (the trusted proxy's X-Forwarded-For).
    const audit = await http('GET', `/api/clinics/${C}/audit?count=5`, { token: await tokenFor('admin') });
    expect(audit.json.entries).toContainEqual(expect.objectContaining({ action: 'checkin.mobile', actor: `poster:${poster.id}`, subject: res.json.event.ticket.id, from: '198.51.100.7' }));

    expect((await http('DELETE', `/api/clinics/${C}/posters/${poster.id}`, { token: staffToken })).status).toBe(200);
    expect(await http('POST', `/api/clinics/${C}/self-checkin`, { body: { dept: 'peds', poster: poster.id } })).toMatchObject({
      status: 403,
      json: { error: { code: 'CHECKIN_MOBILE_OFF' } },
    });
    expect(await http('GET', `/api/clinics/${C}/self-checkin?poster=${poster.id}`)).toMatchObject({ status: 403, json: { error: { code: 'CHECKIN_MOBILE_OFF' } } });
  });

  it('refuses phones without a poster or a code, and bad bodies with codes', async () => {
    expect(await http('POST', `/api/clinics/${C}/self-checkin`, { body: { dept: 'gp' } })).toMatchObject({ status: 401, json: { error: { code: 'AUTH_REQUIRED' } } });
    expect(await http('POST', `/api/clinics/${C}/self-checkin`, { body: { dept: 'gp', appointmentCode: '1234567890' } })).toMatchObject({
      status: 400,
      json: { error: { code: 'INVALID_PAYLOAD' } },
    });
    expect(await http('POST', `/api/clinics/${C}/self-checkin`, { body: { appointmentCode: '12345' } })).toMatchObject({ status: 400 });
    expect(await http('POST', `/api/clinics/${C}/self-checkin`, { body: { appointmentCode: '1234567890' } })).toMatchObject({
      status: 404,
      json: { error: { code: 'APPOINTMENT_NOT_FOUND' } },
    });
    expect(await http('POST', `/api/clinics/${C}/self-checkin`, { token: await tokenFor('doctor'), body: { dept: 'gp' } })).toMatchObject({ status: 403 });
    expect(await http('POST', `/api/clinics/${C}/self-checkin`, { token: await tokenFor('kiosk', 'otherclinic'), body: { dept: 'gp' } })).toMatchObject({
      status: 403,
      json: { error: { code: 'AUTH_WRONG_CLINIC' } },
    });
  });
});

describe('appointments that arrive', () => {
  it('imports a day\'s list with each row\'s errors, and lists what was stored', async () => {
    const at = (minutes: number) => new Date(Date.now() + minutes * MIN).toISOString();
    const res = await http<AppointmentImportResponse>('POST', `/api/clinics/${C}/appointments/import`, {
      token: staffToken,
      body: {
        appointments: [
          { id: 'imp-1', startsAt: at(30), dept: 'gp' },
          { id: 'imp-2', startsAt: at(45), dept: 'dentistry' },
          { id: 'imp-3', startsAt: 'tomorrow', dept: 'gp' },
          { id: 'imp-4', startsAt: at(-10), dept: 'gp' },
          { id: 'imp-5', startsAt: at(60), dept: 'peds', room: 'r3', contact: { channel: 'sms', address: '090-bad' } },
          { id: 'imp-1', startsAt: at(90), dept: 'gp' },
          { startsAt: at(90), dept: 'gp' },
          { id: 'imp-6', startsAt: at(90), dept: 'peds', room: 'r3' },
        ],
      },
    });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ imported: 2, refused: 6 });
    const outcome = res.json.results.map((r) => (r.ok ? 'ok' : `${r.error.code}${r.error.detail ? ` (${r.error.detail})` : ''}`));
    expect(outcome).toEqual([
      'ok',
      'QUEUE_DEPT_NOT_FOUND (dentistry)',
      expect.stringMatching(/^INVALID_PAYLOAD \(startsAt: /),
      'NOTIFY_APPOINTMENT_PAST',
      expect.stringMatching(/^INVALID_PAYLOAD \(contact\.address: /),
      'INVALID_PAYLOAD (id: appears in an earlier row of this list)',
      expect.stringMatching(/^INVALID_PAYLOAD \(id: /),
      'ok',
    ]);
    expect(res.json.results.map((r) => r.row)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    const first = res.json.results[0]!;
    if (!first.ok) throw new Error('row 0');
    expect(first.appointment.arrivalCode).toMatch(/^\d{10}$/);
    expect(first.appointment.arrivalUrl).toBe(`https://hub.example.jp/checkin#clinic=${C}&code=${first.appointment.arrivalCode}`);
    const listed = await http<{ appointments: Appointment[] }>('GET', `/api/clinics/${C}/appointments`, { token: staffToken });
    expect(listed.json.appointments.map((a) => a.id)).toEqual(['imp-1', 'imp-6']);
    expect(await http('POST', `/api/clinics/${C}/appointments/import`, { token: staffToken, body: { appointments: [] } })).toMatchObject({ status: 400 });
    expect(await http('POST', `/api/clinics/${C}/appointments/import`, { token: await tokenFor('doctor'), body: { appointments: [{}] } })).toMatchObject({ status: 403 });
  });

  it('checks the patient in from the arrival link on their phone and by code at the kiosk, at the appointment\'s place, and staff see it is one', async () => {
    const soon = await http<{ appointment: Appointment }>('PUT', `/api/clinics/${C}/appointments/arr-1`, {
      token: staffToken,
      body: { startsAt: Date.now() + 10 * MIN, dept: 'peds' },
    });
    expect(soon.status).toBe(200);
    const code = soon.json.appointment.arrivalCode;
    const info = await http('GET', `/api/clinics/${C}/self-checkin?code=${code}`);
    expect(info.json.appointment).toEqual({ startsAt: soon.json.appointment.startsAt, dept: 'peds' });
    // A walk-in who comes now, before the appointment's time, stays ahead of it.
    const walkIn = expectOk(await request(staff, 'queue:checkin', { dept: 'peds' }));
    const seen = recordArrivals(staff);
    const arrived = await http<SelfCheckinResult>('POST', `/api/clinics/${C}/self-checkin`, { body: { appointmentCode: code } });
    expect(arrived.status).toBe(201);
    expect(arrived.json.event.ticket).toMatchObject({ dept: 'peds', appointmentAt: soon.json.appointment.startsAt, order: soon.json.appointment.startsAt });
    expect(arrived.json.appointment).toEqual({ startsAt: soon.json.appointment.startsAt, late: false });
    const event = await waitFor('staff see the arrival', () => seen.events.find((e: QueueEvent) => e.ticket.id === arrived.json.event.ticket.id));
    expect(event.ticket.appointmentAt).toBe(soon.json.appointment.startsAt);
    expect(event.ticket.order).toBeGreaterThan(walkIn.event.ticket.order);

    // An appointment 5 minutes ago arrives at the kiosk: ahead of the walk-in who came after its time.
    const past = await redisPut('arr-2', Date.now() - 5 * MIN, 'peds');
    const atKiosk = expectOk(await request(kiosk, 'queue:self-checkin', { appointmentCode: past }));
    expect(atKiosk.event.ticket.order).toBeLessThan(walkIn.event.ticket.order);
    // Arriving again: the same ticket.
    const again = await http<SelfCheckinResult>('POST', `/api/clinics/${C}/self-checkin`, { body: { appointmentCode: past } });
    expect(again).toMatchObject({ status: 200, json: { replayed: true, event: { ticket: { id: atKiosk.event.ticket.id } } } });
    // The appointment says it has arrived.
    const listed = await http<{ appointments: Appointment[] }>('GET', `/api/clinics/${C}/appointments?from=${Date.now() - 60 * MIN}`, { token: staffToken });
    expect(listed.json.appointments.find((a) => a.id === 'arr-2')).toMatchObject({ ticket: atKiosk.event.ticket.id });
  });
});

/** An appointment already under way (PUT refuses past times): written as the appointments domain writes it. */
async function redisPut(id: string, startsAt: number, dept: string): Promise<string> {
  const { Redis } = await import('ioredis');
  const client = new Redis(redis.url);
  const code = String(2_000_000_000 + Math.floor(Math.random() * 999_999_999));
  const record = { id, startsAt, dept, room: null, code, ticket: null, arrivedAt: null };
  await client.multi().set(`ch:{${C}}:appt:${id}`, JSON.stringify(record)).set(`ch:{${C}}:appt-code:${code}`, id).zadd(`ch:{${C}}:appts`, startsAt, id).exec();
  client.disconnect();
  return code;
}
