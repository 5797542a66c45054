/**
 * The check-in a patient does themselves, screen by screen, shared by the
 * kiosk at the entrance and the phone page of the clinic's QR poster: their
 * language, a department or an appointment code, how they want to be told
 * their turn is near (their phone's page, SMS, LINE), then the ticket.
 * Large touch targets; every text in the language chosen. How the check-in
 * is sent (the kiosk's socket, the phone's HTTP request) and what happens
 * with the ticket (print a slip, open the ticket page) is the page's.
 */
import type { Ack, CheckinLanguage, ProtocolError, SelfCheckinInfo, SelfCheckinPayload, SelfCheckinResult } from '@clinic-hub/protocol';
import { CHECKIN_ERROR_TEXT, CHECKIN_TEXT, LANGUAGE_NAMES, fill, nameIn, type Multilingual } from './checkin-text.js';
import { h } from './dom.js';
import { qrSvg } from './qr.js';

export type NoticeChoice = { kind: 'page' } | { kind: 'sms'; phone: string } | { kind: 'line' };

export interface CheckinFlowOptions {
  root: HTMLElement;
  info: SelfCheckinInfo;
  mode: 'kiosk' | 'phone';
  /** The appointment of an arrival link (phone page): the flow starts at confirming it. */
  appointment?: { code: string; startsAt: number; dept: string };
  send(payload: SelfCheckinPayload): Promise<Ack<SelfCheckinResult>>;
  /** After a ticket: the kiosk prints its slip; the phone opens the ticket page. */
  onTicket(result: SelfCheckinResult, language: CheckinLanguage, notice: NoticeChoice): void;
  /** Kiosk: back to the first screen after this long without a touch (no one's number left on screen). */
  idleMs?: number;
}

type Screen =
  | { name: 'home' }
  | { name: 'code'; digits: string }
  | { name: 'notice' }
  | { name: 'phone'; digits: string }
  | { name: 'busy' }
  | { name: 'ticket'; result: SelfCheckinResult; notice: NoticeChoice }
  | { name: 'error'; error: ProtocolError };

const CODE_DIGITS = 10;
const CODE_PATTERN = /^\d{10}$/;

/** A Japanese mobile or landline number as typed (0 and 9–10 more digits) in +E.164, or null. */
export function phoneE164(digits: string): string | null {
  if (/^0\d{9,10}$/.test(digits)) return `+81${digits.slice(1)}`;
  return null;
}

/**
 * The appointment code in what a scanner typed: the code (digits, dashes
 * allowed) or the appointment's arrival link of this clinic
 * (`…/checkin#clinic=ID&code=CODE`, as a QR code on an appointment card).
 */
export function scannedCode(text: string, clinic: string): string | null {
  const trimmed = text.trim();
  const digits = trimmed.replaceAll('-', '');
  if (CODE_PATTERN.test(digits)) return digits;
  let hash: URLSearchParams;
  try {
    hash = new URLSearchParams(new URL(trimmed).hash.slice(1));
  } catch {
    return null;
  }
  const code = hash.get('code') ?? '';
  return hash.get('clinic') === clinic && CODE_PATTERN.test(code) ? code : null;
}

/** 0901234567 8 → "090-1234-5678"; codes in threes and a four. */
function grouped(digits: string, kind: 'code' | 'phone'): string {
  if (kind === 'code') return [digits.slice(0, 3), digits.slice(3, 6), digits.slice(6)].filter(Boolean).join('-');
  if (digits.length <= 3) return digits;
  if (digits.length <= 7) return `${digits.slice(0, 3)}-${digits.slice(3)}`;
  return `${digits.slice(0, 3)}-${digits.slice(3, 7)}-${digits.slice(7)}`;
}

export function startCheckinFlow(options: CheckinFlowOptions): { reset(): void; language(): CheckinLanguage } {
  const { root, info } = options;
  let language: CheckinLanguage = 'ja';
  let screen: Screen = options.appointment ? { name: 'notice' } : { name: 'home' };
  let choice: { dept: string } | { appointmentCode: string } | null = options.appointment ? { appointmentCode: options.appointment.code } : null;
  let idleTimer: ReturnType<typeof setTimeout> | undefined;

  const t = (text: Multilingual, values?: Record<string, string | number>) => (values ? fill(text[language], values) : text[language]);
  const dept = (id: string) => info.clinic.departments.find((d) => d.id === id);
  const time = (ms: number) =>
    new Intl.DateTimeFormat(language === 'en' ? 'en-GB' : language === 'ja' ? 'ja-JP' : language === 'zh' ? 'zh-CN' : 'ko-KR', {
      timeZone: info.clinic.timezone,
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    }).format(ms);

  const go = (next: Screen) => {
    screen = next;
    render();
  };
  const reset = () => {
    choice = options.appointment ? { appointmentCode: options.appointment.code } : null;
    if (!options.appointment) language = 'ja';
    go(options.appointment ? { name: 'notice' } : { name: 'home' });
  };
  const touched = () => {
    clearTimeout(idleTimer);
    if (options.idleMs && screen.name !== 'home' && screen.name !== 'busy') idleTimer = setTimeout(reset, options.idleMs);
  };
  root.addEventListener('pointerdown', touched, { capture: true });
  if (options.mode === 'kiosk') listenForScanner();

  /**
   * A barcode or QR scanner set up as a keyboard (USB or Bluetooth) types
   * what it read and Enter: an appointment code or arrival link read on the
   * first screen or the code screen checks that appointment in, as if typed
   * on the keypad. Anything else is ignored.
   */
  function listenForScanner(): void {
    let typed = '';
    document.addEventListener('keydown', (event) => {
      if (screen.name !== 'home' && screen.name !== 'code') {
        typed = '';
        return;
      }
      if (event.key !== 'Enter') {
        if (event.key.length === 1) typed = (typed + event.key).slice(-500);
        return;
      }
      const code = scannedCode(typed, info.clinic.id);
      typed = '';
      if (!code) return;
      choice = { appointmentCode: code };
      go({ name: 'notice' });
    });
  }

  const button = (text: string, onClick: () => void, attributes: Record<string, string> = {}) =>
    h('button', { type: 'button', class: 'big', ...attributes, onclick: () => onClick() }, text);

  function languageBar(): HTMLElement {
    return h(
      'nav',
      { class: 'languages', 'aria-label': 'Language' },
      ...info.languages.map((lang) => {
        const item = h('button', { type: 'button', lang, 'data-language': lang, 'aria-pressed': String(lang === language) }, LANGUAGE_NAMES[lang]);
        item.addEventListener('click', () => {
          language = lang;
          render();
        });
        return item;
      }),
    );
  }

  function keypad(digits: string, max: number, onChange: (next: string) => void): HTMLElement {
    const key = (label: string, action: string, next: () => string) =>
      h('button', { type: 'button', class: 'key', 'data-key': action, onclick: () => onChange(next()) }, label);
    const keys = ['1', '2', '3', '4', '5', '6', '7', '8', '9'].map((d) => key(d, d, () => (digits.length < max ? digits + d : digits)));
    return h(
      'div',
      { class: 'keypad' },
      ...keys,
      key(t(CHECKIN_TEXT.clear), 'clear', () => ''),
      key('0', '0', () => (digits.length < max ? `${digits}0` : digits)),
      key('⌫', 'backspace', () => digits.slice(0, -1)),
    );
  }

  async function checkIn(notice: NoticeChoice): Promise<void> {
    if (!choice) return go({ name: 'home' });
    go({ name: 'busy' });
    let ack: Ack<SelfCheckinResult>;
    try {
      ack = await options.send({ ...choice, language, ...(notice.kind === 'sms' ? { phone: notice.phone } : {}) });
    } catch {
      ack = { ok: false, error: { code: 'STORE_UNAVAILABLE', message: 'no answer' } };
    }
    if (!ack.ok) return go({ name: 'error', error: ack.error });
    const { ok: _ok, ...result } = ack;
    go({ name: 'ticket', result, notice });
    options.onTicket(result, language, notice);
  }

  function content(): HTMLElement[] {
    switch (screen.name) {
      case 'home':
        return [
          h('h1', {}, t(CHECKIN_TEXT.title)),
          h('p', { class: 'prompt' }, t(CHECKIN_TEXT.chooseDept)),
          h(
            'div',
            { class: 'choices' },
            ...info.departments.map((id) => {
              const d = dept(id);
              return button(d ? nameIn(d.name, language) : id, () => {
                choice = { dept: id };
                go({ name: 'notice' });
              }, { 'data-dept': id });
            }),
          ),
          button(t(CHECKIN_TEXT.haveAppointment), () => go({ name: 'code', digits: '' }), { class: 'big secondary', id: 'appointment' }),
        ];
      case 'code': {
        const { digits } = screen;
        const ok = button(t(CHECKIN_TEXT.ok), () => {
          choice = { appointmentCode: digits };
          go({ name: 'notice' });
        }, { id: 'code-ok' });
        ok.disabled = digits.length !== CODE_DIGITS;
        return [
          h('p', { class: 'prompt' }, t(CHECKIN_TEXT.enterCode)),
          h('output', { class: 'digits', id: 'code-digits' }, grouped(digits, 'code') || '\u00a0'),
          keypad(digits, CODE_DIGITS, (next) => go({ name: 'code', digits: next })),
          h('div', { class: 'row' }, button(t(CHECKIN_TEXT.back), () => go({ name: 'home' }), { class: 'big secondary' }), ok),
        ];
      }
      case 'notice': {
        const appointment = options.appointment;
        const appointmentLine = appointment
          ? [
              h(
                'p',
                { class: 'appointment', id: 'appointment-facts' },
                `${t(CHECKIN_TEXT.appointmentAt, { time: time(appointment.startsAt) })} · ${dept(appointment.dept) ? nameIn(dept(appointment.dept)!.name, language) : appointment.dept}`,
              ),
            ]
          : [];
        return [
          ...appointmentLine,
          h('p', { class: 'prompt' }, t(CHECKIN_TEXT.howToTell)),
          h(
            'div',
            { class: 'choices' },
            button(t(options.mode === 'kiosk' ? CHECKIN_TEXT.byQr : CHECKIN_TEXT.byPage), () => void checkIn({ kind: 'page' }), { 'data-notice': 'page' }),
            button(t(CHECKIN_TEXT.bySms), () => go({ name: 'phone', digits: '' }), { 'data-notice': 'sms' }),
            ...(info.line ? [button(t(CHECKIN_TEXT.byLine), () => void checkIn({ kind: 'line' }), { 'data-notice': 'line' })] : []),
          ),
          ...(appointment ? [] : [button(t(CHECKIN_TEXT.back), () => go({ name: 'home' }), { class: 'big secondary' })]),
        ];
      }
      case 'phone': {
        const { digits } = screen;
        const phone = phoneE164(digits);
        const ok = button(t(CHECKIN_TEXT.ok), () => phone && void checkIn({ kind: 'sms', phone }), { id: 'phone-ok' });
        ok.disabled = phone === null;
        return [
          h('p', { class: 'prompt' }, t(CHECKIN_TEXT.enterPhone)),
          h('output', { class: 'digits', id: 'phone-digits' }, grouped(digits, 'phone') || '\u00a0'),
          keypad(digits, 11, (next) => go({ name: 'phone', digits: next })),
          h('p', { class: 'hint' }, t(CHECKIN_TEXT.phoneHint)),
          h('div', { class: 'row' }, button(t(CHECKIN_TEXT.back), () => go({ name: 'notice' }), { class: 'big secondary' }), ok),
        ];
      }
      case 'busy':
        return [h('p', { class: 'prompt busy', role: 'status' }, t(CHECKIN_TEXT.checkingIn))];
      case 'ticket': {
        const { result, notice } = screen;
        const ticket = result.event.ticket;
        const d = dept(ticket.dept);
        const late = result.appointment?.late ? [h('p', { class: 'late' }, t(CHECKIN_TEXT.appointmentLate))] : [];
        const codes: HTMLElement[] = [];
        if (options.mode === 'kiosk') {
          codes.push(h('figure', { class: 'code-box', id: 'ticket-qr' }, qrSvg(result.patientUrl, t(CHECKIN_TEXT.scanQr)), h('figcaption', {}, t(CHECKIN_TEXT.scanQr))));
          if (notice.kind === 'line' && result.line) {
            codes.push(h('figure', { class: 'code-box line', id: 'line-qr' }, qrSvg(result.line.url, t(CHECKIN_TEXT.scanLine)), h('figcaption', {}, t(CHECKIN_TEXT.scanLine))));
          }
        }
        return [
          h('p', { class: 'label' }, t(CHECKIN_TEXT.yourNumber)),
          h('p', { class: 'number', id: 'ticket-number' }, ticket.number),
          h('p', { class: 'dept' }, d ? nameIn(d.name, language) : ticket.dept),
          ...(result.appointment ? [h('p', { class: 'appointment' }, t(CHECKIN_TEXT.appointmentAt, { time: time(result.appointment.startsAt) }))] : []),
          ...late,
          h('p', { class: 'position', id: 'ticket-position' }, result.ahead === 0 ? t(CHECKIN_TEXT.next) : t(CHECKIN_TEXT.ahead, { n: result.ahead }), ' · ', t(CHECKIN_TEXT.wait, { n: result.waitMinutes })),
          ...(notice.kind === 'sms' ? [h('p', { class: 'hint' }, t(CHECKIN_TEXT.smsSet))] : []),
          h('div', { class: 'codes' }, ...codes),
          ...(options.mode === 'kiosk'
            ? [
                h(
                  'div',
                  { class: 'row' },
                  button(t(CHECKIN_TEXT.print), () => options.onTicket(result, language, notice), { class: 'big secondary', id: 'print-again' }),
                  button(t(CHECKIN_TEXT.done), reset, { id: 'done' }),
                ),
              ]
            : []),
        ];
      }
      case 'error': {
        const { error } = screen;
        const text = CHECKIN_ERROR_TEXT[error.code];
        return [
          h('p', { class: 'prompt error', role: 'alert' }, text ? t(text) : t(CHECKIN_TEXT.tryAgain)),
          h('p', { class: 'error-code' }, error.code),
          button(t(CHECKIN_TEXT.back), () => (options.appointment ? reset() : go({ name: 'home' })), { id: 'error-back' }),
        ];
      }
    }
  }

  function render(): void {
    root.dataset.screen = screen.name;
    document.documentElement.lang = language;
    const header = h('header', { class: 'checkin-header' }, h('p', { class: 'clinic' }, nameIn(info.clinic.name, language)), languageBar());
    root.replaceChildren(header, h('main', { class: `screen screen-${screen.name}` }, ...content()));
    touched();
  }

  render();
  return { reset, language: () => language };
}
