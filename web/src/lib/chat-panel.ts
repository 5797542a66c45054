/**
 * One chat thread in a page: history (with earlier pages on demand), live
 * messages kept in step by the protocol's ChatFollower (nothing missed or
 * doubled across reconnects), a composer with attachments, read receipts and
 * typing indicators. Used by the patient's ticket page and the staff chat.
 */
import {
  CHAT_MAX_TEXT_LENGTH,
  CHAT_TYPING_TTL_MS,
  ChatFollower,
  type ChatAttachment,
  type ChatMessage,
  type ChatTyping,
  type ProtocolError,
  type Role,
} from '@clinic-hub/protocol';
import { chatRequest, fetchAttachment, newClientMessageId, sendChatMessage, uploadAttachment, type ChatSocket } from './chat-connection.js';
import { CHAT_TEXT } from './chat-text.js';
import { DEFAULT_TIMEZONE } from './clinic-info.js';
import { bilingual, h, replaceChildren } from './dom.js';
import { ERROR_TEXT_JA, TEXT, both, type Bilingual } from './i18n.js';

/** Send typing: true at most this often while someone types; the hub refuses more than once a second. */
const TYPING_REPEAT_MS = 2500;
/** Typing stops being announced after this long without a keystroke. */
const TYPING_IDLE_MS = 4000;
const RETRY_FAILED_SYNC_MS = 3000;

export interface ChatPanelOptions {
  socket: ChatSocket;
  threadId: string;
  /** Heading of the panel. */
  title: Bilingual;
  self: { sub: string; role: Role };
  /** The page's current token (it is refreshed), for attachment uploads and downloads. */
  token: () => string;
  /** For an all-clinics admin token. */
  clinic?: string | null;
  /** How a sender is named, for messages and typing. */
  senderName(member: string, role: Role): Bilingual;
  /** Told after every change (unread counts, a debug hook). */
  onChange?(follower: ChatFollower): void;
  /** The clinic's timezone (messages' times are shown in it), once known; absent or null: Asia/Tokyo. */
  timeZone?: () => string | null;
}

export interface ChatPanel {
  element: HTMLElement;
  follower: ChatFollower;
  /** Draws the messages again (the clinic's timezone arrived). */
  refresh(): void;
  /** Leaves the thread and lets go of the socket's listeners and file URLs. */
  destroy(): void;
}

interface Pending {
  clientMessageId: string;
  text: string;
  files: File[];
  attachmentIds: string[] | null;
  state: 'sending' | 'failed';
}

export function mountChatPanel(options: ChatPanelOptions): ChatPanel {
  const { socket, threadId, self } = options;
  const list = h('ol', { class: 'chat-messages', 'aria-live': 'polite', 'aria-label': both(CHAT_TEXT.message) });
  const older = h('button', { type: 'button', class: 'chat-older', hidden: true }, both(CHAT_TEXT.earlier));
  const typingLine = h('div', { class: 'chat-typing', 'aria-live': 'polite' });
  const errorLine = h('div', { class: 'chat-error', role: 'alert' });
  const textarea = h('textarea', {
    class: 'chat-input',
    rows: 2,
    maxlength: CHAT_MAX_TEXT_LENGTH,
    placeholder: both(CHAT_TEXT.placeholder),
    'aria-label': both(CHAT_TEXT.message),
  });
  const fileInput = h('input', { type: 'file', class: 'chat-file-input', accept: 'image/png,image/jpeg,image/webp,application/pdf', multiple: true });
  const fileChips = h('span', { class: 'chat-files' });
  const counter = h('span', { class: 'chat-count' }, `0/${CHAT_MAX_TEXT_LENGTH}`);
  const sendButton = h('button', { type: 'submit', class: 'chat-send' }, both(CHAT_TEXT.send));
  const form = h(
    'form',
    { class: 'chat-compose' },
    textarea,
    h(
      'div',
      { class: 'chat-compose-row' },
      h('label', { class: 'chat-attach' }, `+ ${both(CHAT_TEXT.attach)}`, fileInput),
      fileChips,
      counter,
      sendButton,
    ),
  );
  const element = h(
    'section',
    { class: 'chat-panel', 'data-thread': threadId },
    h('h2', { class: 'chat-title' }, bilingual(options.title, 'inline')),
    older,
    list,
    typingLine,
    errorLine,
    form,
  );

  const pending: Pending[] = [];
  let chosenFiles: File[] = [];
  const typing = new Map<string, { role: Role; until: number }>();
  const fileUrls = new Map<string, Promise<string | ProtocolError>>();
  let markedRead = 0;
  let destroyed = false;
  let retryTimer: ReturnType<typeof setTimeout> | undefined;

  const follower = new ChatFollower({
    join: async (afterId, afterAt) => {
      const ack = await chatRequest(socket, 'chat:join', afterId === null ? { threadId } : { threadId, afterId, ...(afterAt !== undefined && { afterAt }) });
      if (!ack.ok) throw Object.assign(new Error(ack.error.code), { protocolError: ack.error });
      return ack;
    },
    history: async (query) => {
      const ack = await chatRequest(socket, 'chat:history', { threadId, ...query });
      if (!ack.ok) throw Object.assign(new Error(ack.error.code), { protocolError: ack.error });
      return ack;
    },
    onMessage: (message) => typing.delete(message.sender),
    onChange: () => render(),
    onSyncError: (error) => {
      const protocol = (error as { protocolError?: ProtocolError }).protocolError;
      if (protocol) showError(protocol);
      // A lost answer or a store outage passes: try again while connected (a reconnect resyncs anyway).
      // A refusal (not a member, no such thread) does not.
      if (protocol && protocol.code !== 'STORE_UNAVAILABLE' && protocol.code !== 'INTERNAL') return;
      clearTimeout(retryTimer);
      retryTimer = setTimeout(() => {
        if (!destroyed && socket.connected) onConnect();
      }, RETRY_FAILED_SYNC_MS);
    },
  });

  const onMessage = (message: ChatMessage) => follower.handleMessage(message);
  const onReceipt = (receipt: Parameters<ChatFollower['handleReceipt']>[0]) => follower.handleReceipt(receipt);
  const onTyping = (notice: ChatTyping) => {
    if (notice.threadId !== threadId || notice.member === self.sub) return;
    if (notice.typing) typing.set(notice.member, { role: notice.role, until: Date.now() + CHAT_TYPING_TTL_MS });
    else typing.delete(notice.member);
    renderTyping();
  };
  const onConnect = () => void follower.resync().catch(() => undefined);
  socket.on('chat:message', onMessage);
  socket.on('chat:receipt', onReceipt);
  socket.on('chat:typing', onTyping);
  socket.on('connect', onConnect);
  if (socket.connected) onConnect();
  const typingTimer = setInterval(() => {
    if (typing.size > 0) renderTyping();
  }, 1000);
  const onVisible = () => markRead();
  document.addEventListener('visibilitychange', onVisible);

  function render(): void {
    if (destroyed) return;
    const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    const readUpTo = follower.readByOthers(self.sub);
    const confirmed = new Set(follower.messages.filter((m) => m.sender === self.sub).map((m) => m.clientMessageId));
    const items: HTMLElement[] = follower.messages.map((m) => messageItem(m, readUpTo));
    for (const p of pending) if (!confirmed.has(p.clientMessageId)) items.push(pendingItem(p));
    if (items.length === 0 && follower.lastSeq !== null) items.push(h('li', { class: 'chat-empty' }, bilingual(CHAT_TEXT.noMessages, 'inline')));
    list.replaceChildren(...items);
    older.hidden = !follower.hasOlder;
    if (nearBottom) list.scrollTop = list.scrollHeight;
    renderTyping();
    markRead();
    options.onChange?.(follower);
  }

  function messageItem(message: ChatMessage, readUpTo: number): HTMLElement {
    const mine = message.sender === self.sub;
    const name = mine ? CHAT_TEXT.you : options.senderName(message.sender, message.senderRole);
    return h(
      'li',
      { class: `chat-message ${mine ? 'mine' : 'theirs'}`, 'data-seq': message.seq, 'data-id': message.id, 'data-sender': message.sender },
      h('div', { class: 'chat-meta' }, h('span', { class: 'chat-sender' }, both(name)), ' ', h('time', { datetime: new Date(message.at).toISOString() }, clock(message.at, options.timeZone?.() ?? DEFAULT_TIMEZONE))),
      message.text ? h('div', { class: 'chat-text' }, message.text) : null,
      message.attachments.length > 0 ? h('div', { class: 'chat-attachments' }, ...message.attachments.map((a) => attachmentView(a))) : null,
      mine && readUpTo >= message.seq ? h('div', { class: 'chat-status chat-read' }, both(CHAT_TEXT.read)) : null,
    );
  }

  function pendingItem(p: Pending): HTMLElement {
    return h(
      'li',
      { class: 'chat-message mine pending', 'data-state': p.state },
      h('div', { class: 'chat-meta' }, h('span', { class: 'chat-sender' }, both(CHAT_TEXT.you))),
      p.text ? h('div', { class: 'chat-text' }, p.text) : null,
      p.files.length > 0 ? h('div', { class: 'chat-attachments' }, ...p.files.map((f) => h('span', { class: 'chat-file' }, f.name))) : null,
      h(
        'div',
        { class: 'chat-status' },
        p.state === 'sending' ? both(CHAT_TEXT.sending) : both(CHAT_TEXT.failed),
        p.state === 'failed' ? h('button', { type: 'button', class: 'chat-retry', onclick: () => void deliver(p) }, both(CHAT_TEXT.retry)) : null,
      ),
    );
  }

  function attachmentView(attachment: ChatAttachment): HTMLElement {
    if (attachment.type.startsWith('image/')) {
      const img = h('img', { class: 'chat-image', alt: attachment.name, 'data-attachment': attachment.id });
      void fileUrl(attachment.id).then((url) => {
        if (typeof url === 'string') img.src = url;
        else img.replaceWith(h('span', { class: 'chat-file broken' }, `${both(CHAT_TEXT.cannotOpen)} (${url.code})`));
      });
      return h('figure', { class: 'chat-figure' }, img, h('figcaption', {}, attachment.name));
    }
    return h(
      'button',
      {
        type: 'button',
        class: 'chat-file',
        'data-attachment': attachment.id,
        onclick: () =>
          void fileUrl(attachment.id).then((url) => {
            if (typeof url !== 'string') return showError(url);
            const link = h('a', { href: url, download: attachment.name });
            link.click();
          }),
      },
      `PDF: ${attachment.name} (${Math.ceil(attachment.size / 1024)} KB) — ${both(CHAT_TEXT.download)}`,
    );
  }

  /** An object URL for an attachment, fetched once with the bearer token. */
  function fileUrl(id: string): Promise<string | ProtocolError> {
    let url = fileUrls.get(id);
    if (!url) {
      url = fetchAttachment(options.token(), id, options.clinic).then((blob) => (blob instanceof Blob ? URL.createObjectURL(blob) : blob));
      fileUrls.set(id, url);
    }
    return url;
  }

  function renderTyping(): void {
    const now = Date.now();
    for (const [member, t] of typing) if (t.until <= now) typing.delete(member);
    if (typing.size === 0) {
      typingLine.replaceChildren();
      return;
    }
    const names = [...typing].map(([member, t]) => options.senderName(member, t.role));
    typingLine.replaceChildren(
      `${names.map((n) => n.ja).join('、')} ${CHAT_TEXT.typing.ja} / ${names.map((n) => n.en).join(', ')} ${CHAT_TEXT.typing.en}`,
    );
  }

  function markRead(): void {
    const last = follower.messages.at(-1);
    if (!last || last.seq <= markedRead || document.visibilityState !== 'visible' || !socket.connected) return;
    markedRead = last.seq;
    chatRequest(socket, 'chat:read', { threadId, upToId: last.id, upToAt: last.at }).then(
      (ack) => {
        // The message is not the thread's any more (a failover lost it): show the thread as the hub has it.
        if (ack.ok && ack.rewound) {
          markedRead = 0;
          void follower.startOver().catch(() => undefined);
        }
      },
      () => {
        markedRead = 0;
      },
    );
  }

  function showError(error: ProtocolError): void {
    const ja = ERROR_TEXT_JA[error.code];
    replaceChildren(
      errorLine,
      h('strong', { class: 'code' }, error.code),
      ' ',
      ja ? h('span', { lang: 'ja' }, `${ja} `) : null,
      h('span', { lang: 'en' }, error.message),
      error.detail ? h('span', { class: 'detail' }, ` (${error.detail})`) : null,
    );
    errorLine.dataset.code = error.code;
  }

  function clearError(): void {
    errorLine.replaceChildren();
    delete errorLine.dataset.code;
  }

  /** Uploads what is still to upload, then sends with the message's one clientMessageId (again on retries). */
  async function deliver(p: Pending): Promise<void> {
    p.state = 'sending';
    clearError();
    render();
    try {
      if (p.attachmentIds === null) {
        const ids: string[] = [];
        for (const file of p.files) {
          const uploaded = await uploadAttachment(options.token(), threadId, file, options.clinic);
          if (!uploaded.ok) return fail(p, uploaded.error);
          ids.push(uploaded.attachment.id);
        }
        p.attachmentIds = ids;
      }
      const ack = await sendChatMessage(socket, { threadId, clientMessageId: p.clientMessageId, text: p.text, attachments: p.attachmentIds });
      if (!ack.ok) {
        // An attachment that expired unsent must be uploaded again on a retry.
        if (ack.error.code === 'CHAT_ATTACHMENT_NOT_FOUND') p.attachmentIds = null;
        return fail(p, ack.error);
      }
      pending.splice(pending.indexOf(p), 1);
      follower.handleMessage(ack.message);
      render();
    } catch {
      fail(p, { code: 'INTERNAL', message: both(TEXT.noResponse) } as ProtocolError);
    }
  }

  function fail(p: Pending, error: ProtocolError): void {
    p.state = 'failed';
    showError(error);
    render();
  }

  let typingSentAt = 0;
  let typingIdle: ReturnType<typeof setTimeout> | undefined;
  const stopTyping = () => {
    clearTimeout(typingIdle);
    if (typingSentAt === 0) return;
    typingSentAt = 0;
    if (socket.connected) void chatRequest(socket, 'chat:typing', { threadId, typing: false }).catch(() => undefined);
  };

  textarea.addEventListener('input', () => {
    const length = textarea.value.length;
    counter.textContent = `${length}/${CHAT_MAX_TEXT_LENGTH}`;
    counter.classList.toggle('over', length > CHAT_MAX_TEXT_LENGTH);
    if (textarea.value.trim() === '') return stopTyping();
    const now = Date.now();
    if (now - typingSentAt > TYPING_REPEAT_MS && socket.connected) {
      typingSentAt = now;
      void chatRequest(socket, 'chat:typing', { threadId, typing: true }).catch(() => undefined);
    }
    clearTimeout(typingIdle);
    typingIdle = setTimeout(stopTyping, TYPING_IDLE_MS);
  });
  textarea.addEventListener('keydown', (event) => {
    // Enter confirms a kana-kanji conversion while composing: only a plain Enter outside composition sends.
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  fileInput.addEventListener('change', () => {
    chosenFiles = [...chosenFiles, ...(fileInput.files ? [...fileInput.files] : [])].slice(0, 5);
    fileInput.value = '';
    renderChosenFiles();
  });
  function renderChosenFiles(): void {
    fileChips.replaceChildren(
      ...chosenFiles.map((file, i) =>
        h(
          'span',
          { class: 'chat-chip' },
          file.name,
          h('button', { type: 'button', 'aria-label': both(CHAT_TEXT.removeFile), onclick: () => ((chosenFiles = chosenFiles.filter((_, j) => j !== i)), renderChosenFiles()) }, '✕'),
        ),
      ),
    );
  }
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const text = textarea.value;
    if (text.trim() === '' && chosenFiles.length === 0) return;
    if (text.length > CHAT_MAX_TEXT_LENGTH) return;
    const p: Pending = { clientMessageId: newClientMessageId(), text: text.trim() === '' ? '' : text, files: chosenFiles, attachmentIds: null, state: 'sending' };
    pending.push(p);
    textarea.value = '';
    counter.textContent = `0/${CHAT_MAX_TEXT_LENGTH}`;
    chosenFiles = [];
    renderChosenFiles();
    stopTyping();
    list.scrollTop = list.scrollHeight;
    void deliver(p);
  });
  older.addEventListener('click', () => {
    const fromBottom = list.scrollHeight - list.scrollTop;
    void follower.loadOlder().then(() => (list.scrollTop = list.scrollHeight - fromBottom));
  });

  return {
    element,
    follower,
    refresh: () => render(),
    destroy() {
      destroyed = true;
      stopTyping();
      clearTimeout(retryTimer);
      clearInterval(typingTimer);
      document.removeEventListener('visibilitychange', onVisible);
      socket.off('chat:message', onMessage);
      socket.off('chat:receipt', onReceipt);
      socket.off('chat:typing', onTyping);
      socket.off('connect', onConnect);
      if (socket.connected) void chatRequest(socket, 'chat:leave', { threadId }).catch(() => undefined);
      for (const url of fileUrls.values()) void url.then((u) => typeof u === 'string' && URL.revokeObjectURL(u));
      element.remove();
    },
  };
}

const timeFormats = new Map<string, Intl.DateTimeFormat>();
/** A message's time in the clinic's timezone, whatever zone the reader's device is in. */
function clock(at: number, timeZone: string): string {
  let format = timeFormats.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('ja-JP', { timeZone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    timeFormats.set(timeZone, format);
  }
  return format.format(new Date(at));
}
