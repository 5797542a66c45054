/**
 * A patient's own ticket page, opened from the link or QR code given at
 * check-in. The token is scoped to one ticket; the page shows that ticket's
 * number, how many are ahead and the estimated wait, and which room to go to
 * when it is called (with a chime and a vibration). Below it, the patient's
 * chat with the clinic's staff, with the staff's availability.
 */
import { patientThreadId, type ConsultAdmitted, type PublicClinic, type PublicTicket, type StaffPresence, type TicketStatus } from '@clinic-hub/protocol';
import { openChatSocket } from '../lib/chat-connection.js';
import { mountChatPanel, type ChatPanel } from '../lib/chat-panel.js';
import { CHAT_TEXT, presenceSummary, roleText } from '../lib/chat-text.js';
import { keepTokenFresh, openQueueSocket, showConnection } from '../lib/connection.js';
import { consultRequest, openConsultPage, openConsultSocket, patientPagePath, type ConsultSocket } from '../lib/consult-hub.js';
import { CONSULT_TEXT } from '../lib/consult-text.js';
import { bilingual, byId, h } from '../lib/dom.js';
import { followQueue } from '../lib/follow-queue.js';
import { ERROR_TEXT_JA, STATUS_TEXT, TEXT, aheadText, both, goToRoomText, minutesText, type Bilingual } from '../lib/i18n.js';
import { pageToken, showFatal } from '../lib/page.js';
import { Announcer, soundButton } from '../lib/sound.js';
import { followStaffPresence } from '../lib/staff-presence.js';
import { decodeToken, tokenFromFragment } from '../lib/token.js';
import { NOTICE_TEXT, rememberTicketToken, restoreTicketToken, savedState, saveState, startPatientNotices, type SavedState } from '../lib/ticket-notices.js';

const VIBRATION_PATTERN = [400, 200, 400, 200, 400];

/** What the page knows of its ticket. The follower forgets tickets once they end, so the page keeps its own. */
type Known =
  | { kind: 'loading' }
  | { kind: 'ticket'; ticket: PublicTicket }
  /** Not in the queue: ended while this page was away (`last` is what it was before), or never seen. */
  | { kind: 'gone'; last: PublicTicket | null };

/** The ticket's video consultation (online departments), as the hub last told this page. */
type ConsultState = { kind: 'none' } | { kind: 'admitted'; admitted: ConsultAdmitted } | { kind: 'ended'; consult: string };

// The installed app starts at /ticket without a token: the one this phone was given is used.
restoreTicketToken();
const access = pageToken(['patient']);
if (access) {
  if (access.info.ticket) start(access.token, access.info.ticket);
  else showFatal(TEXT.wrongTokenRole);
}

function start(token: string, ticketId: string): void {
  const socket = openQueueSocket(token);
  showConnection(socket, token);

  const announcer = new Announcer();
  byId('sound-slot').replaceChildren(soundButton(announcer));
  rememberTicketToken(token);
  showSaved(savedState(ticketId));
  const notices = startPatientNotices(token, () => navigator.vibrate?.(VIBRATION_PATTERN));

  let known: Known = { kind: 'loading' };
  const appliedSeqs: number[] = [];
  let alerts = 0;
  let callPending = false;
  let consultState: ConsultState = { kind: 'none' };
  let consultSocket: ConsultSocket | null = null;
  let joinError: string | null = null;

  const follower = followQueue(socket, {
    onSnapshot(snapshot) {
      const ticket = snapshot.tickets.find((t) => t.id === ticketId);
      if (ticket) known = { kind: 'ticket', ticket };
      else known = { kind: 'gone', last: known.kind === 'ticket' ? known.ticket : known.kind === 'gone' ? known.last : null };
    },
    onEvent(event) {
      appliedSeqs.push(event.seq);
      if (event.ticket.id !== ticketId) return;
      known = { kind: 'ticket', ticket: event.ticket };
      if (event.type === 'ticket.called' || event.type === 'ticket.recalled') callPending = true;
    },
    onChange() {
      // After a resync the call may already be over (the patient went in): alert only while it stands.
      if (callPending && known.kind === 'ticket' && known.ticket.status === 'called') {
        alerts += 1;
        announcer.announce();
        navigator.vibrate?.(VIBRATION_PATTERN);
      }
      callPending = false;
      render();
    },
  });

  /** The chat, and the timezone its times were last drawn in: messages drawn before the clinic's was known are drawn again. */
  let chat: ChatPanel | null = null;
  let chatTimeZone: string | null = null;

  function render(): void {
    const clinic = follower.clinic;
    if (clinic) byId('clinic-name').replaceChildren(bilingual(clinic.name));
    if (chat && clinic && clinic.timezone !== chatTimeZone) {
      chatTimeZone = clinic.timezone;
      chat.refresh();
    }
    if (known.kind === 'loading') return;
    byId('saved-state').hidden = true;
    const ticket = known.kind === 'ticket' ? known.ticket : known.last;
    byId('number').textContent = ticket?.number ?? '—';
    const dept = ticket ? clinic?.departments.find((d) => d.id === ticket.dept) : undefined;
    byId('dept').replaceChildren(dept ? bilingual(dept.name, 'inline') : '');
    if (dept?.online && known.kind === 'ticket') followConsultation();
    renderConsult(dept);
    const status = byId('status');
    if (known.kind === 'gone') {
      status.dataset.status = 'gone';
      status.replaceChildren(message(known.last ? TEXT.ticketEnded : TEXT.ticketUnknown));
      document.title = both(TEXT.ticketEnded);
      if (ticket) saveState(ticketId, { number: ticket.number, dept: dept?.name ?? null, status: TEXT.ticketEnded, detail: null, savedAt: Date.now() });
      return;
    }
    status.dataset.status = known.ticket.status;
    status.replaceChildren(...statusContent(known.ticket));
    document.title = `${known.ticket.number} · ${both(STATUS_TEXT[known.ticket.status])}`;
    const position = known.ticket.status === 'waiting' ? follower.positionOf(known.ticket.id) : null;
    saveState(ticketId, {
      number: known.ticket.number,
      dept: dept?.name ?? null,
      status: STATUS_TEXT[known.ticket.status],
      detail: position ? (position.ahead === 0 ? TEXT.youAreNext : aheadText(position.ahead)) : null,
      savedAt: Date.now(),
    });
  }

  /** What the page showed last time, until the hub answers (offline: for as long as it is offline). */
  function showSaved(saved: SavedState | null): void {
    if (!saved) return;
    byId('number').textContent = saved.number;
    byId('dept').replaceChildren(saved.dept ? bilingual(saved.dept, 'inline') : '');
    const status = byId('status');
    status.dataset.status = 'saved';
    status.replaceChildren(h('p', { class: 'status-label' }, bilingual(saved.status, 'inline')), ...(saved.detail ? [h('p', { class: 'ahead' }, bilingual(saved.detail))] : []));
    const time = new Date(saved.savedAt).toLocaleTimeString('ja-JP', { hour: '2-digit', minute: '2-digit' });
    const note = byId('saved-state');
    note.hidden = false;
    note.replaceChildren(bilingual({ ja: `${NOTICE_TEXT.savedAt.ja} ${time}`, en: `${NOTICE_TEXT.savedAt.en} ${time}` }, 'inline'));
  }

  function statusContent(ticket: PublicTicket): Node[] {
    const label = h('p', { class: 'status-label' }, bilingual(STATUS_TEXT[ticket.status], 'inline'));
    const online = isOnline(follower.clinic, ticket);
    switch (ticket.status) {
      case 'waiting': {
        const position = follower.positionOf(ticket.id);
        const hint = online ? [h('p', { class: 'online-hint' }, bilingual(CONSULT_TEXT.onlineWaiting))] : [];
        if (!position) return [label, ...hint];
        return [
          label,
          h('p', { class: 'ahead' }, bilingual(position.ahead === 0 ? TEXT.youAreNext : aheadText(position.ahead))),
          h('p', { class: 'wait' }, bilingual(TEXT.estimatedWait, 'inline'), h('strong', {}, bilingual(minutesText(position.waitMinutes)))),
          ...hint,
        ];
      }
      case 'called': {
        // Seen from home: no room to walk to; the join button below is the way in, once the admission's pass is here.
        if (online) return [label, message(consultState.kind === 'admitted' ? CONSULT_TEXT.readyDetail : CONSULT_TEXT.preparing)];
        const room = ticket.room ? follower.roomName(ticket.room) : null;
        return [label, h('p', { class: 'go-to-room' }, bilingual(goToRoomText(room ?? { ja: ticket.room ?? '', en: ticket.room ?? '' })))];
      }
      default:
        return [label, message(ENDING_TEXT[ticket.status])];
    }
  }

  /** An online department's ticket keeps a /consult connection: the doctor's admission arrives on it with a room pass. */
  function followConsultation(): void {
    if (consultSocket) return;
    const socket = openConsultSocket(token);
    consultSocket = socket;
    keepTokenFresh(socket, token);
    socket.on('consult:admitted', (admitted) => {
      if (admitted.consultation.ticket !== ticketId) return;
      consultState = { kind: 'admitted', admitted };
      joinError = null;
      render();
    });
    socket.on('consult:ended', (ended) => {
      if (ended.ticket !== ticketId) return;
      consultState = { kind: 'ended', consult: ended.consult };
      render();
    });
  }

  let consultShown = '';
  function renderConsult(dept: PublicClinic['departments'][number] | undefined): void {
    const section = byId('consult');
    const active = known.kind === 'ticket' && (known.ticket.status === 'called' || known.ticket.status === 'in_consultation');
    // Other patients' queue changes re-render the page: keep the button as it is unless what it shows changed.
    const shown = JSON.stringify([dept?.online, consultState, active, joinError]);
    if (shown === consultShown) return;
    consultShown = shown;
    if (!dept?.online || consultState.kind === 'none' || (consultState.kind === 'admitted' && !active)) {
      section.hidden = true;
      section.replaceChildren();
      return;
    }
    section.hidden = false;
    section.dataset.state = consultState.kind;
    if (consultState.kind === 'ended') {
      section.replaceChildren(message(CONSULT_TEXT.ended));
      return;
    }
    const button = h('button', { type: 'button', class: 'join-consult', id: 'join-consult' }, bilingual(CONSULT_TEXT.join, 'inline'));
    button.addEventListener('click', () => void join(button));
    section.replaceChildren(
      h('h2', {}, bilingual(CONSULT_TEXT.ready)),
      button,
      h('p', { class: 'join-hint' }, bilingual(CONSULT_TEXT.joinHint)),
      ...(joinError ? [h('p', { class: 'join-error', role: 'alert' }, joinError)] : []),
    );
  }

  /** A fresh pass on every press (the pushed one may have expired), then the consultation page in a new tab. */
  async function join(button: HTMLButtonElement): Promise<void> {
    const socket = consultSocket;
    if (!socket) return;
    button.disabled = true;
    try {
      const error = await openConsultPage(async () => {
        const ack = await consultRequest(socket, 'consult:join', {});
        return ack.ok ? { ok: true, path: patientPagePath(ack.pass, tokenFromFragment() ?? token, ticketId) } : { ok: false, error: ack.error };
      });
      joinError = error ? `${error.code} ${ERROR_TEXT_JA[error.code] ?? ''} ${error.message}` : null;
      if (error?.code === 'CONSULT_ENDED' && consultState.kind === 'admitted') consultState = { kind: 'ended', consult: consultState.admitted.consultation.id };
    } catch {
      joinError = both(TEXT.noResponse);
    }
    button.disabled = false;
    render();
  }

  chat = startChat(token, ticketId, () => follower.clinic?.timezone ?? null);

  Object.defineProperty(window, '__clinicHub', {
    value: Object.freeze({
      get appliedSeqs() {
        return [...appliedSeqs];
      },
      get alerts() {
        return alerts;
      },
      get notices() {
        return notices.shown.map((notice) => ({ id: notice.id, kind: notice.kind, title: notice.title }));
      },
      get consult() {
        return consultState.kind === 'admitted' ? { state: 'admitted', id: consultState.admitted.consultation.id } : { state: consultState.kind };
      },
    }),
  });
}

const ENDING_TEXT: Record<Exclude<TicketStatus, 'waiting' | 'called'>, Bilingual> = {
  in_consultation: TEXT.inConsultation,
  done: TEXT.done,
  cancelled: TEXT.cancelled,
  no_show: TEXT.noShow,
};

const message = (text: Bilingual) => h('p', { class: 'message' }, bilingual(text));

const isOnline = (clinic: PublicClinic | null, ticket: PublicTicket) => clinic?.departments.find((d) => d.id === ticket.dept)?.online === true;

/**
 * The patient's own thread with the clinic's staff (created on first use),
 * and whether staff are available. "No staff available" is said only once
 * the patient has written: on an empty chat it would only discourage them.
 */
function startChat(token: string, ticketId: string, timeZone: () => string | null): ChatPanel {
  const socket = openChatSocket(token);
  keepTokenFresh(socket, token);
  const box = byId('chat-box');
  const presenceLine = byId('chat-presence');
  const self = decodeToken(token)?.sub ?? `patient:${ticketId}`;
  let staff: ReadonlyMap<string, StaffPresence> = new Map();
  let written = false;
  const renderPresence = () => {
    const available = [...staff.values()].some((p) => p.status === 'online');
    const anyone = [...staff.values()].some((p) => p.status !== 'offline');
    presenceLine.dataset.available = String(available);
    presenceLine.hidden = !anyone && !written;
    presenceLine.replaceChildren(presenceLine.hidden ? '' : bilingual(presenceSummary(staff.values()), 'inline'));
  };
  followStaffPresence(socket, (current) => {
    staff = current;
    renderPresence();
  });
  const panel = mountChatPanel({
    socket,
    threadId: patientThreadId(ticketId),
    title: CHAT_TEXT.chatWithClinic,
    self: { sub: self, role: 'patient' },
    token: () => tokenFromFragment() ?? token,
    senderName: (_member, role) => roleText(role),
    timeZone,
    onChange: (follower) => {
      const wrote = follower.messages.some((m) => m.sender === self);
      if (wrote !== written) {
        written = wrote;
        renderPresence();
      }
    },
  });
  byId('chat-slot').replaceChildren(panel.element);
  socket.on('connect', () => (box.hidden = false));
  return panel;
}
