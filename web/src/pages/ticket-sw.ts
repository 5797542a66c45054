/**
 * The ticket page's service worker, served at /ticket-sw.js (scope "/"):
 *
 * - offline: the page and its assets are kept in a cache and served from it
 *   when the network fails (the page then shows the last state it saved);
 * - Web Push: a notice (WebPushMessage) is shown as a notification, unless a
 *   ticket page is in view, which is given it to show in the page instead:
 *   never both. Pages still open but out of view are told the notice was
 *   shown, so they do not show it again.
 *
 * The web tsconfig has the DOM library only: the few worker types used here
 * are declared below.
 */
import type { WebPushMessage } from '@clinic-hub/protocol';

interface WindowClientLike {
  url: string;
  visibilityState: DocumentVisibilityState;
  focused: boolean;
  postMessage(message: unknown): void;
  focus(): Promise<WindowClientLike>;
}
interface ExtendableEventLike extends Event {
  waitUntil(promise: Promise<unknown>): void;
}
interface FetchEventLike extends ExtendableEventLike {
  request: Request;
  respondWith(response: Promise<Response>): void;
}
interface PushEventLike extends ExtendableEventLike {
  data: { json(): unknown; text(): string } | null;
}
interface NotificationEventLike extends ExtendableEventLike {
  notification: Notification & { data: unknown };
}
interface WorkerScope {
  location: Location;
  registration: ServiceWorkerRegistration;
  clients: {
    matchAll(options: { type: 'window'; includeUncontrolled: boolean }): Promise<WindowClientLike[]>;
    openWindow(url: string): Promise<WindowClientLike | null>;
    claim(): Promise<void>;
  };
  skipWaiting(): Promise<void>;
  addEventListener(type: 'install' | 'activate', listener: (event: ExtendableEventLike) => void): void;
  addEventListener(type: 'fetch', listener: (event: FetchEventLike) => void): void;
  addEventListener(type: 'push', listener: (event: PushEventLike) => void): void;
  addEventListener(type: 'notificationclick', listener: (event: NotificationEventLike) => void): void;
}

const worker = self as unknown as WorkerScope;
const CACHE = 'clinic-hub-ticket-v1';
/** What the ticket page needs to open without a network. */
const SHELL = ['/ticket', '/assets/ticket.js', '/common.css', '/ticket.css', '/chat.css', '/favicon.svg', '/ticket.webmanifest'];

worker.addEventListener('install', (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(SHELL))
      .then(() => worker.skipWaiting()),
  );
});

worker.addEventListener('activate', (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((name) => name !== CACHE).map((name) => caches.delete(name))))
      .then(() => worker.clients.claim()),
  );
});

/** The network first (the page stays current); the cached copy when it fails. */
worker.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== 'GET' || url.origin !== worker.location.origin || !SHELL.includes(url.pathname)) return;
  event.respondWith(
    fetch(event.request)
      .then(async (response) => {
        if (response.ok) await (await caches.open(CACHE)).put(url.pathname, response.clone());
        return response;
      })
      .catch(async () => (await caches.match(url.pathname)) ?? Response.error()),
  );
});

worker.addEventListener('push', (event) => {
  let message: WebPushMessage;
  try {
    message = event.data?.json() as WebPushMessage;
  } catch {
    return;
  }
  if (!message?.id || !message.title) return;
  event.waitUntil(deliver(message));
});

async function deliver(message: WebPushMessage): Promise<void> {
  const pages = (await worker.clients.matchAll({ type: 'window', includeUncontrolled: true })).filter((client) => new URL(client.url).pathname === '/ticket');
  const inView = pages.filter((client) => client.visibilityState === 'visible');
  if (inView.length > 0) {
    for (const page of inView) page.postMessage({ type: 'notice', notice: message });
    return;
  }
  await worker.registration.showNotification(message.title, {
    body: message.body,
    tag: message.id,
    lang: message.locale,
    icon: '/favicon.svg',
    data: { url: message.url, id: message.id },
  });
  for (const page of pages) page.postMessage({ type: 'shown', id: message.id });
}

worker.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const data = event.notification.data as { url?: string } | null;
  event.waitUntil(
    (async () => {
      const pages = await worker.clients.matchAll({ type: 'window', includeUncontrolled: true });
      const page = pages.find((client) => new URL(client.url).pathname === '/ticket');
      if (page) await page.focus();
      else await worker.clients.openWindow(data?.url ?? '/ticket');
    })(),
  );
});
