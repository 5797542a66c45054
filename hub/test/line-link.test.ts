import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PatientNoticeSettings, SelfCheckinResult } from '@clinic-hub/protocol';
import { startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { TEST_CLINIC, lineUserId, startNotifyFixture, waitFor, type NotifyFixture } from '@clinic-hub/test-kit/notify-fixture';
import { connectQueue, expectOk, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import { startNotificationWorker, type RunningNotificationWorker } from '../src/notify/notification-worker.js';

/**
 * LINE linking through a real hub process: the kiosk's check-in gives a
 * one-time link to the clinic's official account; the message LINE then
 * posts to the hub's webhook (signed with the channel secret, as LINE signs
 * it; checked by @line/bot-sdk's middleware) makes the sender's LINE
 * user id the ticket's contact, and the ticket's notices go by LINE
 * (@line/bot-sdk's MessagingApiClient, against a local server speaking
 * LINE's Messaging API). "解除" or blocking the account puts them back on
 * the page.
 */
const CHANNEL_SECRET = 'test-line-channel-secret-0123456789';
let fixture: NotifyFixture;
let hub: HubNodeProcess;
let worker: RunningNotificationWorker;
let staff: QueueSocket;
let kioskToken: string;

beforeAll(async () => {
  fixture = await startNotifyFixture();
  const lineEnv = { NOTIFY_LINE_CHANNEL_SECRET: CHANNEL_SECRET, NOTIFY_LINE_BASIC_ID: '@123abcde' };
  hub = await startHubProcess({ redisUrl: fixture.redisUrl, nodeId: 'line-link', env: { ...fixture.env(lineEnv), HUB_TRUSTED_PROXIES: '127.0.0.1' } });
  worker = await startNotificationWorker(fixture.config(lineEnv), { clinics: fixture.clinics });
  staff = await connectQueue(hub.url, await tokenFor('staff'));
  kioskToken = await tokenFor('kiosk', TEST_CLINIC, { sub: 'kiosk:entrance' });
});
afterAll(async () => {
  staff?.close();
  await worker?.close();
  await hub?.stop();
  await fixture?.stop();
});

async function http<T = any>(method: string, path: string, options: { token?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {}): Promise<{ status: number; json: T }> {
  const res = await fetch(`${hub.url}${path}`, {
    method,
    headers: { ...(options.token ? { authorization: `Bearer ${options.token}` } : {}), 'content-type': 'application/json', ...options.headers },
    ...(options.raw !== undefined ? { body: options.raw } : options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  });
  return { status: res.status, json: (await res.json()) as T };
}

/** A webhook request as LINE sends it: JSON events, x-line-signature = base64 HMAC-SHA256 of the body with the channel secret. */
function lineWebhook(events: object[], secret = CHANNEL_SECRET) {
  const raw = JSON.stringify({ destination: lineUserId(999), events });
  const signature = createHmac('sha256', secret).update(raw).digest('base64');
  return http('POST', '/api/line/webhook', { raw, headers: { 'x-line-signature': signature } });
}

const common = (userId: string) => ({
  mode: 'active',
  timestamp: Date.now(),
  source: { type: 'user', userId },
  webhookEventId: randomUUID().replace(/-/g, '').toUpperCase().slice(0, 26),
  deliveryContext: { isRedelivery: false },
});
const textMessage = (userId: string, text: string) => ({
  type: 'message',
  replyToken: randomBytes(16).toString('hex'),
  ...common(userId),
  message: { id: String(Date.now()), type: 'text', quoteToken: randomBytes(8).toString('hex'), text },
});

async function kioskCheckin(): Promise<SelfCheckinResult> {
  const res = await http<SelfCheckinResult>('POST', `/api/clinics/${TEST_CLINIC}/self-checkin`, { token: kioskToken, body: { dept: 'peds', language: 'ja' } });
  expect(res.status).toBe(201);
  return res.json;
}

/** What the patient's phone sends: the text LINE prefills from the link. */
const prefilled = (url: string) => decodeURIComponent(url.slice(url.indexOf('?') + 1));

describe('linking LINE to a ticket', () => {
  it('the kiosk gives a one-time link; the message it opens links the ticket, and the call goes by LINE', async () => {
    const checkin = await kioskCheckin();
    expect(checkin.line).toMatchObject({ code: expect.stringMatching(/^[A-Z2-9]{10}$/) });
    expect(checkin.line!.url).toMatch(/^https:\/\/line\.me\/R\/oaMessage\/%40123abcde\/\?/);
    expect(prefilled(checkin.line!.url)).toBe(`通知を受け取る ${checkin.line!.code}`);
    const userId = lineUserId(1);
    expect(await lineWebhook([textMessage(userId, prefilled(checkin.line!.url))])).toEqual({ status: 200, json: {} });
    const reply = await waitFor(() => fixture.line.replies.at(-1), 'the reply');
    expect(reply.messages[0]!.text).toContain(`受付番号 ${checkin.event.ticket.number}`);
    const settings = await http<PatientNoticeSettings>('GET', '/api/patient/notices', { token: checkin.patientToken });
    expect(settings.json).toMatchObject({ channel: 'line', line: true });
    // Audited, as a contact given at check-in is.
    const audit = await http('GET', `/api/clinics/${TEST_CLINIC}/audit`, { token: await tokenFor('admin') });
    expect(JSON.stringify(audit.json)).toContain('notify.line.link');

    // The code is spent: sent again (or by someone who saw it), it links nothing.
    expect((await lineWebhook([textMessage(lineUserId(2), prefilled(checkin.line!.url))])).status).toBe(200);
    expect((await waitFor(() => (fixture.line.replies.length >= 2 ? fixture.line.replies.at(-1) : null), 'the refusal')).messages[0]!.text).toContain('このコードは使えません');

    const called = expectOk(await request(staff, 'queue:call-next', { dept: 'peds', room: 'r3' }));
    expect(called.event.ticket.id).toBe(checkin.event.ticket.id);
    const pushed = await waitFor(() => fixture.line.accepted.find((p) => p.to === userId), 'the LINE call notice');
    expect(pushed.messages[0]!.text).toContain(`受付番号 ${checkin.event.ticket.number} の方`);
    expect(fixture.line.accepted.filter((p) => p.to === lineUserId(2))).toEqual([]);
    expectOk(await request(staff, 'queue:done', { ticketId: checkin.event.ticket.id }));
  });

  it('"解除" puts the notices back on the page; blocking the account does too', async () => {
    const first = await kioskCheckin();
    const second = await kioskCheckin();
    const userId = lineUserId(3);
    await lineWebhook([textMessage(userId, prefilled(first.line!.url))]);
    await lineWebhook([textMessage(userId, prefilled(second.line!.url))]);
    const channel = async (token: string) => (await http<PatientNoticeSettings>('GET', '/api/patient/notices', { token })).json.channel;
    expect(await channel(first.patientToken)).toBe('line');
    expect(await channel(second.patientToken)).toBe('line');
    await lineWebhook([textMessage(userId, '解除')]);
    expect(await channel(first.patientToken)).toBe('in_app');
    expect(await channel(second.patientToken)).toBe('in_app');

    const third = await kioskCheckin();
    await lineWebhook([textMessage(userId, prefilled(third.line!.url))]);
    expect(await channel(third.patientToken)).toBe('line');
    await lineWebhook([{ type: 'unfollow', ...common(userId) }]);
    expect(await channel(third.patientToken)).toBe('in_app');

    // From the ticket page: a fresh link, and unlinking by HTTP.
    const link = await http('POST', '/api/patient/line-link', { token: first.patientToken });
    expect(link.status).toBe(201);
    await lineWebhook([textMessage(userId, prefilled(link.json.url))]);
    expect(await channel(first.patientToken)).toBe('line');
    expect(await http('DELETE', '/api/patient/contact', { token: first.patientToken })).toMatchObject({ status: 200, json: { channel: 'in_app', was: 'line' } });
    expect(await channel(first.patientToken)).toBe('in_app');
    for (const c of [first, second, third]) expectOk(await request(staff, 'queue:cancel', { ticketId: c.event.ticket.id }));
  });

  it('refuses a webhook without LINE\'s signature, and answers a follow with how to link', async () => {
    const checkin = await kioskCheckin();
    const forged = await lineWebhook([textMessage(lineUserId(4), prefilled(checkin.line!.url))], 'not-the-secret');
    expect(forged).toMatchObject({ status: 401, json: { error: { code: 'NOTIFY_LINE_SIGNATURE_INVALID' } } });
    expect((await http('POST', '/api/line/webhook', { raw: '{"events":[]}' })).status).toBe(401);
    // Signed but not JSON: refused, not handled.
    const notJson = 'events: none';
    const signed = await http('POST', '/api/line/webhook', { raw: notJson, headers: { 'x-line-signature': createHmac('sha256', CHANNEL_SECRET).update(notJson).digest('base64') } });
    expect(signed).toMatchObject({ status: 400, json: { error: { code: 'INVALID_PAYLOAD' } } });
    expect((await http<PatientNoticeSettings>('GET', '/api/patient/notices', { token: checkin.patientToken })).json.channel).toBe('in_app');
    const before = fixture.line.replies.length;
    expect((await lineWebhook([{ type: 'follow', replyToken: randomBytes(16).toString('hex'), ...common(lineUserId(4)), follow: { isUnblocked: false } }])).status).toBe(200);
    expect((await waitFor(() => fixture.line.replies[before], 'the welcome')).messages[0]!.text).toContain('友だち追加ありがとうございます');
    // LINE's verification request (no events) is answered 200.
    expect((await lineWebhook([])).status).toBe(200);
    // Only patients use the patient routes.
    expect((await http('GET', '/api/patient/notices', { token: kioskToken })).status).toBe(403);
    expectOk(await request(staff, 'queue:cancel', { ticketId: checkin.event.ticket.id }));
  });
});

describe("linking LINE to an appointment's reminders", () => {
  const phone = '+819011112222';
  const smsTo = (to: string) => fixture.sms.accepted.filter((m) => m.to === to);
  async function putAppointment(id: string, startsAt: number, address = phone) {
    const res = await http('PUT', `/api/clinics/${TEST_CLINIC}/appointments/${id}`, {
      token: await tokenFor('staff'),
      body: { startsAt, dept: 'gp', contact: { channel: 'sms', address, locale: 'ja' } },
    });
    expect(res.status).toBe(200);
    return res.json as { reminders: { id: string; kind: string; sendAt: number }[] };
  }
  const promote = async (jobId: string) => (await worker.service.queue.getJob(jobId))!.promote();
  const lineLinkIn = (text: string) => /https:\/\/line\.me\/R\/oaMessage\/\S+/.exec(text)?.[0];

  it('the SMS reminder carries a one-time LINE link; linked, the next reminder goes by LINE, also after the appointment moves', async () => {
    const startsAt = Date.now() + 24 * 3600_000 + 1500;
    const put = await putAppointment('appt-line-1', startsAt);
    expect(put.reminders.map((r) => r.kind)).toEqual(['reminder_24h', 'reminder_1h']);
    const sms = await waitFor(() => smsTo(phone)[0], 'the 24 h reminder by SMS', 20_000);
    const url = lineLinkIn(sms.body);
    expect(url, sms.body).toMatch(/^https:\/\/line\.me\/R\/oaMessage\/%40123abcde\/\?/);
    // In an SMS the message is the code alone (every percent-encoded character counts).
    expect(prefilled(url!)).toMatch(/^[A-Z2-9]{10}$/);

    const userId = lineUserId(20);
    const before = fixture.line.replies.length;
    expect(await lineWebhook([textMessage(userId, prefilled(url!))])).toEqual({ status: 200, json: {} });
    const reply = await waitFor(() => fixture.line.replies[before], 'the reply');
    expect(reply.messages[0]!.text).toMatch(/^\d+月\d+日\(.\) \d\d:\d\d のご予約のお知らせをこのLINEにお送りします/);
    const audit = await http('GET', `/api/clinics/${TEST_CLINIC}/audit`, { token: await tokenFor('admin') });
    expect(JSON.stringify(audit.json)).toContain('appointment:appt-line-1');

    await promote(put.reminders[1]!.id);
    const byLine = await waitFor(() => fixture.line.accepted.find((p) => p.to === userId), 'the 1 h reminder by LINE', 20_000);
    expect(byLine.messages[0]!.text).toContain('まもなくご予約の時間です');
    // Linked already: no LINE link in a LINE message, and no second SMS.
    expect(byLine.messages[0]!.text).not.toContain('oaMessage');
    expect(smsTo(phone)).toHaveLength(1);

    // The booking system moves the appointment, giving the same phone number: the reminders stay on LINE.
    const moved = await putAppointment('appt-line-1', startsAt + 3600_000);
    await promote(moved.reminders[0]!.id);
    await waitFor(() => fixture.line.accepted.filter((p) => p.to === userId).length === 2, 'the moved reminder by LINE', 20_000);
    expect(smsTo(phone)).toHaveLength(1);
  });

  it('"解除" gives the reminders back to the phone number; a spent code links nothing', async () => {
    const other = '+819033334444';
    const startsAt = Date.now() + 24 * 3600_000 + 1500;
    const put = await putAppointment('appt-line-2', startsAt, other);
    const sms = await waitFor(() => smsTo(other)[0], 'the 24 h reminder by SMS', 20_000);
    const url = lineLinkIn(sms.body)!;
    const userId = lineUserId(21);
    await lineWebhook([textMessage(userId, prefilled(url))]);
    await waitFor(async () => (await worker.service.contacts.appointment(TEST_CLINIC, 'appt-line-2'))?.contact.channel === 'line', 'the link');
    // Sent again by someone else, the used code links nothing.
    const before = fixture.line.replies.length;
    await lineWebhook([textMessage(lineUserId(22), prefilled(url))]);
    expect((await waitFor(() => fixture.line.replies[before], 'the refusal')).messages[0]!.text).toContain('このコードは使えません');
    expect((await worker.service.contacts.appointment(TEST_CLINIC, 'appt-line-2'))?.contact).toMatchObject({ channel: 'line', address: userId });

    await lineWebhook([textMessage(userId, '解除')]);
    expect((await worker.service.contacts.appointment(TEST_CLINIC, 'appt-line-2'))?.contact).toMatchObject({ channel: 'sms', address: other });
    await promote(put.reminders[1]!.id);
    const second = await waitFor(() => smsTo(other)[1], 'the 1 h reminder by SMS again', 20_000);
    expect(second.body).toContain('本日');
    // It carries a fresh link (the first was used).
    expect(lineLinkIn(second.body)).toMatch(/oaMessage/);
    expect(lineLinkIn(second.body)).not.toBe(url);
    expect(fixture.line.accepted.filter((p) => p.to === userId)).toEqual([]);
    const audit = await http('GET', `/api/clinics/${TEST_CLINIC}/audit`, { token: await tokenFor('admin') });
    expect(JSON.stringify(audit.json)).toMatch(/notify\.line\.unlink[^}]*appointment:appt-line-2|appointment:appt-line-2[^}]*notify\.line\.unlink/);
  });
});
