/**
 * Check-in on the patient's own phone. Opened from the clinic's QR poster
 * (`/checkin#clinic=…&poster=…`: a walk-in, while the clinic is open) or from
 * an appointment reminder's link (`/checkin#clinic=…&code=…`: the arrival of
 * that appointment). The same screens as the kiosk; the ticket then opens on
 * the patient's ticket page, which follows their turn and brings its notices.
 */
import type { SelfCheckinInfo } from '@clinic-hub/protocol';
import { startCheckinFlow } from '../lib/checkin-flow.js';
import { CHECKIN_ERROR_TEXT, CHECKIN_TEXT, fill, nameIn } from '../lib/checkin-text.js';
import { byId, h } from '../lib/dom.js';
import { newRequestId } from '../lib/connection.js';
import { fetchSelfCheckinInfo, postSelfCheckin } from '../lib/self-checkin-api.js';

const params = new URLSearchParams(location.hash.slice(1));
const clinic = params.get('clinic') ?? '';
const poster = params.get('poster');
const code = params.get('code');
void start();

async function start(): Promise<void> {
  const root = byId('checkin');
  const fail = (text: { ja: string; en: string }, detail?: string) => {
    root.dataset.screen = 'unavailable';
    root.replaceChildren(h('main', { class: 'screen' }, h('p', { class: 'prompt', role: 'alert' }, text.ja), h('p', { class: 'hint', lang: 'en' }, text.en), detail ? h('p', { class: 'error-code' }, detail) : null));
  };
  if (!clinic || (!poster && !code)) return fail(CHECKIN_TEXT.mobileOff, 'the address needs #clinic=…&poster=… or #clinic=…&code=…');
  const info = await fetchSelfCheckinInfo(clinic, poster ? { poster } : { code: code! });
  if (!info.ok) {
    const text = CHECKIN_ERROR_TEXT[info.error.code];
    return fail(text ? { ja: text.ja, en: text.en } : CHECKIN_TEXT.outOfService, info.error.code);
  }
  if (poster && !info.mobile.open) return closed(info);
  startCheckinFlow({
    root,
    info,
    mode: 'phone',
    ...(code && info.appointment ? { appointment: { code, ...info.appointment } } : {}),
    send: (payload) => {
      const requestId = newRequestId();
      return postSelfCheckin(clinic, { ...payload, requestId, ...(poster ? { poster } : {}) });
    },
    // The ticket page takes over: it follows the turn, asks for notifications and offers LINE.
    onTicket: (result, language, notice) => {
      const url = new URL(result.patientUrl);
      const fragment = new URLSearchParams(url.hash.slice(1));
      fragment.set('lang', language);
      if (notice.kind === 'line') fragment.set('line', '1');
      location.assign(`${url.pathname}#${fragment.toString()}`);
    },
  });

  function closed(open: SelfCheckinInfo): void {
    root.dataset.screen = 'closed';
    const hours = open.mobile.openingHours;
    const days = hours
      ? (['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const)
          .filter((day) => hours[day].length > 0)
          .map((day) => h('li', {}, `${DAY_NAMES[day]}  ${hours[day].join(', ')}`))
      : [];
    root.replaceChildren(
      h(
        'main',
        { class: 'screen' },
        h('p', { class: 'clinic' }, nameIn(open.clinic.name, 'ja'), ' / ', open.clinic.name.en),
        h('p', { class: 'prompt', role: 'status' }, CHECKIN_TEXT.closedNow.ja),
        h('p', { class: 'hint', lang: 'en' }, fill(CHECKIN_TEXT.closedNow.en, {})),
        h('h2', {}, `${CHECKIN_TEXT.hours.ja} / ${CHECKIN_TEXT.hours.en}`),
        h('ul', { class: 'hours' }, ...days),
      ),
    );
  }
}

const DAY_NAMES = { mon: '月 Mon', tue: '火 Tue', wed: '水 Wed', thu: '木 Thu', fri: '金 Fri', sat: '土 Sat', sun: '日 Sun' } as const;
