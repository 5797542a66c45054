/**
 * The waiting-room display: current calls in very large type, the next
 * tickets with their estimated waits and the wait of a new check-in per
 * department, a clock and announcements, made
 * for a TV of any size (1280×720 to 3840×2160, landscape or portrait). After
 * every change the type of each box is fitted to the box (display.css,
 * src/lib/fit.ts), so nothing is ever clipped. It only ever receives
 * PublicTicket, which has no field for a name, and shows nothing else about
 * patients.
 */
import type { Announcement, PublicClinic, PublicTicket, QueueEvent } from '@clinic-hub/protocol';
import { openQueueSocket, showConnection } from '../lib/connection.js';
import { bilingual, byId, h } from '../lib/dom.js';
import { fitBox } from '../lib/fit.js';
import { breakable } from '../lib/line-breaks.js';
import { followQueue } from '../lib/follow-queue.js';
import { clinicClock, spokenCall } from '../lib/format.js';
import { TEXT, minutesText, shortMinutesText } from '../lib/i18n.js';
import { pageToken } from '../lib/page.js';
import { Announcer, soundButton } from '../lib/sound.js';

/** How many calls fit on the board: the latest one large, the rest below it. */
const MAX_CALLS_SHOWN = 6;
const NEXT_TICKETS_SHOWN = 5;
/** The smallest scale of each kind of box: below it the next numbers go, and the 14 px floor holds anyway. */
const MIN_FIT = { clinic: 0.35, call: 0.3, dept: 0.3, announcement: 0.3 };
/** A call stays highlighted (blinking) this long after it is made. */
const FRESH_CALL_MS = 12_000;

// Only display tokens: a token that can act on the queue must never sit on a public screen.
const access = pageToken(['display']);
if (access) start(access.token);

function start(token: string): void {
  const socket = openQueueSocket(token);
  showConnection(socket, token);

  const announcer = new Announcer();
  byId('sound-slot').replaceChildren(soundButton(announcer));

  const appliedSeqs: number[] = [];
  const announcedSeqs: number[] = [];
  const calledAt = new Map<string, number>();
  /** Calls applied since the last change was shown, latest per ticket: one live event, or all that a resync replayed. */
  const callsToAnnounce = new Map<string, QueueEvent>();
  let synced = false;

  const follower = followQueue(socket, {
    onEvent(event) {
      appliedSeqs.push(event.seq);
      if (event.type === 'ticket.called' || event.type === 'ticket.recalled') {
        calledAt.set(event.ticket.id, performance.now());
        callsToAnnounce.set(event.ticket.id, event);
      }
    },
    onChange() {
      announceCalls();
      render();
    },
    onSynced() {
      synced = true;
      document.documentElement.dataset.synced = 'true';
    },
  });

  /**
   * After an outage the replay may hold calls that are already over: a
   * patient who was called and went in while the screen was away needs no
   * announcement. So only tickets still called are announced, once each.
   */
  function announceCalls(): void {
    const events = [...callsToAnnounce.values()].sort((a, b) => a.seq - b.seq);
    callsToAnnounce.clear();
    for (const event of events) {
      if (follower.tickets.get(event.ticket.id)?.status !== 'called') continue;
      announcedSeqs.push(event.seq);
      const room = event.ticket.room ? follower.roomName(event.ticket.room) : null;
      const languages = follower.clinic?.spokenCallLanguages ?? ['ja', 'en'];
      announcer.announce(room ? spokenCall(event.ticket.number, room, event.type === 'ticket.recalled', languages) : []);
    }
  }

  let clinicShown: PublicClinic | null = null;
  let freshTimer: ReturnType<typeof setTimeout> | undefined;
  function render(): void {
    const clinic = follower.clinic;
    if (!clinic) return;
    if (clinic !== clinicShown) {
      clinicShown = clinic;
      byId('clinic-name').replaceChildren(bilingual(clinic.name, '', { breakable: true }));
      document.title = `${clinic.name.ja} / ${clinic.name.en}`;
      startClock(clinic.timezone);
    }
    renderCalls(follower.calls().slice(0, MAX_CALLS_SHOWN));
    const departments = byId('departments');
    departments.dataset.count = String(clinic.departments.length);
    departments.parentElement!.dataset.departments = String(clinic.departments.length);
    departments.replaceChildren(
      ...clinic.departments.map((dept) =>
        departmentCard(dept.name, follower.waiting(dept.id), follower.typicalWaitMinutes(dept.id), (id) => follower.positionOf(id)?.waitMinutes ?? 0),
      ),
    );
    fitDisplay();
  }

  function renderCalls(calls: PublicTicket[]): void {
    const list = byId('calls');
    if (calls.length === 0) {
      list.replaceChildren(h('li', { class: 'no-calls' }, bilingual(TEXT.noCalls, '', { breakable: true })));
      return;
    }
    const now = performance.now();
    let untilFreshEnds = Infinity;
    list.replaceChildren(
      ...calls.map((ticket, index) => {
        const room = ticket.room ? follower.roomName(ticket.room) : null;
        const item = h(
          'li',
          { class: index === 0 ? 'call latest' : 'call', 'data-ticket': ticket.number },
          h('span', { class: 'ticket-number' }, ticket.number),
          h('span', { class: 'arrow', 'aria-hidden': 'true' }, '→'),
          bilingual(room ?? { ja: ticket.room ?? '', en: ticket.room ?? '' }, 'room', { breakable: true }),
        );
        const since = now - (calledAt.get(ticket.id) ?? -Infinity);
        if (since < FRESH_CALL_MS) {
          item.classList.add('fresh');
          // Re-rendering must not restart the blink: continue it where it was.
          item.style.animationDelay = `-${Math.round(since)}ms`;
          untilFreshEnds = Math.min(untilFreshEnds, FRESH_CALL_MS - since);
        }
        return item;
      }),
    );
    clearTimeout(freshTimer);
    if (untilFreshEnds !== Infinity) freshTimer = setTimeout(render, untilFreshEnds + 50);
  }

  socket.on('queue:announcement', (announcement) => showAnnouncement(announcement));
  // A TV may be turned, or the window resized: lay out again (next numbers dropped for a small card may fit now).
  let relayout = 0;
  new ResizeObserver(() => {
    cancelAnimationFrame(relayout);
    relayout = requestAnimationFrame(() => {
      render();
      fitDisplay();
    });
  }).observe(document.documentElement);

  Object.defineProperty(window, '__clinicHub', {
    value: Object.freeze({
      get appliedSeqs() {
        return [...appliedSeqs];
      },
      get announcedSeqs() {
        return [...announcedSeqs];
      },
      get synced() {
        return synced;
      },
      get soundBlocked() {
        return announcer.blocked;
      },
    }),
  });
}

/** A department: its next tickets, each with the estimate its patient's phone shows, how many wait, and the wait of a new check-in. */
function departmentCard(name: { ja: string; en: string }, waiting: PublicTicket[], typicalWait: number, waitOf: (ticketId: string) => number): HTMLElement {
  const next = waiting.slice(0, NEXT_TICKETS_SHOWN);
  return h(
    'section',
    { class: 'dept' },
    h(
      'div',
      { class: 'dept-body' },
      h('h3', {}, bilingual(name, '', { breakable: true })),
      h(
        'dl',
        { class: 'facts' },
        h('div', {}, h('dt', {}, bilingual(TEXT.waitingCount)), h('dd', {}, h('span', { class: 'count' }, String(waiting.length)))),
        h('div', {}, h('dt', {}, bilingual(TEXT.typicalWait)), h('dd', {}, bilingual(minutesText(typicalWait)))),
      ),
      next.length > 0
        ? h(
            'div',
            { class: 'upcoming' },
            h('div', { class: 'label' }, bilingual(TEXT.nextUp)),
            h(
              'ol',
              { class: 'next' },
              ...next.map((t) =>
                h('li', { class: t.priority === 'urgent' ? 'urgent' : '', 'data-ticket': t.number }, h('span', { class: 'number' }, t.number), bilingual(shortMinutesText(waitOf(t.id)), 'wait')),
              ),
            ),
          )
        : h('p', { class: 'nobody' }, bilingual(TEXT.nobodyWaiting)),
    ),
  );
}

/**
 * Fits every box of text to its box: the clinic's name, each call, each
 * department card (dropping its later next numbers, then the list, when the
 * smallest type still does not fit: the count and the wait stay) and the
 * announcement.
 */
function fitDisplay(): void {
  const clinic = document.getElementById('clinic-name');
  if (clinic) fitBox(clinic, { min: MIN_FIT.clinic });
  for (const call of document.querySelectorAll<HTMLElement>('#calls .call')) fitBox(call, { min: MIN_FIT.call });
  for (const card of document.querySelectorAll<HTMLElement>('#departments .dept')) {
    fitBox(card, {
      min: MIN_FIT.dept,
      drop: () => {
        const chips = card.querySelectorAll('.next li');
        if (chips.length > 1) chips[chips.length - 1]!.remove();
        else {
          const upcoming = card.querySelector('.upcoming');
          if (!upcoming) return false;
          upcoming.remove();
        }
        return true;
      },
    });
  }
  const banner = document.getElementById('announcement');
  if (banner && !banner.hidden) fitBox(banner, { min: MIN_FIT.announcement });
}

let clockTimer: ReturnType<typeof setTimeout> | undefined;
function startClock(timezone: string): void {
  const clock = clinicClock(timezone);
  const tick = () => {
    const now = new Date();
    const { time, dateJa, dateEn } = clock(now);
    byId('clock-time').textContent = time;
    byId('clock-date').replaceChildren(bilingual({ ja: dateJa, en: dateEn }));
    clearTimeout(clockTimer);
    clockTimer = setTimeout(tick, 1000 - (now.getTime() % 1000) + 5);
  };
  tick();
}

let announcementTimer: ReturnType<typeof setTimeout> | undefined;
function showAnnouncement(announcement: Announcement): void {
  const banner = byId('announcement');
  banner.replaceChildren(
    h('span', { class: 'label' }, bilingual(TEXT.announcement)),
    h('p', { class: 'text' }, h('span', { class: 'ja', lang: 'ja' }, breakable(announcement.text.ja)), h('span', { class: 'en', lang: 'en' }, announcement.text.en)),
  );
  banner.hidden = false;
  fitDisplay();
  clearTimeout(announcementTimer);
  announcementTimer = setTimeout(() => {
    banner.hidden = true;
    fitDisplay();
  }, announcement.durationSeconds * 1000);
}
