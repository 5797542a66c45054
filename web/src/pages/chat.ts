/**
 * Staff chat: the clinic's patient threads and the staff channels this person
 * belongs to (unread marked), one open thread at a time, their own presence
 * (online / busy / away, which patients see) and everyone else's. Opened from
 * the staff console; `#token=…&thread=ID` opens a thread directly.
 */
import { PRESENCE_STATUSES, type ChatThread, type PresenceStatus, type Role, type StaffPresence } from '@clinic-hub/protocol';
import { chatRequest, openChatSocket, type ChatSocket } from '../lib/chat-connection.js';
import { mountChatPanel, type ChatPanel } from '../lib/chat-panel.js';
import { CHAT_TEXT, PRESENCE_TEXT, roleText } from '../lib/chat-text.js';
import { bilingual, byId, h } from '../lib/dom.js';
import { ERROR_TEXT_JA, both, type Bilingual } from '../lib/i18n.js';
import { showConnection } from '../lib/connection.js';
import { pageToken } from '../lib/page.js';
import { fetchClinic } from '../lib/clinic-info.js';
import { followStaffPresence } from '../lib/staff-presence.js';
import { tokenFromFragment } from '../lib/token.js';

const MAX_MESSAGES = 5;

interface Listed {
  thread: ChatThread;
  /** This person's read position. */
  readSeq: number;
}

const access = pageToken(['staff', 'doctor', 'admin']);
if (access?.info.role && access.info.sub) start(access.token, { sub: access.info.sub, role: access.info.role, name: access.info.name }, access.info.clinic);

function start(token: string, self: { sub: string; role: Role; name: string | null }, tokenClinic: string | null): void {
  const params = new URLSearchParams(location.hash.slice(1));
  const clinicParam = params.get('clinic');
  const clinic = clinicParam ?? tokenClinic;
  const socket = openChatSocket(token, clinicParam);
  showConnection(socket, token);
  const currentToken = () => tokenFromFragment() ?? token;
  // The header names the clinic and the person, never their ids: the clinic's name from the hub, theirs from their token.
  byId('self-name').replaceChildren(selfLabel(self));
  let timeZone: string | null = null;
  if (clinic && clinic !== '*') {
    void fetchClinic(currentToken(), clinic).then((info) => {
      if (!info) return;
      byId('clinic-name').replaceChildren(bilingual(info.name, 'inline'));
      timeZone = info.timezone;
      open?.panel.refresh();
    });
  }

  const threads = new Map<string, Listed>();
  let open: { id: string; panel: ChatPanel } | null = null;

  const consoleLink = byId<HTMLAnchorElement>('console-link');
  consoleLink.addEventListener('click', () => {
    const fragment = new URLSearchParams(location.hash.slice(1));
    fragment.delete('thread');
    consoleLink.href = `/staff#${fragment}`;
  });

  async function loadThreads(): Promise<void> {
    const ack = await chatRequest(socket, 'chat:threads', {}).catch(() => null);
    if (!ack) return;
    if (!ack.ok) return showError(ack.error.code, ack.error.message);
    threads.clear();
    for (const { readSeq, ...thread } of ack.threads) threads.set(thread.id, { thread, readSeq });
    if (open) syncOpen(open.panel);
    renderLists();
    const wanted = new URLSearchParams(location.hash.slice(1)).get('thread');
    if (!open && wanted) openThread(wanted);
  }

  function renderLists(): void {
    const all = [...threads.values()];
    const patients = all.filter((t) => t.thread.kind === 'patient').sort((a, b) => (b.thread.lastAt ?? b.thread.createdAt) - (a.thread.lastAt ?? a.thread.createdAt));
    const channels = all.filter((t) => t.thread.kind !== 'patient').sort((a, b) => a.thread.title.localeCompare(b.thread.title, 'ja'));
    byId('patient-threads').replaceChildren(...listItems(patients));
    byId('staff-threads').replaceChildren(...listItems(channels));
    const unread = all.filter(isUnread).length;
    document.title = `${unread > 0 ? `(${unread}) ` : ''}チャット / Chat`;
  }

  const isUnread = (t: Listed) => t.thread.lastSeq > t.readSeq && t.thread.id !== open?.id;

  function listItems(items: Listed[]): HTMLElement[] {
    if (items.length === 0) return [h('li', { class: 'empty' }, both(CHAT_TEXT.noThreads))];
    return items.map((t) =>
      h(
        'li',
        {},
        h(
          'button',
          { type: 'button', class: 'thread', 'data-thread': t.thread.id, 'aria-current': String(t.thread.id === open?.id), onclick: () => openThread(t.thread.id) },
          h('span', { class: 'thread-title' }, label(titleOf(t.thread))),
          isUnread(t) ? h('span', { class: 'unread' }, both(CHAT_TEXT.unread)) : null,
        ),
      ),
    );
  }

  const label = (text: Bilingual) => (text.ja === text.en ? text.ja : both(text));

  function titleOf(thread: ChatThread): Bilingual {
    if (thread.kind === 'patient') return { ja: `受付番号 ${thread.title}`, en: `Ticket ${thread.title}` };
    return { ja: thread.title, en: thread.title };
  }

  function openThread(threadId: string): void {
    if (open?.id === threadId) return;
    open?.panel.destroy();
    const listed = threads.get(threadId);
    const title: Bilingual = listed ? titleOf(listed.thread) : { ja: threadId, en: threadId };
    const ticketNumber = listed?.thread.kind === 'patient' ? listed.thread.title : null;
    const panel = mountChatPanel({
      socket,
      threadId,
      title,
      self,
      token: currentToken,
      clinic: clinicParam,
      timeZone: () => timeZone,
      senderName: (member, role) =>
        role === 'patient'
          ? { ja: `${CHAT_TEXT.patient.ja}${ticketNumber ? `（${ticketNumber}）` : ''}`, en: `${CHAT_TEXT.patient.en}${ticketNumber ? ` (${ticketNumber})` : ''}` }
          : { ja: `${member}（${roleText(role).ja}）`, en: `${member} (${roleText(role).en})` },
      onChange: () => syncOpen(panel),
    });
    open = { id: threadId, panel };
    byId('chat-main').replaceChildren(panel.element);
    const fragment = new URLSearchParams(location.hash.slice(1));
    fragment.set('thread', threadId);
    history.replaceState(history.state, '', `${location.pathname}${location.search}#${fragment}`);
    renderLists();
  }

  /** The open thread is read as far as it is shown. */
  function syncOpen(panel: ChatPanel): void {
    const { follower } = panel;
    if (!open || open.panel !== panel || !follower.thread) return;
    const listed = threads.get(open.id);
    const lastSeq = Math.max(follower.lastSeq ?? 0, listed?.thread.lastSeq ?? 0);
    threads.set(open.id, { thread: { ...(listed?.thread ?? follower.thread), lastSeq }, readSeq: follower.lastSeq ?? 0 });
    renderLists();
  }

  socket.on('connect', () => void loadThreads());
  socket.on('chat:thread', (thread) => {
    threads.set(thread.id, { thread, readSeq: threads.get(thread.id)?.readSeq ?? 0 });
    renderLists();
  });
  socket.on('chat:thread-removed', ({ threadId }) => {
    threads.delete(threadId);
    if (open?.id === threadId) {
      open.panel.destroy();
      open = null;
      byId('chat-main').replaceChildren(h('p', { class: 'chat-placeholder' }, bilingual(CHAT_TEXT.chooseThread)));
    }
    renderLists();
  });
  socket.on('chat:activity', (activity) => {
    const listed = threads.get(activity.threadId);
    if (!listed) return void loadThreads();
    threads.set(activity.threadId, { ...listed, thread: { ...listed.thread, lastSeq: Math.max(listed.thread.lastSeq, activity.seq), lastAt: activity.at } });
    renderLists();
  });

  const statusSelect = byId<HTMLSelectElement>('my-status');
  followStaffPresence(socket, (staff) => {
    renderPresence(staff);
    const mine = staff.get(self.sub);
    if (mine && mine.status !== 'offline') statusSelect.value = mine.status;
  });
  statusSelect.addEventListener('change', () => {
    const status = statusSelect.value as PresenceStatus;
    if (!PRESENCE_STATUSES.includes(status)) return;
    void chatRequest(socket, 'chat:set-presence', { status }).then(
      (ack) => {
        if (!ack.ok) showError(ack.error.code, ack.error.message);
      },
      () => showError('INTERNAL', 'no answer from the hub'),
    );
  });

  function renderPresence(staff: ReadonlyMap<string, StaffPresence>): void {
    const entries = [...staff.values()].sort((a, b) => a.member.localeCompare(b.member));
    byId('presence-list').replaceChildren(
      ...(entries.length === 0
        ? [h('li', { class: 'empty' }, both(PRESENCE_TEXT.offline))]
        : entries.map((p) =>
            h('li', { class: `status-${p.status}`, 'data-member': p.member }, `${p.member}${p.member === self.sub ? ` (${both(CHAT_TEXT.you)})` : ''} — ${both(PRESENCE_TEXT[p.status])}`),
          )),
    );
  }

  wireChannelForm(socket, (thread) => {
    threads.set(thread.id, { thread, readSeq: 0 });
    openThread(thread.id);
  });
}

function wireChannelForm(socket: ChatSocket, created: (thread: ChatThread) => void): void {
  const form = byId<HTMLFormElement>('channel-form');
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const title = byId<HTMLInputElement>('channel-title').value.trim();
    const members = byId<HTMLInputElement>('channel-members')
      .value.split(/[,、\s]+/)
      .map((m) => m.trim())
      .filter(Boolean);
    void chatRequest(socket, 'chat:create', { kind: 'staff', title, members }).then(
      (ack) => {
        if (!ack.ok) return showError(ack.error.code, ack.error.message, ack.error.detail);
        form.reset();
        created(ack.thread);
      },
      () => showError('INTERNAL', 'no answer from the hub'),
    );
  });
}

function showError(code: string, message: string, detail?: string): void {
  const ja = (ERROR_TEXT_JA as Record<string, string | undefined>)[code];
  const list = byId('messages');
  const item = h(
    'div',
    { class: 'message error', 'data-code': code },
    h(
      'span',
      { class: 'text' },
      h('strong', { class: 'code' }, code),
      ' ',
      ja ? h('span', { lang: 'ja' }, `${ja} `) : null,
      h('span', { lang: 'en' }, message),
      detail ? h('span', { class: 'detail' }, ` (${detail})`) : null,
    ),
    h('button', { type: 'button', class: 'dismiss', 'aria-label': '閉じる / Dismiss', onclick: () => item.remove() }, '✕'),
  );
  list.prepend(item);
  while (list.children.length > MAX_MESSAGES) list.lastElementChild?.remove();
}

/** 「佐藤 花子（スタッフ）」 from a token with a name; the role alone from one without (never the account id). */
function selfLabel(self: { role: Role; name: string | null }): HTMLElement {
  const role = roleText(self.role);
  return bilingual(self.name ? { ja: `${self.name}（${role.ja}）`, en: `${self.name} (${role.en})` } : role, 'inline');
}
