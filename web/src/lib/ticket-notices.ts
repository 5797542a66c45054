/**
 * How a patient's notices reach them when the ticket page is not in front of
 * them (docs/notifications.md, "The patient's page"):
 *
 * - the `/notify` socket: notices arrive here while the page is open (and
 *   those kept while it was closed, once it is back); the page says whether
 *   it is in view (`notify:page`) and which it has shown (`notify:seen`);
 * - the service worker (/ticket-sw.js): Web Push notifications when no page
 *   is in view, and the page from its cache when offline;
 * - push permission, asked once the patient has a ticket (a button: browsers
 *   ask only after a tap), and LINE linking.
 *
 * Each notice is shown once: by its id, remembered in localStorage.
 */
import type { Socket } from 'socket.io-client';
import { NAMESPACES, type InAppNotice, type LineLink, type NotifyClientToServer, type NotifyServerToClient, type PatientNoticeSettings } from '@clinic-hub/protocol';
import { openHubSocket } from './connection.js';
import { bilingual, byId, h } from './dom.js';
import type { Bilingual } from './i18n.js';
import { qrSvg } from './qr.js';
import { tokenFromFragment } from './token.js';

type NotifySocket = Socket<NotifyServerToClient, NotifyClientToServer>;

export const NOTICE_TEXT = {
  enablePush: { ja: 'このページを閉じてもお知らせを受け取る', en: 'Get notices even when this page is closed' },
  pushOn: { ja: 'ページを閉じても通知でお知らせします。', en: 'You will be notified even when this page is closed.' },
  pushFailed: { ja: 'この端末では通知を受け取れません。ページを開いたままにしてください。', en: 'This device cannot receive notifications. Please keep this page open.' },
  pushDenied: { ja: '通知は許可されていません。ページを開いたままにしてください。', en: 'Notifications are not allowed. Please keep this page open.' },
  linkLine: { ja: 'LINEでお知らせを受け取る', en: 'Get notices on LINE' },
  lineScan: { ja: 'LINEで開いて、表示されたメッセージを送信してください。', en: 'Open it in LINE and send the message it shows.' },
  lineOn: { ja: 'お知らせはLINEに届きます。', en: 'Notices go to your LINE.' },
  unlink: { ja: 'LINE・電話番号への通知をやめる', en: 'Stop notices by LINE or SMS' },
  savedAt: { ja: '前回の表示（オフライン）', en: 'Last known (offline)' },
} satisfies Record<string, Bilingual>;

const SEEN_KEY = 'clinic-hub.seen-notices';
const ASKED_KEY = 'clinic-hub.push-asked';
const TICKET_KEY = 'clinic-hub.ticket';

/** The ticket page's token, kept so the installed app (started at /ticket, without a token) opens the same ticket. */
export function rememberTicketToken(token: string): void {
  try {
    localStorage.setItem(TICKET_KEY, token);
  } catch {
    // storage off (private mode): the link still works
  }
}

/** Puts the remembered token in the address when the page was opened without one (the installed app's start). */
export function restoreTicketToken(): void {
  if (tokenFromFragment()) return;
  const stored = localStorage.getItem(TICKET_KEY);
  if (stored) history.replaceState(history.state, '', `${location.pathname}#token=${stored}`);
}

/** What the page last showed, for showing it again offline. */
export interface SavedState {
  number: string;
  dept: Bilingual | null;
  status: Bilingual;
  detail: Bilingual | null;
  savedAt: number;
}

export function saveState(ticketId: string, state: SavedState): void {
  try {
    localStorage.setItem(`clinic-hub.state.${ticketId}`, JSON.stringify(state));
  } catch {
    // storage full or off: nothing to show offline
  }
}

export function savedState(ticketId: string): SavedState | null {
  try {
    const raw = localStorage.getItem(`clinic-hub.state.${ticketId}`);
    return raw ? (JSON.parse(raw) as SavedState) : null;
  } catch {
    return null;
  }
}

function seenIds(): string[] {
  try {
    return JSON.parse(localStorage.getItem(SEEN_KEY) ?? '[]') as string[];
  } catch {
    return [];
  }
}

function markSeen(id: string): void {
  const ids = [...seenIds().filter((seen) => seen !== id), id].slice(-200);
  localStorage.setItem(SEEN_KEY, JSON.stringify(ids));
}

export interface PatientNotices {
  /** Notices shown in the page, in order (tests read them). */
  readonly shown: InAppNotice[];
}

export function startPatientNotices(token: string, onNotice: (notice: InAppNotice) => void): PatientNotices {
  const shown: InAppNotice[] = [];
  const currentToken = () => tokenFromFragment() ?? token;
  const socket = openHubSocket<NotifySocket>(NAMESPACES.notify, token);
  socket.on('connect', () => {
    socket.auth = { token: currentToken() };
    reportView();
  });
  const reportView = () => {
    if (socket.connected) socket.emit('notify:page', { visible: document.visibilityState === 'visible' }, () => undefined);
  };
  const pending = new Map<string, InAppNotice>();
  const acknowledge = (id: string) => {
    if (socket.connected) socket.emit('notify:seen', { ids: [id] }, () => undefined);
  };
  /** Shows a notice in the page once; out of view it waits until the page is looked at. */
  const receive = (notice: InAppNotice) => {
    if (seenIds().includes(notice.id)) return acknowledge(notice.id);
    if (document.visibilityState !== 'visible') {
      pending.set(notice.id, notice);
      return;
    }
    markSeen(notice.id);
    shown.push(notice);
    showInPage(notice);
    onNotice(notice);
    acknowledge(notice.id);
  };
  socket.on('notify:notice', receive);
  document.addEventListener('visibilitychange', () => {
    reportView();
    if (document.visibilityState === 'visible') for (const notice of pending.values()) receive(notice);
    pending.clear();
  });

  if ('serviceWorker' in navigator) {
    navigator.serviceWorker.addEventListener('message', (event: MessageEvent) => {
      const data = event.data as { type?: string; notice?: InAppNotice; id?: string } | null;
      if (data?.type === 'notice' && data.notice) receive(data.notice);
      if (data?.type === 'shown' && data.id) {
        // Shown as a notification while this page was out of view: not again here.
        markSeen(data.id);
        pending.delete(data.id);
        acknowledge(data.id);
      }
    });
    navigator.serviceWorker.register('/ticket-sw.js').catch(() => undefined);
  }
  void showSettings(currentToken);
  return { shown };
}

function showInPage(notice: InAppNotice): void {
  const box = byId('notices');
  const item = h('article', { class: 'notice', 'data-kind': notice.kind, 'data-id': notice.id, lang: notice.locale }, h('h2', {}, notice.title), h('p', {}, notice.body));
  const close = h('button', { type: 'button', class: 'notice-close' }, bilingual({ ja: '閉じる', en: 'Close' }, 'inline'));
  close.addEventListener('click', () => item.remove());
  item.append(close);
  box.prepend(item);
}

async function api<T>(token: () => string, method: string, path: string, body?: unknown): Promise<{ status: number; json: T }> {
  const res = await fetch(path, {
    method,
    headers: { authorization: `Bearer ${token()}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, json: (await res.json()) as T };
}

/** Push permission (asked once, after a tap) and LINE linking, as the hub offers them. */
async function showSettings(token: () => string): Promise<void> {
  const box = byId('notice-settings');
  let settings: PatientNoticeSettings;
  try {
    const res = await api<PatientNoticeSettings>(token, 'GET', '/api/patient/notices');
    if (res.status !== 200) return;
    settings = res.json;
  } catch {
    return;
  }
  const line = (text: Bilingual, className: string) => h('p', { class: className }, bilingual(text));
  const render = (...children: Node[]) => {
    box.hidden = children.length === 0;
    box.replaceChildren(...children);
  };
  const parts: Node[] = [];
  const pushSupported = 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;
  // A patient with a phone number may have Web Push too: each notice then goes one way (docs/notifications.md).
  if (settings.webPush && pushSupported && (settings.channel === 'in_app' || settings.channel === 'sms')) {
    if (settings.pushSubscribed && Notification.permission === 'granted') parts.push(line(NOTICE_TEXT.pushOn, 'push-state'));
    else if (Notification.permission === 'denied' || (localStorage.getItem(ASKED_KEY) && Notification.permission !== 'granted')) parts.push(line(NOTICE_TEXT.pushDenied, 'push-state'));
    else {
      const button = h('button', { type: 'button', id: 'enable-push', class: 'enable-push' }, bilingual(NOTICE_TEXT.enablePush, 'inline'));
      button.addEventListener('click', () => void subscribe(button, settings.webPush!.publicKey));
      parts.push(button);
    }
  }
  if (settings.line && settings.channel !== 'line') {
    const button = h('button', { type: 'button', id: 'link-line', class: 'link-line' }, bilingual(NOTICE_TEXT.linkLine, 'inline'));
    button.addEventListener('click', () => void linkLine(button));
    parts.push(button);
  }
  if (settings.channel === 'line') parts.push(line(NOTICE_TEXT.lineOn, 'line-state'));
  if (settings.channel === 'line' || settings.channel === 'sms') {
    const button = h('button', { type: 'button', id: 'unlink-contact', class: 'unlink' }, bilingual(NOTICE_TEXT.unlink, 'inline'));
    button.addEventListener('click', () => void api(token, 'DELETE', '/api/patient/contact').then(() => showSettings(token)));
    parts.push(button);
  }
  render(...parts);

  async function subscribe(button: HTMLButtonElement, publicKey: string): Promise<void> {
    button.disabled = true;
    localStorage.setItem(ASKED_KEY, '1');
    try {
      const permission = await Notification.requestPermission();
      if (permission !== 'granted') {
        button.replaceWith(line(NOTICE_TEXT.pushDenied, 'push-state'));
        return;
      }
      const registration = await navigator.serviceWorker.ready;
      const subscription = await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: fromBase64Url(publicKey) });
      const saved = await api(token, 'PUT', '/api/patient/push-subscription', subscription.toJSON());
      button.replaceWith(line(saved.status === 200 ? NOTICE_TEXT.pushOn : NOTICE_TEXT.pushFailed, 'push-state'));
    } catch {
      button.replaceWith(line(NOTICE_TEXT.pushFailed, 'push-state'));
    }
  }

  async function linkLine(button: HTMLButtonElement): Promise<void> {
    button.disabled = true;
    const res = await api<LineLink>(token, 'POST', '/api/patient/line-link').catch(() => null);
    if (!res || res.status !== 201) {
      button.disabled = false;
      return;
    }
    const link = h('a', { href: res.json.url, class: 'line-link', id: 'line-link' }, bilingual(NOTICE_TEXT.linkLine, 'inline'));
    button.replaceWith(h('figure', { class: 'line-qr' }, qrSvg(res.json.url, `${NOTICE_TEXT.linkLine.ja} / ${NOTICE_TEXT.linkLine.en}`), h('figcaption', {}, bilingual(NOTICE_TEXT.lineScan)), link));
  }
}

function fromBase64Url(text: string): Uint8Array<ArrayBuffer> {
  const base64 = text.replaceAll('-', '+').replaceAll('_', '/').padEnd(Math.ceil(text.length / 4) * 4, '=');
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}
