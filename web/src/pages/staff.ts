/**
 * The staff console: check patients in, call the next one to a room, and act
 * on called tickets (recall, start, skip, done, cancel). Every action carries
 * a fresh requestId, so a retry after a lost ack never acts twice. Patient
 * names are fetched one at a time on request (`queue:patient`, audited by the
 * hub) and hidden again after a minute. Each ticket's chat with its patient
 * opens in the staff chat page. In online departments a clinician admits a
 * patient to a video consultation instead of calling them to a room, and the
 * consultation page opens with their room pass.
 */
import { QUEUE_EVENT_ROLES, patientThreadId, type ProtocolError, type PublicClinic, type PublicTicket, type Role } from '@clinic-hub/protocol';
import { keepTokenFresh, openQueueSocket, request, sendAction, showConnection, type QueueSocket } from '../lib/connection.js';
import { admitPatient, clinicianPagePath, consultRequest, openConsultPage, openConsultSocket, type ConsultSocket } from '../lib/consult-hub.js';
import { CONSULT_TEXT } from '../lib/consult-text.js';
import { bilingual, byId, h, replaceChildren } from '../lib/dom.js';
import { followQueue } from '../lib/follow-queue.js';
import { ERROR_TEXT_JA, PRIORITY_TEXT, STATUS_TEXT, TEXT, both, minutesText, type Bilingual } from '../lib/i18n.js';
import { showMessage } from '../lib/messages.js';
import { pageToken } from '../lib/page.js';
import { patientQr, printSlip, SLIP_TEXT, type SlipFacts } from '../lib/ticket-slip.js';
import { tokenFromFragment } from '../lib/token.js';

const NAME_SHOWN_MS = 60_000;
const CANCEL_ARMED_MS = 4000;
const CALL_ROOM_KEY = 'clinic-hub:staff:call-room';

type TicketAction = 'recall' | 'start' | 'skip' | 'done' | 'cancel';
type ConsultAction = 'admit' | 'join-video' | 'end-video';
const CONSULT_ACTION_TEXT: Record<ConsultAction, Bilingual> = {
  admit: CONSULT_TEXT.admit,
  'join-video': CONSULT_TEXT.joinVideo,
  'end-video': CONSULT_TEXT.endVideo,
};
/** In online departments, besides the queue's actions. */
const CONSULT_ACTIONS_BY_STATUS: Partial<Record<PublicTicket['status'], ConsultAction[]>> = {
  waiting: ['admit'],
  called: ['join-video', 'end-video'],
  in_consultation: ['join-video', 'end-video'],
};
const ACTION_TEXT: Record<TicketAction, Bilingual> = {
  recall: TEXT.recall,
  start: TEXT.start,
  skip: TEXT.skip,
  done: TEXT.finish,
  cancel: TEXT.cancel,
};
/** What the hub allows in each state (the queue scripts check it again). */
const ACTIONS_BY_STATUS: Partial<Record<PublicTicket['status'], TicketAction[]>> = {
  called: ['recall', 'start', 'skip', 'done', 'cancel'],
  in_consultation: ['done'],
  waiting: ['cancel'],
};

const access = pageToken(['staff', 'doctor', 'admin']);
if (access?.info.role) start(access.token, access.info.role);

function start(token: string, role: Role): void {
  const clinicParam = new URLSearchParams(location.hash.slice(1)).get('clinic');
  const socket = openQueueSocket(token, clinicParam);
  showConnectionAndChatLink(socket, token);
  showPanelsFor(role);
  const c: StaffConsole = { token, role, clinicParam, socket, follower: followQueue(socket, { onChange: () => render(c) }), names: new Map(), cancelArmed: new Map(), clinicShown: null, consultSocket: null };
  byId('departments').addEventListener('click', (event) => onDepartmentsClick(c, event));
  const guardedHere: Guarded = (send) => guarded(c, send);
  wireCheckin(socket, guardedHere, (ticket, patientUrl) => slipFacts(c, ticket, patientUrl));
  wireCallNext(socket, guardedHere, {
    isOnline: (dept) => c.follower.clinic?.departments.find((d) => d.id === dept)?.online === true,
    admitNext: (dept, room) => admitNext(c, dept, room),
  });
  wireAnnounce(socket, guardedHere);
}

/** What the console's parts share: who is signed in, the queue socket and its follower, and what the screen holds. */
interface StaffConsole {
  token: string;
  role: Role;
  /** An admin's clinic (from the fragment); null for a one-clinic token. */
  clinicParam: string | null;
  socket: QueueSocket;
  follower: ReturnType<typeof followQueue>;
  /** Patient names shown on request, each hidden again after NAME_SHOWN_MS. */
  names: Map<string, { name: string | null; timer: ReturnType<typeof setTimeout> }>;
  /** Tickets whose cancel button was pressed once: the second press cancels. */
  cancelArmed: Map<string, ReturnType<typeof setTimeout>>;
  clinicShown: PublicClinic | null;
  /** Opened once the clinic turns out to have an online department. */
  consultSocket: ConsultSocket | null;
}

/** The connection indicator and a token kept fresh; the chat link carries the same fragment (the token, refreshed, and an admin's clinic). */
function showConnectionAndChatLink(socket: QueueSocket, token: string): void {
  showConnection(socket, token);
  const chatLink = byId<HTMLAnchorElement>('chat-link');
  chatLink.addEventListener('click', () => (chatLink.href = chatUrl(null)));
}

/** Check-in and announcements only for the roles the hub lets do them. */
function showPanelsFor(role: Role): void {
  byId('checkin-panel').hidden = !QUEUE_EVENT_ROLES['queue:checkin'].includes(role);
  byId('announce-panel').hidden = !QUEUE_EVENT_ROLES['queue:announce'].includes(role);
}

/** Every button in the departments' tables: room switches, chat, handout, video, names, the ticket actions. */
function onDepartmentsClick(c: StaffConsole, event: MouseEvent): void {
  const roomSwitch = (event.target as Element).closest<HTMLButtonElement>('button[data-room-switch]');
  if (roomSwitch?.dataset.roomSwitch) return void switchRoom(c, roomSwitch.dataset.roomSwitch, roomSwitch);
  const button = (event.target as Element).closest<HTMLButtonElement>('button[data-action]');
  const ticketId = button?.dataset.ticket;
  if (!button || !ticketId) return;
  const action = button.dataset.action;
  if (action === 'chat') window.open(chatUrl(patientThreadId(ticketId)), '_blank', 'noopener');
  else if (action === 'handout') void showHandout(c, ticketId, button);
  else if (action === 'admit' || action === 'join-video' || action === 'end-video') void consultAction(c, action, ticketId, button);
  else if (action === 'show-name') void showName(c, ticketId, button);
  else if (action === 'hide-name') hideName(c, ticketId, true);
  else if (action === 'cancel' && !c.cancelArmed.has(ticketId)) {
    // Cancelling cannot be undone: the first press arms the button, the second cancels.
    c.cancelArmed.set(ticketId, setTimeout(() => (c.cancelArmed.delete(ticketId), render(c)), CANCEL_ARMED_MS));
    render(c);
  } else if (action === 'recall' || action === 'start' || action === 'skip' || action === 'done' || action === 'cancel') {
    clearTimeout(c.cancelArmed.get(ticketId));
    c.cancelArmed.delete(ticketId);
    void ticketAction(c, action, ticketId, button);
  }
}

/** The clinician's consultation page: their pass, and their hub token for the AI panel. */
function clinicianPage(c: StaffConsole, pass: { mediaUrl: string; token: string }, ticketId: string): string {
  return clinicianPagePath(pass, tokenFromFragment() ?? c.token, ticketId, c.clinicParam);
}

function render(c: StaffConsole): void {
  const clinic = c.follower.clinic;
  if (!clinic) return;
  if (clinic !== c.clinicShown) {
    c.clinicShown = clinic;
    byId('clinic-name').replaceChildren(bilingual(clinic.name, 'inline'));
    fillDepartmentSelects(clinic);
    if (!c.consultSocket && clinic.departments.some((d) => d.online)) {
      c.consultSocket = openConsultSocket(c.token, c.clinicParam);
      keepTokenFresh(c.consultSocket, c.token);
    }
  }
  for (const id of c.names.keys()) if (!c.follower.tickets.has(id)) hideName(c, id, false);
  byId('departments').replaceChildren(...clinic.departments.map((dept) => departmentSection(c, dept)));
}

function departmentSection(c: StaffConsole, dept: PublicClinic['departments'][number]): HTMLElement {
  const active = [...c.follower.calls(), ...c.follower.inConsultation()].filter((t) => t.dept === dept.id);
  const waiting = c.follower.waiting(dept.id);
  return h(
    'section',
    { class: 'dept', 'data-dept': dept.id },
    h('h2', {}, bilingual(dept.name, 'inline'), h('span', { class: 'count' }, `${TEXT.waitingCount.ja} ${waiting.length} / ${TEXT.waitingCount.en} ${waiting.length}`)),
    roomSwitches(c, dept),
    h('h3', {}, bilingual(TEXT.callsAndConsultations, 'inline')),
    active.length === 0
      ? h('p', { class: 'empty' }, '—')
      : table(
          [TEXT.number, TEXT.room, TEXT.status, TEXT.patientName, TEXT.actions],
          active.map((t) => [
            h('span', { class: 'number' }, t.number, appointmentBadge(c, t)),
            t.room ? bilingual(c.follower.roomName(t.room) ?? { ja: t.room, en: t.room }, 'inline') : '',
            h('span', { class: `status status-${t.status}` }, bilingual(STATUS_TEXT[t.status], 'inline')),
            nameCell(c, t),
            actionButtons(c, t),
          ]),
          'calls',
        ),
    h('h3', {}, bilingual(TEXT.waitingList, 'inline')),
    waiting.length === 0
      ? h('p', { class: 'empty' }, bilingual(TEXT.nobodyWaiting, 'inline'))
      : table(
          [TEXT.number, TEXT.priority, TEXT.estimate, TEXT.patientName, TEXT.actions],
          waiting.map((t) => [
            h('span', { class: 'number' }, t.number, appointmentBadge(c, t)),
            h('span', { class: `priority priority-${t.priority}` }, bilingual(PRIORITY_TEXT[t.priority], 'inline')),
            bilingual(minutesText(c.follower.positionOf(t.id)?.waitMinutes ?? 0), 'inline'),
            nameCell(c, t),
            actionButtons(c, t),
          ]),
          'waiting',
        ),
  );
}

/**
 * The department's rooms, open or closed (the clinic's settings): only open rooms count in the wait
 * estimates every screen shows. Staff and admins switch them; a doctor sees them.
 */
function roomSwitches(c: StaffConsole, dept: PublicClinic['departments'][number]): HTMLElement {
  const mayChange = c.role === 'staff' || c.role === 'admin';
  return h(
    'ul',
    { class: 'rooms', 'aria-label': both(TEXT.roomsOpen) },
    ...dept.rooms.map((room) => {
      const state = room.open ? TEXT.roomOpen : TEXT.roomClosed;
      const label = `${both(room.name)}: ${both(state)}`;
      return h(
        'li',
        { class: `room ${room.open ? 'open' : 'closed'}`, 'data-room': room.id },
        mayChange
          ? h(
              'button',
              { type: 'button', class: 'room-switch', role: 'switch', 'aria-checked': room.open ? 'true' : 'false', 'data-room-switch': room.id, title: label },
              bilingual(room.name, 'inline'),
              h('span', { class: 'state' }, both(state)),
            )
          : h('span', { class: 'room-state' }, bilingual(room.name, 'inline'), h('span', { class: 'state' }, both(state))),
      );
    }),
  );
}

async function switchRoom(c: StaffConsole, roomId: string, button: HTMLButtonElement): Promise<void> {
  const open = button.getAttribute('aria-checked') !== 'true';
  button.disabled = true;
  const clinic = c.follower.clinic?.id ?? c.clinicParam ?? '';
  try {
    const response = await fetch(`/api/clinics/${encodeURIComponent(clinic)}/rooms/${encodeURIComponent(roomId)}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${tokenFromFragment() ?? c.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ open }),
    });
    const body = (await response.json().catch(() => null)) as { error?: ProtocolError } | null;
    if (!response.ok) showError(body?.error ?? { code: 'INTERNAL', message: `HTTP ${response.status}` }, both(open ? TEXT.openRoom : TEXT.closeRoom));
    // The new state arrives as queue:clinic (every screen of the clinic hears it) and redraws the switch.
  } catch {
    showMessage('error', both(TEXT.notConnected));
  } finally {
    button.disabled = false;
  }
}

/**
 * An appointment's arrival: its time, and whether it came too late to wait at
 * that time (then it waits as a walk-in: its order is not its time).
 */
function appointmentBadge(c: StaffConsole, ticket: PublicTicket): HTMLElement | null {
  if (ticket.appointmentAt === undefined) return null;
  const time = new Intl.DateTimeFormat('ja-JP', { timeZone: c.follower.clinic?.timezone ?? 'Asia/Tokyo', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(ticket.appointmentAt);
  const late = ticket.issuedAt > ticket.appointmentAt && ticket.order !== ticket.appointmentAt;
  return h(
    'span',
    { class: `appointment-badge${late ? ' late' : ''}`, 'data-appointment': String(ticket.appointmentAt) },
    bilingual({ ja: `予約 ${time}${late ? '（遅刻）' : ''}`, en: `Appt ${time}${late ? ' (late)' : ''}` }, 'inline'),
  );
}

function table(headings: Bilingual[], rows: (Node | string)[][], className: string): HTMLTableElement {
  return h(
    'table',
    { class: className },
    h('thead', {}, h('tr', {}, ...headings.map((heading) => h('th', { scope: 'col' }, bilingual(heading, 'inline'))))),
    h('tbody', {}, ...rows.map((cells) => h('tr', {}, ...cells.map((cell) => h('td', {}, cell))))),
  );
}

function nameCell(c: StaffConsole, ticket: PublicTicket): Node {
  const shown = c.names.get(ticket.id);
  if (!shown) return h('button', { type: 'button', class: 'link', 'data-action': 'show-name', 'data-ticket': ticket.id }, both(TEXT.showName));
  return h(
    'span',
    { class: 'patient-name' },
    shown.name ?? both(TEXT.noName),
    ' ',
    h('button', { type: 'button', class: 'link', 'data-action': 'hide-name', 'data-ticket': ticket.id }, both(TEXT.hideName)),
  );
}

function actionButtons(c: StaffConsole, ticket: PublicTicket): Node {
  const online = c.follower.clinic?.departments.find((d) => d.id === ticket.dept)?.online === true;
  return h(
    'div',
    { class: 'actions' },
    h('button', { type: 'button', class: 'action action-chat', 'data-action': 'chat', 'data-ticket': ticket.id }, both(TEXT.chat)),
    ticket.status === 'waiting'
      ? h('button', { type: 'button', class: 'action action-handout', 'data-action': 'handout', 'data-ticket': ticket.id }, both(SLIP_TEXT.qr))
      : null,
    ...(online ? (CONSULT_ACTIONS_BY_STATUS[ticket.status] ?? []) : []).map((action) =>
      h('button', { type: 'button', class: `action action-${action}`, 'data-action': action, 'data-ticket': ticket.id }, both(CONSULT_ACTION_TEXT[action])),
    ),
    ...(ACTIONS_BY_STATUS[ticket.status] ?? []).map((action) => {
      const armed = action === 'cancel' && c.cancelArmed.has(ticket.id);
      return h(
        'button',
        { type: 'button', class: `action action-${action}${armed ? ' armed' : ''}`, 'data-action': action, 'data-ticket': ticket.id },
        armed ? both(TEXT.confirmCancel) : both(ACTION_TEXT[action]),
      );
    }),
  );
}

async function ticketAction(c: StaffConsole, action: TicketAction, ticketId: string, button: HTMLButtonElement): Promise<void> {
  const number = c.follower.tickets.get(ticketId)?.number ?? ticketId;
  button.disabled = true;
  const ack = await guarded(c, () => sendAction(c.socket, `queue:${action}`, { ticketId }));
  button.disabled = false;
  if (!ack) return;
  if (ack.ok) showTicketOutcome(ack.event.ticket, ack.replayed);
  else showError(ack.error, `${number} ${both(ACTION_TEXT[action])}`);
}

async function consultAction(c: StaffConsole, action: ConsultAction, ticketId: string, button: HTMLButtonElement): Promise<void> {
  const socket = c.consultSocket;
  const ticket = c.follower.tickets.get(ticketId);
  if (!socket || !ticket) return;
  if (!socket.connected) {
    showMessage('error', both(TEXT.notConnected));
    return;
  }
  const what = `${ticket.number} ${both(CONSULT_ACTION_TEXT[action])}`;
  button.disabled = true;
  try {
    if (action === 'end-video') {
      const ack = await consultRequest(socket, 'consult:end', { ticketId });
      if (ack.ok) showMessage('ok', `${ticket.number}: ${both(CONSULT_TEXT.videoEnded)}`);
      else showError(ack.error, what);
      return;
    }
    const error = await openConsultPage(async () => {
      if (action === 'join-video') {
        const ack = await consultRequest(socket, 'consult:join', { ticketId });
        return ack.ok ? { ok: true, path: clinicianPage(c, ack.pass, ticketId) } : ack;
      }
      const ack = await admitPatient(socket, { dept: ticket.dept, room: roomFor(c, ticket.dept), ticketId });
      return ack.ok ? { ok: true, path: clinicianPage(c, ack.pass, ticketId) } : ack;
    });
    if (error) showError(error, what);
    else if (action === 'admit') showMessage('ok', `${ticket.number}: ${both(CONSULT_TEXT.admitted)}`);
  } catch {
    showMessage('error', both(TEXT.noResponse));
  } finally {
    button.disabled = false;
  }
}

/** The room chosen in the call form when it is on this department, else the department's first. */
function roomFor(c: StaffConsole, deptId: string): string {
  const callDept = byId<HTMLSelectElement>('call-dept').value;
  const room = byId<HTMLSelectElement>('call-room').value;
  if (callDept === deptId && room) return room;
  return c.follower.clinic?.departments.find((d) => d.id === deptId)?.rooms[0]?.id ?? room;
}

/** The call form on an online department admits the next patient to video. */
async function admitNext(c: StaffConsole, dept: string, room: string): Promise<void> {
  const socket = c.consultSocket;
  if (!socket?.connected) {
    showMessage('error', both(TEXT.notConnected));
    return;
  }
  const error = await openConsultPage(async () => {
    const ack = await admitPatient(socket, { dept, room });
    if (ack.ok) showMessage('ok', `${ack.consultation.number}: ${both(CONSULT_TEXT.admitted)}`);
    return ack.ok ? { ok: true, path: clinicianPage(c, ack.pass, ack.consultation.ticket) } : ack;
  }).catch(() => {
    showMessage('error', both(TEXT.noResponse));
    return null;
  });
  if (error) showError(error, both(CONSULT_TEXT.admitNext));
}

async function showName(c: StaffConsole, ticketId: string, button: HTMLButtonElement): Promise<void> {
  button.disabled = true;
  const ack = await guarded(c, () => request(c.socket, 'queue:patient', { ticketId }));
  button.disabled = false;
  if (!ack) return;
  if (!ack.ok) {
    showError(ack.error, both(TEXT.showName));
    return;
  }
  hideName(c, ticketId, false);
  c.names.set(ticketId, { name: ack.patient?.name ?? null, timer: setTimeout(() => hideName(c, ticketId, true), NAME_SHOWN_MS) });
  render(c);
}

function hideName(c: StaffConsole, ticketId: string, rerender: boolean): void {
  clearTimeout(c.names.get(ticketId)?.timer);
  c.names.delete(ticketId);
  if (rerender) render(c);
}

/** Runs a request; a lost connection or a missing ack becomes a visible message instead of an exception. */
async function guarded<T>(c: StaffConsole, send: () => Promise<T>): Promise<T | null> {
  if (!c.socket.connected) {
    showMessage('error', both(TEXT.notConnected));
    return null;
  }
  try {
    return await send();
  } catch {
    showMessage('error', both(TEXT.noResponse));
    return null;
  }
}

/** The facts a slip prints for a ticket, with the estimate as the console shows it now. */
function slipFacts(c: StaffConsole, ticket: PublicTicket, patientUrl: string): SlipFacts | null {
  const clinic = c.follower.clinic;
  const dept = clinic?.departments.find((d) => d.id === ticket.dept);
  if (!clinic || !dept) return null;
  const waitMinutes = c.follower.positionOf(ticket.id)?.waitMinutes ?? c.follower.typicalWaitMinutes(ticket.dept);
  return { clinic: clinic.name, number: ticket.number, dept: dept.name, waitMinutes, patientUrl };
}

/** A waiting ticket's QR code and slip, with a fresh link to the patient's page (`queue:patient-link`). */
async function showHandout(c: StaffConsole, ticketId: string, button: HTMLButtonElement): Promise<void> {
  button.disabled = true;
  const ack = await guarded(c, () => request(c.socket, 'queue:patient-link', { ticketId }));
  button.disabled = false;
  if (!ack) return;
  if (!ack.ok) return showError(ack.error, both(SLIP_TEXT.qr));
  const facts = slipFacts(c, c.follower.tickets.get(ticketId) ?? ack.ticket, ack.patientUrl);
  if (facts) openHandout(facts);
}

type Guarded = <T>(send: () => Promise<T>) => Promise<T | null>;

/** The staff chat page with this page's token (and clinic), opened on a thread when one is given. */
function chatUrl(threadId: string | null): string {
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (threadId) fragment.set('thread', threadId);
  return `/chat#${fragment}`;
}

/** The QR code and the print button of a ticket: under the check-in form, and in the dialog of a waiting ticket. */
function handout(facts: SlipFacts, idPrefix: string): HTMLElement {
  return h(
    'div',
    { class: 'handout', id: `${idPrefix}-handout` },
    h('figure', { class: 'handout-qr', id: `${idPrefix}-qr` }, patientQr(facts.patientUrl)),
    h('button', { type: 'button', class: 'print-slip-button', id: `${idPrefix}-print`, onclick: () => printSlip(facts) }, both(SLIP_TEXT.print)),
  );
}

function openHandout(facts: SlipFacts): void {
  const dialog = byId<HTMLDialogElement>('handout-dialog');
  dialog.replaceChildren(
    h('h2', {}, `${facts.number} · ${both(facts.dept)}`),
    handout(facts, 'ticket'),
    h('form', { method: 'dialog' }, h('button', { type: 'submit', class: 'link', id: 'handout-close' }, both(SLIP_TEXT.close))),
  );
  dialog.showModal();
}

function wireCheckin(socket: QueueSocket, guarded: Guarded, facts: (ticket: PublicTicket, patientUrl: string) => SlipFacts | null): void {
  const form = byId<HTMLFormElement>('checkin-form');
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void (async () => {
      const data = new FormData(form);
      const name = String(data.get('name') ?? '').trim();
      const priority = data.get('priority') === 'urgent' ? 'urgent' : 'normal';
      const submit = byId<HTMLButtonElement>('checkin-submit');
      submit.disabled = true;
      const ack = await guarded(() =>
        sendAction(socket, 'queue:checkin', { dept: String(data.get('dept')), priority, ...(name ? { patient: { name } } : {}) }),
      );
      submit.disabled = false;
      if (!ack) return;
      if (!ack.ok) {
        showError(ack.error, both(TEXT.checkin));
        return;
      }
      byId<HTMLInputElement>('checkin-name').value = '';
      byId<HTMLInputElement>('checkin-name').focus();
      const slip = facts(ack.event.ticket, ack.patientUrl);
      replaceChildren(
        byId('checkin-result'),
        h('div', { class: 'issued' }, bilingual(TEXT.ticketIssued, 'inline'), h('strong', { class: 'number', id: 'issued-number' }, ack.event.ticket.number)),
        h('a', { href: ack.patientUrl, target: '_blank', rel: 'noopener noreferrer', id: 'patient-link' }, both(TEXT.patientPage)),
        slip ? handout(slip, 'issued') : null,
      );
    })();
  });
}

function wireCallNext(socket: QueueSocket, guarded: Guarded, consult: { isOnline(dept: string): boolean; admitNext(dept: string, room: string): Promise<void> }): void {
  const form = byId<HTMLFormElement>('call-form');
  const submit = byId<HTMLButtonElement>('call-submit');
  // An online department's patients are admitted to video rather than called to a room.
  const label = () => {
    const online = consult.isOnline(byId<HTMLSelectElement>('call-dept').value);
    submit.textContent = both(online ? CONSULT_TEXT.admitNext : TEXT.callNext);
    submit.dataset.mode = online ? 'admit' : 'call';
  };
  byId('call-dept').addEventListener('change', label);
  new MutationObserver(label).observe(byId('call-dept'), { childList: true });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void (async () => {
      const dept = byId<HTMLSelectElement>('call-dept').value;
      const room = byId<HTMLSelectElement>('call-room').value;
      localStorage.setItem(CALL_ROOM_KEY, JSON.stringify({ dept, room }));
      if (consult.isOnline(dept)) {
        submit.disabled = true;
        await consult.admitNext(dept, room);
        submit.disabled = false;
        return;
      }
      submit.disabled = true;
      const ack = await guarded(() => sendAction(socket, 'queue:call-next', { dept, room }));
      submit.disabled = false;
      if (!ack) return;
      if (ack.ok) showTicketOutcome(ack.event.ticket, ack.replayed);
      else showError(ack.error, both(TEXT.callNext));
    })();
  });
}

function wireAnnounce(socket: QueueSocket, guarded: Guarded): void {
  const form = byId<HTMLFormElement>('announce-form');
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void (async () => {
      const data = new FormData(form);
      const text = { ja: String(data.get('ja') ?? '').trim(), en: String(data.get('en') ?? '').trim() };
      const ack = await guarded(() => request(socket, 'queue:announce', { text, durationSeconds: Number(data.get('seconds')) }));
      if (!ack) return;
      if (!ack.ok) showError(ack.error, both(TEXT.announcement));
      else {
        showMessage('ok', `${both(TEXT.announcement)}: ${text.ja}`);
        form.reset();
      }
    })();
  });
}

function fillDepartmentSelects(clinic: PublicClinic): void {
  const options = () => clinic.departments.map((d) => h('option', { value: d.id }, `${d.name.ja} / ${d.name.en}`));
  const checkinDept = byId<HTMLSelectElement>('checkin-dept');
  const callDept = byId<HTMLSelectElement>('call-dept');
  const callRoom = byId<HTMLSelectElement>('call-room');
  checkinDept.replaceChildren(...options());
  callDept.replaceChildren(...options());
  const fillRooms = () => {
    const dept = clinic.departments.find((d) => d.id === callDept.value);
    callRoom.replaceChildren(...(dept?.rooms ?? []).map((r) => h('option', { value: r.id }, `${r.name.ja} / ${r.name.en}`)));
  };
  callDept.onchange = fillRooms;
  const saved = savedCallRoom();
  if (saved && clinic.departments.some((d) => d.id === saved.dept)) callDept.value = saved.dept;
  fillRooms();
  if (saved && [...callRoom.options].some((o) => o.value === saved.room)) callRoom.value = saved.room;
}

function savedCallRoom(): { dept: string; room: string } | null {
  try {
    const value = JSON.parse(localStorage.getItem(CALL_ROOM_KEY) ?? 'null') as unknown;
    if (value && typeof value === 'object' && 'dept' in value && 'room' in value) {
      return { dept: String(value.dept), room: String(value.room) };
    }
  } catch {
    // a damaged entry is simply ignored
  }
  return null;
}

function showTicketOutcome(ticket: PublicTicket, replayed: boolean): void {
  const status = STATUS_TEXT[ticket.status];
  const again = replayed ? '（処理済み / already done）' : '';
  showMessage('ok', `${ticket.number}: ${both(status)}${again}`);
}

function showError(error: ProtocolError, what: string): void {
  const ja = ERROR_TEXT_JA[error.code];
  const message = h(
    'span',
    {},
    h('strong', { class: 'code' }, error.code),
    ` ${what} — `,
    ja ? h('span', { lang: 'ja' }, `${ja} `) : null,
    h('span', { lang: 'en' }, error.message),
    error.detail ? h('span', { class: 'detail' }, ` (${error.detail})`) : null,
  );
  showMessage('error', message, error.code);
}
