import { createServer, type Server as HttpServer } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import { Server as SocketServer } from 'socket.io';
import type { Socket as ClientSocket } from 'socket.io-client';
import webPush from 'web-push';
import { NOTIFY_NAMESPACE, type InAppNotice, type WebPushMessage } from '@clinic-hub/protocol';
import { startWorkerStatusServer, type WorkerStatusServer } from '@clinic-hub/platform/status-server';
import { TokenIssuer } from '@clinic-hub/platform/token-issuer';
import { TEST_SECRET } from '@clinic-hub/test-kit/hub-node';
import { TEST_CLINIC, startNotifyFixture, waitFor, type NotifyFixture } from '@clinic-hub/test-kit/notify-fixture';
import { LocalPushService } from '@clinic-hub/test-kit/providers/local-push-service';
import { socketAuth } from '../src/auth/socket-auth.js';
import { NotificationService } from '../src/notify/notification-service.js';
import { startNotificationWorker, type RunningNotificationWorker } from '../src/notify/notification-worker.js';
import { registerNotifyHandlers } from '../src/notify/notify-handlers.js';
import { startNotifyLive } from '../src/notify/notify-live.js';
import { sendRecordKey } from '../src/notify/notify-keys.js';
import { PatientPageStore } from '../src/notify/patient-page-store.js';
import { startTestAuth } from './support/auth.js';
import { connectNotify } from './support/notify-socket.js';

/**
 * In-app notices reach a patient once: in their page when it is in view,
 * by Web Push when it is not (the real `web-push` library's aes128gcm
 * encryption and VAPID signature, decrypted and verified by a local push
 * service with the subscription's own keys), else kept until the page
 * comes back.
 */
let fixture: NotifyFixture;
let push: LocalPushService;
let worker: RunningNotificationWorker;
let service: NotificationService;
let http: HttpServer;
let io: SocketServer;
let pub: Redis;
let sub: Redis;
let url: string;
let pages: PatientPageStore;
let auth: Awaited<ReturnType<typeof startTestAuth>>;
let status: WorkerStatusServer;
const tokens = new TokenIssuer(TEST_SECRET);
const vapid = webPush.generateVAPIDKeys();
let tickets = 0;

beforeAll(async () => {
  fixture = await startNotifyFixture();
  push = await new LocalPushService().start();
  const env = push.env(vapid, 'mailto:it@clinic.example.jp', ['*.push.apple.com']);
  worker = await startNotificationWorker(fixture.config(env), { clinics: fixture.clinics, watchQueues: false, webPushAgent: push.agent! });
  service = new NotificationService({ config: fixture.config(env), clinics: fixture.clinics });
  pub = new Redis(fixture.redisUrl);
  sub = new Redis(fixture.redisUrl);
  pages = new PatientPageStore(pub);
  http = createServer();
  io = new SocketServer(http, { adapter: createAdapter(pub, sub), transports: ['websocket'] });
  auth = await startTestAuth(fixture.redisUrl, fixture.clinics);
  const nsp = io.of(NOTIFY_NAMESPACE);
  nsp.use(socketAuth(auth.authenticator));
  nsp.on('connection', (socket) => auth.sessions.attach(socket));
  registerNotifyHandlers(nsp, { logger: auth.logger, metrics: auth.metrics, guards: auth.guards, maxPayloadBytes: 16_384, pages });
  await startNotifyLive(sub, nsp, { clinicIds: [TEST_CLINIC], pages, logger: auth.logger });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const address = http.address();
  url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  status = await startWorkerStatusServer({ host: '127.0.0.1', port: 0, registry: worker.metrics.registry, status: worker.status });
});
afterAll(async () => {
  await status?.close();
  auth?.close();
  if (io) await new Promise<void>((resolve) => io.close(() => resolve()));
  pub?.disconnect();
  sub?.disconnect();
  await service?.close();
  await worker?.close();
  await push?.stop();
  await fixture?.stop();
});

/** A waiting ticket whose notices go to its page (in-app contact), or with `phone`, a patient who gave a phone number. */
async function newTicket(phone?: string): Promise<{ id: string; number: string; dept: string }> {
  const id = `tk-push-${++tickets}`;
  const checked = await auth.queue.checkin(TEST_CLINIC, { dept: 'gp', priority: 'normal' }, id);
  if (!checked.ok) throw new Error(checked.error.code);
  const contact = phone ? ({ channel: 'sms', address: phone, locale: 'en' } as const) : ({ channel: 'in_app', address: `patient:${id}`, locale: 'en' } as const);
  const stored = await service.setTicketContact(TEST_CLINIC, id, contact);
  if (!stored.ok) throw new Error(stored.error.code);
  return { id, number: checked.event.ticket.number, dept: 'gp' };
}

async function openPage(ticket: string, visible: boolean | null): Promise<{ socket: ClientSocket; notices: InAppNotice[] }> {
  const { token } = await tokens.issue({ sub: `patient:${ticket}`, role: 'patient', clinic: TEST_CLINIC, ticket }, 600);
  const { socket, notices } = await connectNotify(url, token);
  if (visible !== null) {
    const ack = (await socket.timeout(5000).emitWithAck('notify:page', { visible })) as { ok: boolean };
    expect(ack).toEqual({ ok: true });
  }
  return { socket, notices };
}

async function sent(id: string): Promise<{ outcome: string; channel?: string; providerId?: string }> {
  return waitFor(async () => {
    const job = await worker.service.queue.getJob(id);
    return job && (await job.getState()) === 'completed' ? job.returnvalue : null;
  }, `notice ${id} sent`);
}

async function notify(ticket: { id: string; number: string; dept: string }, key: string, kind: 'chat_reply' | 'consult_ready' = 'chat_reply'): Promise<string> {
  const added = await service.noticeForTicket(TEST_CLINIC, ticket, kind, key);
  if (!added.ok || !('id' in added)) throw new Error(`not enqueued: ${JSON.stringify(added)}`);
  return added.id;
}

describe('a patient whose page is closed', () => {
  it('gets the notice by Web Push, encrypted to the subscription and signed with VAPID, and not again when the page opens', async () => {
    const ticket = await newTicket();
    const { id: pushId, subscription } = push.subscribe();
    await pages.setPushSubscription(TEST_CLINIC, ticket.id, subscription, 3600);
    const id = await notify(ticket, 'm1');
    expect(await sent(id)).toEqual({ outcome: 'sent', channel: 'in_app', providerId: `web_push:${id}` });
    const [received] = push.receivedBy(pushId);
    expect(push.refused).toEqual([]);
    expect(received!.vapid).toMatchObject({ aud: push.origin, sub: 'mailto:it@clinic.example.jp', publicKey: vapid.publicKey });
    expect(received!.urgency).toBe('normal');
    const message = JSON.parse(received!.plaintext) as WebPushMessage;
    expect(message).toMatchObject({ id, kind: 'chat_reply', clinic: TEST_CLINIC, url: '/ticket', ticketNumber: ticket.number, locale: 'en' });
    expect(message.title).toBe('Test Clinic: new message from the clinic');
    // Delivered: the page that opens later is not given it again.
    const page = await openPage(ticket.id, true);
    try {
      await new Promise((r) => setTimeout(r, 300));
      expect(page.notices).toEqual([]);
      expect(await pages.inbox(TEST_CLINIC, `patient:${ticket.id}`)).toEqual([]);
    } finally {
      page.socket.close();
    }
  });

  it('without a push subscription, keeps the notice until the page comes back; once seen it is not offered again', async () => {
    const ticket = await newTicket();
    const id = await notify(ticket, 'm1');
    expect(await sent(id)).toMatchObject({ outcome: 'sent', providerId: `in_app:${id}` });
    const first = await openPage(ticket.id, true);
    const notice = await waitFor(() => first.notices[0], 'the kept notice');
    expect(notice).toMatchObject({ id, kind: 'chat_reply', ticketNumber: ticket.number });
    // Not acknowledged: a page that reloads is offered it again.
    first.socket.close();
    const second = await openPage(ticket.id, true);
    await waitFor(() => second.notices[0], 'the notice again');
    expect(await second.socket.timeout(5000).emitWithAck('notify:seen', { ids: [id] })).toEqual({ ok: true, removed: 1 });
    second.socket.close();
    const third = await openPage(ticket.id, true);
    await new Promise((r) => setTimeout(r, 300));
    expect(third.notices).toEqual([]);
    third.socket.close();
  });

  it('a subscription the push service has dropped (410) is forgotten, and the notice waits for the page', async () => {
    const ticket = await newTicket();
    const { id: pushId, subscription } = push.subscribe();
    await pages.setPushSubscription(TEST_CLINIC, ticket.id, subscription, 3600);
    push.expire(pushId, 410);
    const id = await notify(ticket, 'm1');
    expect(await sent(id)).toMatchObject({ providerId: `in_app:${id}` });
    expect(push.refused).toContainEqual({ subscription: pushId, status: 410, reason: 'subscription expired' });
    expect(await pages.pushSubscription(TEST_CLINIC, ticket.id)).toBeNull();
    expect((await pages.inbox(TEST_CLINIC, `patient:${ticket.id}`)).map((n) => n.id)).toEqual([id]);
  });
});

describe('a patient whose page is open', () => {
  it('gets the notice in the page and not by Web Push', async () => {
    const ticket = await newTicket();
    const { id: pushId, subscription } = push.subscribe();
    await pages.setPushSubscription(TEST_CLINIC, ticket.id, subscription, 3600);
    const page = await openPage(ticket.id, true);
    try {
      const id = await notify(ticket, 'm1');
      const notice = await waitFor(() => page.notices[0], 'the in-page notice');
      expect(notice).toMatchObject({ id, kind: 'chat_reply' });
      expect(await sent(id)).toMatchObject({ providerId: `in_app:${id}` });
      expect(push.receivedBy(pushId)).toEqual([]);
    } finally {
      page.socket.close();
    }
  });

  it('out of view (another tab, the phone locked), the notice goes by Web Push', async () => {
    const ticket = await newTicket();
    const { id: pushId, subscription } = push.subscribe();
    await pages.setPushSubscription(TEST_CLINIC, ticket.id, subscription, 3600);
    const page = await openPage(ticket.id, true);
    try {
      expect(await page.socket.timeout(5000).emitWithAck('notify:page', { visible: false })).toEqual({ ok: true });
      const id = await notify(ticket, 'm1');
      expect(await sent(id)).toMatchObject({ providerId: `web_push:${id}` });
      expect(push.receivedBy(pushId)).toHaveLength(1);
    } finally {
      page.socket.close();
    }
  });

  it('the same notice enqueued twice is delivered once', async () => {
    const ticket = await newTicket();
    const { id: pushId, subscription } = push.subscribe();
    await pages.setPushSubscription(TEST_CLINIC, ticket.id, subscription, 3600);
    const id = await notify(ticket, 'same');
    expect(await notify(ticket, 'same')).toBe(id);
    await sent(id);
    await new Promise((r) => setTimeout(r, 300));
    expect(push.receivedBy(pushId)).toHaveLength(1);
  });
});

describe('subscriptions', () => {
  it('go only to the allowed push services', async () => {
    const { endpointAllowed } = await import('../src/notify/channels/web-push-sender.js');
    const hosts = ['fcm.googleapis.com', '*.push.apple.com'];
    expect(endpointAllowed('https://fcm.googleapis.com/fcm/send/abc', hosts)).toBe(true);
    expect(endpointAllowed('https://web.push.apple.com/QO…', hosts)).toBe(true);
    expect(endpointAllowed('https://push.apple.com.evil.example/x', hosts)).toBe(false);
    expect(endpointAllowed('http://fcm.googleapis.com/fcm/send/abc', hosts)).toBe(false);
    expect(endpointAllowed('https://169.254.169.254/latest/meta-data', hosts)).toBe(false);
  });
});

describe('a patient who gave a phone number: each notice goes one way (page in view, else Web Push, else SMS)', () => {
  let phones = 0;
  const newPhone = () => `+8190${String(5_000_000 + ++phones).padStart(8, '0')}`;
  const smsTo = (phone: string) => fixture.sms.accepted.filter((m) => m.to === phone);

  it('with a push subscription and the page closed: by Web Push, not by SMS', async () => {
    const phone = newPhone();
    const ticket = await newTicket(phone);
    const { id: pushId, subscription } = push.subscribe();
    await pages.setPushSubscription(TEST_CLINIC, ticket.id, subscription, 3600);
    const id = await notify(ticket, 'ready', 'consult_ready');
    expect(await sent(id)).toEqual({ outcome: 'sent', channel: 'in_app', providerId: `web_push:${id}` });
    const [received] = push.receivedBy(pushId);
    expect(received!.urgency).toBe('high');
    expect(JSON.parse(received!.plaintext)).toMatchObject({ id, kind: 'consult_ready', ticketNumber: ticket.number });
    await new Promise((r) => setTimeout(r, 300));
    expect(smsTo(phone)).toEqual([]);
    // Pushed: not kept for the page either.
    expect(await pages.inbox(TEST_CLINIC, `patient:${ticket.id}`)).toEqual([]);
  });

  it('with the page in view: in the page only', async () => {
    const phone = newPhone();
    const ticket = await newTicket(phone);
    const { id: pushId, subscription } = push.subscribe();
    await pages.setPushSubscription(TEST_CLINIC, ticket.id, subscription, 3600);
    const page = await openPage(ticket.id, true);
    try {
      const id = await notify(ticket, 'ready', 'consult_ready');
      expect(await waitFor(() => page.notices[0], 'the in-page notice')).toMatchObject({ id, kind: 'consult_ready' });
      expect(await sent(id)).toEqual({ outcome: 'sent', channel: 'in_app', providerId: `in_app:${id}` });
      await new Promise((r) => setTimeout(r, 300));
      expect(smsTo(phone)).toEqual([]);
      expect(push.receivedBy(pushId)).toEqual([]);
    } finally {
      page.socket.close();
    }
  });

  it('without a subscription, or when the push fails or the subscription is gone: by SMS, once', async () => {
    const plain = newPhone();
    const plainTicket = await newTicket(plain);
    const id = await notify(plainTicket, 'ready', 'consult_ready');
    expect(await sent(id)).toMatchObject({ outcome: 'sent', channel: 'sms' });
    expect(smsTo(plain)).toHaveLength(1);
    expect(await pages.inbox(TEST_CLINIC, `patient:${plainTicket.id}`)).toEqual([]);

    for (const status of [410, 503]) {
      const phone = newPhone();
      const ticket = await newTicket(phone);
      const { id: pushId, subscription } = push.subscribe();
      await pages.setPushSubscription(TEST_CLINIC, ticket.id, subscription, 3600);
      push.expire(pushId, status);
      const noticeId = await notify(ticket, 'ready', 'consult_ready');
      expect(await sent(noticeId)).toMatchObject({ outcome: 'sent', channel: 'sms' });
      expect(push.refused).toContainEqual({ subscription: pushId, status, reason: 'subscription expired' });
      expect(smsTo(phone)).toHaveLength(1);
      expect(smsTo(phone)[0]!.body).toContain(ticket.number);
      // 410: forgotten; 503: kept for the next notice.
      expect((await pages.pushSubscription(TEST_CLINIC, ticket.id)) === null).toBe(status === 410);
    }
  });

  it('a retry after an attempt that chose SMS sends by SMS again (same idempotency key), not by Web Push too', async () => {
    const phone = newPhone();
    const ticket = await newTicket(phone);
    const { id: pushId, subscription } = push.subscribe();
    await pages.setPushSubscription(TEST_CLINIC, ticket.id, subscription, 3600);
    const id = NotificationService.jobId(TEST_CLINIC, `ticket.${ticket.id}.consult_ready.retry`);
    // What a worker that died calling the SMS provider leaves behind.
    await pub.set(sendRecordKey(id), JSON.stringify({ state: 'sending', attempt: 1, at: Date.now(), via: 'sms' }), 'EX', 600);
    expect(await notify(ticket, 'retry', 'consult_ready')).toBe(id);
    expect(await sent(id)).toMatchObject({ outcome: 'sent', channel: 'sms' });
    expect(smsTo(phone)).toHaveLength(1);
    expect(push.receivedBy(pushId)).toEqual([]);
  });

  it('a chat reply is never sent by SMS: it waits for the page', async () => {
    const phone = newPhone();
    const ticket = await newTicket(phone);
    const id = await notify(ticket, 'm1');
    expect(await sent(id)).toEqual({ outcome: 'sent', channel: 'in_app', providerId: `in_app:${id}` });
    expect(smsTo(phone)).toEqual([]);
    expect((await pages.inbox(TEST_CLINIC, `patient:${ticket.id}`)).map((n) => n.id)).toEqual([id]);
  });
});

describe("the worker's /metrics", () => {
  const scrape = async () => (await fetch(`http://127.0.0.1:${status.port}/metrics`)).text();
  /** The value of the one series of `name` with this label. */
  const value = (text: string, name: string, label: string) => {
    const lines = text.split('\n').filter((l) => l.startsWith(`${name}{`) && l.includes(label));
    if (lines.length !== 1) throw new Error(`${lines.length} series ${name} with ${label} in /metrics`);
    return Number(lines[0]!.slice(lines[0]!.lastIndexOf(' ') + 1));
  };
  const pushes = (text: string, outcome: string) => value(text, 'clinic_notify_web_push_total', `outcome="${outcome}"`);
  const inbox = (text: string) => value(text, 'clinic_notify_inbox_notices', `clinic="${TEST_CLINIC}"`);

  it('count Web Push messages sent, failed and gone, and the notices waiting in inboxes', async () => {
    const before = await scrape();
    const ok = await newTicket();
    const okSub = push.subscribe();
    await pages.setPushSubscription(TEST_CLINIC, ok.id, okSub.subscription, 3600);
    await sent(await notify(ok, 'metrics'));
    const failing = await newTicket();
    const failingSub = push.subscribe();
    await pages.setPushSubscription(TEST_CLINIC, failing.id, failingSub.subscription, 3600);
    push.expire(failingSub.id, 500);
    await sent(await notify(failing, 'metrics'));
    const gone = await newTicket();
    const goneSub = push.subscribe();
    await pages.setPushSubscription(TEST_CLINIC, gone.id, goneSub.subscription, 3600);
    push.expire(goneSub.id, 404);
    await sent(await notify(gone, 'metrics'));
    const kept = await newTicket();
    await sent(await notify(kept, 'metrics'));

    const after = await scrape();
    expect(pushes(after, 'sent') - pushes(before, 'sent')).toBe(1);
    expect(pushes(after, 'failed') - pushes(before, 'failed')).toBe(1);
    expect(pushes(after, 'gone') - pushes(before, 'gone')).toBe(1);
    // The failed, the gone and the kept notice wait for their pages.
    expect(inbox(after) - inbox(before)).toBe(3);
    expect(after).toContain('# TYPE clinic_notify_inbox_notices gauge');

    const page = await openPage(kept.id, true);
    try {
      const [notice] = await waitFor(() => (page.notices.length > 0 ? page.notices : null), 'the kept notice');
      await page.socket.timeout(5000).emitWithAck('notify:seen', { ids: [notice!.id] });
      expect(inbox(await scrape()) - inbox(before)).toBe(2);
    } finally {
      page.socket.close();
    }
  });
});
