import { createServer, type Server as HttpServer } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import { Server as SocketServer } from 'socket.io';
import type { Socket as ClientSocket } from 'socket.io-client';
import { NOTIFY_NAMESPACE, type InAppNotice, type NotifyContactInput } from '@clinic-hub/protocol';
import { socketAuth } from '../src/auth/socket-auth.js';
import { TokenIssuer } from '@clinic-hub/platform/token-issuer';
import { TEST_SECRET } from '@clinic-hub/test-kit/hub-node';
import { startTestAuth } from './support/auth.js';
import { PatientPageStore } from '../src/notify/patient-page-store.js';
import { registerNotifyHandlers } from '../src/notify/notify-handlers.js';
import { startNotifyLive } from '../src/notify/notify-live.js';
import { startNotificationWorker, type RunningNotificationWorker } from '../src/notify/notification-worker.js';
import { NotificationService } from '../src/notify/notification-service.js';
import {
  LINE_TOKEN,
  MAIL_FROM,
  SMS_FROM,
  SMTP_USER,
  TEST_CLINIC,
  lineUserId,
  startNotifyFixture,
  waitFor,
  type NotifyFixture,
} from '@clinic-hub/test-kit/notify-fixture';
import { connectNotify } from './support/notify-socket.js';

let fixture: NotifyFixture;
let worker: RunningNotificationWorker;
let service: NotificationService;
let appointments = 0;

beforeAll(async () => {
  fixture = await startNotifyFixture();
  worker = await startNotificationWorker(fixture.config(), { clinics: fixture.clinics, watchQueues: false });
  service = new NotificationService({ config: fixture.config(), clinics: fixture.clinics });
});
afterAll(async () => {
  await service?.close();
  await worker?.close();
  await fixture?.stop();
});

/** A 1-hour reminder for an appointment just over an hour away: due at once. */
async function remindSoon(contact: NotifyContactInput): Promise<{ id: string; startsAt: number }> {
  const startsAt = Date.now() + 3600_000 + 100;
  const result = await service.scheduleAppointmentReminders({
    clinic: TEST_CLINIC,
    appointmentId: `appt-${++appointments}`,
    startsAt,
    contact,
    dept: 'gp',
    kinds: ['reminder_1h'],
  });
  if (!result.ok) throw new Error(result.error.code);
  return { id: result.reminders[0]!.id, startsAt };
}

const tokyoTime = (at: number) =>
  new Intl.DateTimeFormat('ja-JP', { timeZone: 'Asia/Tokyo', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(at);

async function completed(id: string) {
  return waitFor(async () => {
    if ((await service.queue.getJobState(id)) !== 'completed') return null;
    return service.queue.getJob(id);
  }, `job ${id} to complete`);
}

describe('e-mail over SMTP (nodemailer → smtp-server)', () => {
  it('delivers the Japanese reminder to the address, authenticated, with the clinic as sender', async () => {
    const { id, startsAt } = await remindSoon({ channel: 'email', address: 'hanako@example.jp', locale: 'ja' });
    const mail = await waitFor(() => fixture.smtp.received[0], 'the e-mail');
    expect(mail.envelopeTo).toEqual(['hanako@example.jp']);
    expect(mail.user).toBe(SMTP_USER);
    expect(mail.parsed.from?.text).toContain('noreply@clinic.example.jp');
    expect(mail.parsed.from?.value[0]?.name).toBe(MAIL_FROM.split(' <')[0]);
    expect(mail.parsed.subject).toBe('【テストクリニック】まもなくご予約の時間です');
    expect(mail.parsed.text).toContain(`本日 ${tokyoTime(startsAt)} にテストクリニック（内科）のご予約があります。`);
    expect(mail.parsed.text).toContain('このメッセージは送信専用です');
    expect(mail.parsed.messageId).toMatch(/^<[0-9a-f-]{36}@clinic\.example\.jp>$/);
    const job = await completed(id);
    expect(job.returnvalue).toMatchObject({ outcome: 'sent', channel: 'email' });
  });
});

describe('LINE Messaging API push (@line/bot-sdk → local LINE API)', () => {
  it('pushes a text message to the user with the channel token and a retry key', async () => {
    const to = lineUserId(1);
    const { id } = await remindSoon({ channel: 'line', address: to, locale: 'en' });
    const push = await waitFor(() => fixture.line.accepted[0], 'the LINE push');
    expect(push.to).toBe(to);
    expect(push.messages).toHaveLength(1);
    expect(push.messages[0]!.type).toBe('text');
    expect(push.messages[0]!.text).toContain('Test Clinic: your appointment is soon');
    expect(push.retryKey).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const request = fixture.line.requests.at(-1)!;
    expect(request.headers.authorization).toBe(`Bearer ${LINE_TOKEN}`);
    expect(request.headers['user-agent']).toMatch(/^@line\/bot-sdk\/10\./);
    const job = await completed(id);
    expect(job.returnvalue).toEqual({ outcome: 'sent', channel: 'line', providerId: push.sentMessages[0]!.id });
  });
});

describe('SMS (Twilio-style REST API)', () => {
  it('posts To, From and Body with basic auth and an idempotency key', async () => {
    const { id } = await remindSoon({ channel: 'sms', address: '+819012345678', locale: 'ja' });
    const sms = await waitFor(() => fixture.sms.accepted[0], 'the SMS');
    expect(sms.to).toBe('+819012345678');
    expect(sms.from).toBe(SMS_FROM);
    expect(sms.body).toMatch(/^【テストクリニック】本日 \d\d:\d\d にご予約があります。$/);
    expect(sms.idempotencyKey).toMatch(/^[0-9a-f-]{36}$/);
    const job = await completed(id);
    expect(job.returnvalue).toEqual({ outcome: 'sent', channel: 'sms', providerId: sms.sid });
  });
});

describe('in-app (the clinic\'s notify channel through Redis, to Socket.IO)', () => {
  let http: HttpServer;
  let io: SocketServer;
  let pub: Redis;
  let sub: Redis;
  let url: string;
  let auth: Awaited<ReturnType<typeof startTestAuth>>;
  const tokens = new TokenIssuer(TEST_SECRET);

  beforeAll(async () => {
    pub = new Redis(fixture.redisUrl);
    sub = new Redis(fixture.redisUrl);
    http = createServer();
    io = new SocketServer(http, { adapter: createAdapter(pub, sub), transports: ['websocket'] });
    auth = await startTestAuth(fixture.redisUrl, fixture.clinics);
    // A patient's token works while their ticket is in the queue.
    for (const ticketId of ['tk-inapp-1', 'tk-inapp-2']) await auth.queue.checkin(TEST_CLINIC, { dept: 'gp', priority: 'normal' }, ticketId);
    const nsp = io.of(NOTIFY_NAMESPACE);
    nsp.use(socketAuth(auth.authenticator));
    nsp.on('connection', (socket) => auth.sessions.attach(socket));
    const pages = new PatientPageStore(pub);
    registerNotifyHandlers(nsp, { logger: auth.logger, metrics: auth.metrics, guards: auth.guards, maxPayloadBytes: 16_384, pages });
    // As the hub: the clinic's notify channel (the worker SPUBLISHes there) followed, notices emitted to the user's room.
    await startNotifyLive(sub, nsp, { clinicIds: [TEST_CLINIC], pages, logger: auth.logger });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const address = http.address();
    url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  });
  afterAll(async () => {
    auth?.close();
    await new Promise<void>((resolve) => io.close(() => resolve()));
    pub.disconnect();
    sub.disconnect();
  });

  async function connectAs(sub: string, ticket?: string): Promise<{ socket: ClientSocket; notices: InAppNotice[] }> {
    const { token } = await tokens.issue({ sub, role: ticket ? 'patient' : 'staff', clinic: TEST_CLINIC, ...(ticket ? { ticket } : {}) }, 600);
    return connectNotify(url, token);
  }

  it("reaches the patient's own socket and nobody else's", async () => {
    const patient = await connectAs('patient:tk-inapp-1', 'tk-inapp-1');
    const other = await connectAs('patient:tk-inapp-2', 'tk-inapp-2');
    try {
      const { id, startsAt } = await remindSoon({ channel: 'in_app', address: 'patient:tk-inapp-1', locale: 'ja' });
      const notice = await waitFor(() => patient.notices[0], 'the in-app notice');
      expect(notice).toMatchObject({ id, kind: 'reminder_1h', locale: 'ja', title: '【テストクリニック】まもなくご予約の時間です' });
      expect(notice.body).toContain(`本日 ${tokyoTime(startsAt)}`);
      const job = await completed(id);
      expect(job.returnvalue).toMatchObject({ outcome: 'sent', channel: 'in_app' });
      await new Promise((r) => setTimeout(r, 200));
      expect(patient.notices).toHaveLength(1);
      expect(other.notices).toHaveLength(0);
    } finally {
      patient.socket.close();
      other.socket.close();
    }
  });
});
