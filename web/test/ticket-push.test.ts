/**
 * The patient's ticket page as an installed web app, in real headless
 * Chromium against a real hub process, a notification worker and a local
 * push service:
 *
 * - the manifest and the service worker (/ticket-sw.js, controlling the
 *   page), and offline the page from the worker's cache with the last state
 *   it saved;
 * - push permission asked after check-in: the page's subscription is PUT to
 *   the hub, the hub's worker sends the call by Web Push to it (web-push's
 *   encryption and VAPID, decrypted by the local push service with the
 *   subscription's keys), and that very message is handed to the service
 *   worker's push handler, which shows the notification;
 * - with the page in view, the push handler gives the notice to the page and
 *   shows no notification.
 *
 * What is not real: headless Chromium cannot reach a push service, so
 * `pushManager.subscribe` is replaced (init script) by one returning a
 * subscription of the local push service, and the message the push service
 * received is delivered to the service worker through CDP
 * (ServiceWorker.deliverPushMessage), as the browser's push service
 * connection would.
 */
import { Redis } from 'ioredis';
import type { Browser, BrowserContext, CDPSession, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import webPush from 'web-push';
import type { SelfCheckinResult } from '@clinic-hub/protocol';
import { startNotificationWorker } from '@clinic-hub/hub';
import { startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { startNotifyFixture, type NotifyFixture } from '@clinic-hub/test-kit/notify-fixture';
import { LocalPushService } from '@clinic-hub/test-kit/providers/local-push-service';
import { connectQueue, expectOk, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import { collectPageProblems, launchChromium } from '@clinic-hub/test-kit/browser';
import { waitFor } from '@clinic-hub/test-kit/wait';

const C = 'testclinic';
const vapid = webPush.generateVAPIDKeys();
let fixture: NotifyFixture;
let push: LocalPushService;
let hub: HubNodeProcess;
let worker: Awaited<ReturnType<typeof startNotificationWorker>>;
let browser: Browser;
let staff: QueueSocket;
let kioskToken: string;

beforeAll(async () => {
  fixture = await startNotifyFixture();
  push = await new LocalPushService().start();
  const env = push.env(vapid, 'https://clinic.example.jp/contact');
  hub = await startHubProcess({ redisUrl: fixture.redisUrl, nodeId: 'ticket-push', env: fixture.env(env) });
  worker = await startNotificationWorker(fixture.config(env), { clinics: fixture.clinics, webPushAgent: push.agent! });
  browser = await launchChromium();
  staff = await connectQueue(hub.url, await tokenFor('staff'));
  kioskToken = await tokenFor('kiosk', C, { sub: 'kiosk:push' });
});
afterAll(async () => {
  staff?.close();
  await browser?.close();
  await worker?.close();
  await hub?.stop();
  await push?.stop();
  await fixture?.stop();
});

async function checkin(dept: string, phone?: string): Promise<SelfCheckinResult> {
  const res = await fetch(`${hub.url}/api/clinics/${C}/self-checkin`, {
    method: 'POST',
    headers: { authorization: `Bearer ${kioskToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ dept, language: 'en', ...(phone ? { phone } : {}) }),
  });
  expect(res.status).toBe(201);
  return (await res.json()) as SelfCheckinResult;
}

async function openTicket(context: BrowserContext, url: string, number: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto(url);
  await page.waitForFunction(showsLive, number);
  return page;
}

/** The service worker registrations CDP reports for this context (to deliver push messages to). */
/**
 * Lets the context's pages show notifications and answers their
 * PushManager.subscribe() with a new subscription of the local push service
 * (headless Chromium has no push service of its own); returns its id.
 */
async function stubPushSubscription(context: BrowserContext): Promise<string> {
  await context.grantPermissions(['notifications'], { origin: hub.url });
  const { id, subscription } = push.subscribe();
  await context.addInitScript(`{
    const subscription = ${JSON.stringify(subscription)};
    PushManager.prototype.subscribe = async function () { return { endpoint: subscription.endpoint, toJSON: () => subscription }; };
  }`);
  return id;
}

async function registrationOf(cdp: CDPSession): Promise<string> {
  const registrations: { registrationId: string; scopeURL: string; isDeleted: boolean }[] = [];
  cdp.on('ServiceWorker.workerRegistrationUpdated', (event) => registrations.push(...event.registrations));
  await cdp.send('ServiceWorker.enable');
  const found = await waitFor('the service worker registration', () => registrations.find((r) => r.scopeURL === `${hub.url}/` && !r.isDeleted));
  return found.registrationId;
}

/** The page's globals (the test's own tsconfig has no DOM library; the page's CSP allows no string evaluation). */
const showsNumber = (n: string) => (globalThis as any).document.getElementById('number')?.textContent === n;
const showsLive = (n: string) =>
  (globalThis as any).document.getElementById('number')?.textContent === n && (globalThis as any).document.documentElement.dataset.connection === 'live';

const notifications = (page: Page): Promise<{ title: string; body: string; tag: string }[]> =>
  page.evaluate(async () => {
    const registration = await (globalThis as any).navigator.serviceWorker.getRegistration('/');
    return (await registration.getNotifications()).map((n: any) => ({ title: n.title, body: n.body, tag: n.tag }));
  });

describe('the installed ticket page', () => {
  it('has a manifest and a service worker, and offline shows the last known state from its cache', async () => {
    const context = await browser.newContext();
    try {
      const ticket = await checkin('gp');
      const page = await openTicket(context, ticket.patientUrl, ticket.event.ticket.number);
      const problems = collectPageProblems(page);
      const manifest = await page.evaluate(async () => {
        const res = await fetch((globalThis as any).document.querySelector('link[rel=manifest]').href);
        return { type: res.headers.get('content-type'), body: (await res.json()) as unknown };
      });
      expect(manifest.type).toBe('application/manifest+json');
      expect(manifest.body).toMatchObject({ start_url: '/ticket', scope: '/', display: 'standalone', icons: [{ src: '/favicon.svg' }] });
      await page.waitForFunction(() => (globalThis as any).navigator.serviceWorker.controller?.scriptURL.endsWith('/ticket-sw.js') === true, undefined, { timeout: 20_000 });
      const cached = await page.evaluate(async () => {
        const { caches } = globalThis as any;
        return (await caches.match('/ticket')) !== undefined && (await caches.match('/assets/ticket.js')) !== undefined;
      });
      expect(cached).toBe(true);
      await page.waitForFunction((id) => (globalThis as any).localStorage.getItem(`clinic-hub.state.${id}`) !== null, ticket.event.ticket.id);

      await context.setOffline(true);
      await page.reload();
      await page.waitForFunction(showsNumber, ticket.event.ticket.number);
      expect(await page.locator('#saved-state').isVisible()).toBe(true);
      expect(await page.locator('#saved-state').textContent()).toContain('Last known (offline)');
      expect(await page.locator('#status').getAttribute('data-status')).toBe('saved');
      await context.setOffline(false);

      // The installed app starts at /ticket without a token: it opens this ticket.
      const installed = await context.newPage();
      await installed.goto(`${hub.url}/ticket`);
      await installed.waitForFunction(showsLive, ticket.event.ticket.number);
      // Offline, the page's own connection attempts fail, as they should.
      expect(problems.filter((p) => !/ERR_INTERNET_DISCONNECTED|Failed to load resource|WebSocket|xhr poll error/i.test(p))).toEqual([]);
      expectOk(await request(staff, 'queue:cancel', { ticketId: ticket.event.ticket.id }));
    } finally {
      await context.close();
    }
  });

  it('asks for push permission after check-in; the call, sent by Web Push, is shown by the service worker while the page is closed', async () => {
    const context = await browser.newContext();
    try {
      const pushId = await stubPushSubscription(context);
      const ticket = await checkin('peds');
      const page = await openTicket(context, ticket.patientUrl, ticket.event.ticket.number);
      await page.locator('#enable-push').click();
      await page.waitForFunction(() => (globalThis as any).document.querySelector('.push-state')?.textContent?.includes('even when this page is closed'));
      const helper = await context.newPage();
      await helper.goto(`${hub.url}/index`);
      const cdp = await context.newCDPSession(helper);
      const registrationId = await registrationOf(cdp);

      // The page is closed: the call goes by Web Push.
      await page.close();
      await waitFor('the page to be out of view', async () => {
        const res = await fetch(`${hub.url}/api/patient/notices`, { headers: { authorization: `Bearer ${ticket.patientToken}` } });
        return ((await res.json()) as { pushSubscribed: boolean }).pushSubscribed;
      });
      await new Promise((r) => setTimeout(r, 300));
      expectOk(await request(staff, 'queue:call-next', { dept: 'peds', room: 'r3' }));
      const received = await waitFor('the push message', () => push.receivedBy(pushId)[0], 20_000);
      expect(received.urgency).toBe('high');
      expect(JSON.parse(received.plaintext)).toMatchObject({ kind: 'queue_called', ticketNumber: ticket.event.ticket.number, url: '/ticket' });
      // The closed page can stay among the service worker's clients for a moment (a loaded CI machine): the
      // worker then hands the push to that page as in view. A push service redelivers what was not acknowledged;
      // here the push is delivered again every 3 s until shown (one notification: its tag is the notice id).
      const tag = JSON.parse(received.plaintext).id as string;
      let deliveredAt = 0;
      const shown = await waitFor(
        'the notification',
        async () => {
          if (Date.now() - deliveredAt > 3000) {
            deliveredAt = Date.now();
            await cdp.send('ServiceWorker.deliverPushMessage', { origin: hub.url, registrationId, data: received.plaintext });
          }
          return (await notifications(helper)).find((n) => n.tag === tag);
        },
        15_000,
      );
      expect((await notifications(helper)).filter((n) => n.tag === tag)).toHaveLength(1);
      expect(shown.title).toBe(`Test Clinic: ticket ${ticket.event.ticket.number}, please go to Room 3`);

      // Reopened, the page does not show the call again (the push delivered it).
      const reopened = await openTicket(context, ticket.patientUrl, ticket.event.ticket.number);
      await new Promise((r) => setTimeout(r, 500));
      expect(await reopened.evaluate(() => (globalThis as any).__clinicHub.notices)).toEqual([]);

      // With the page in view, a push is given to the page, not shown as a notification.
      const inPage = { ...JSON.parse(received.plaintext), id: `${JSON.parse(received.plaintext).id}.again`, title: 'In the page' };
      await cdp.send('ServiceWorker.deliverPushMessage', { origin: hub.url, registrationId, data: JSON.stringify(inPage) });
      await reopened.waitForFunction(() => (globalThis as any).__clinicHub.notices.some((n: { title: string }) => n.title === 'In the page'));
      expect(await reopened.locator('#notices .notice h2').first().textContent()).toBe('In the page');
      expect((await notifications(helper)).filter((n) => n.tag === inPage.id)).toEqual([]);
      expectOk(await request(staff, 'queue:cancel', { ticketId: ticket.event.ticket.id }));
    } finally {
      await context.close();
    }
  });

  it('a patient who gave a phone number at the kiosk can turn push on too; the call then comes by Web Push, not by SMS', async () => {
    const context = await browser.newContext();
    try {
      const pushId = await stubPushSubscription(context);
      const phone = '+819077778888';
      const ticket = await checkin('gp', phone);
      const page = await openTicket(context, ticket.patientUrl, ticket.event.ticket.number);
      await page.locator('#enable-push').click();
      await page.waitForFunction(() => (globalThis as any).document.querySelector('.push-state')?.textContent?.includes('even when this page is closed'));
      // The phone number stays: it can still be stopped from the page.
      expect(await page.locator('#unlink-contact').isVisible()).toBe(true);
      await page.close();
      // The hub has seen the page go (its socket said hidden, then left): the call is not for a page in view.
      const redis = new Redis(fixture.redisUrl);
      try {
        const inView = `ch:{${C}}:notify:in-view:patient:${ticket.event.ticket.id}`;
        await waitFor('the page to be out of view', async () => (await redis.zcount(inView, Date.now(), '+inf')) === 0);
      } finally {
        redis.disconnect();
      }
      const called = expectOk(await request(staff, 'queue:call-next', { dept: 'gp', room: 'r1' }));
      expect(called.event.ticket.id).toBe(ticket.event.ticket.id);
      const received = await waitFor('the push message', () => push.receivedBy(pushId)[0], 20_000);
      expect(JSON.parse(received.plaintext)).toMatchObject({ kind: 'queue_called', ticketNumber: ticket.event.ticket.number });
      await new Promise((r) => setTimeout(r, 500));
      // ("You are next", sent at check-in before the page was open, went by SMS: that is the rule.)
      expect(fixture.sms.accepted.filter((m) => m.to === phone && m.body.includes('Room 1'))).toEqual([]);
      expectOk(await request(staff, 'queue:done', { ticketId: ticket.event.ticket.id }));
    } finally {
      await context.close();
    }
  });
});
