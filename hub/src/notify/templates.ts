import type { ClinicConfig, NotifyKind, NotifyLocale } from '@clinic-hub/protocol';
import type { NoticeVars } from './notify-types.js';

/**
 * A notice in one language. `title` is an e-mail subject or a notification
 * heading, `body` the full text, `short` one line for SMS. Templates name the
 * clinic, department, room, ticket number and time: never a diagnosis, a
 * reason for the visit or the patient's name.
 */
export interface RenderedNotice {
  title: string;
  body: string;
  short: string;
}

interface TemplateContext {
  clinic: string;
  dept: string | null;
  room: string | null;
  number: string;
  ahead: number;
  /** Appointment date and time in the clinic's timezone, e.g. "6月3日(火) 10:30" / "Tue, 3 June, 10:30". */
  when: string;
  /** Appointment time of day, e.g. "10:30". */
  time: string;
  /** An appointment's arrival: its code as read ("123-456-7890") and the link that checks the patient in. */
  arrival: { code: string; url: string | null } | null;
  /** A reminder's one-time link to get the appointment's reminders on LINE instead (LINE linking on, contact not LINE). */
  lineUrl: string | null;
}

type Template = (c: TemplateContext) => RenderedNotice;

/** How to arrive: the link checks the patient in from their phone; the code is for the kiosk. */
const arrivalJa = (c: TemplateContext) =>
  c.arrival ? `\n\nご来院時の受付：${c.arrival.url ? `到着したらこちらを開いてください ${c.arrival.url} ` : ''}（受付機では予約番号 ${c.arrival.code} を入力）` : '';
const arrivalEn = (c: TemplateContext) =>
  c.arrival ? `\n\nWhen you arrive: ${c.arrival.url ? `open ${c.arrival.url} to check in, ` : ''}or enter appointment code ${c.arrival.code} at the kiosk.` : '';
const arrivalShort = (c: TemplateContext) => (c.arrival ? ` ${c.arrival.url ?? c.arrival.code}` : '');
/** How to get the next reminders on LINE. */
const lineJa = (c: TemplateContext) => (c.lineUrl ? `\n\nLINEでお知らせを受け取る：${c.lineUrl}` : '');
const lineEn = (c: TemplateContext) => (c.lineUrl ? `\n\nGet these reminders on LINE: ${c.lineUrl}` : '');
const lineShort = (c: TemplateContext) => (c.lineUrl ? ` LINE: ${c.lineUrl}` : '');

const FOOTER = {
  ja: 'このメッセージは送信専用です。ご不明な点はクリニックへお問い合わせください。',
  en: 'This is an automated message. Please contact the clinic with any questions.',
};

const TEMPLATES: Record<NotifyLocale, Record<NotifyKind, Template>> = {
  ja: {
    reminder_24h: (c) => ({
      title: `【${c.clinic}】ご予約のお知らせ`,
      body: `${c.when} に${c.clinic}${c.dept ? `（${c.dept}）` : ''}のご予約があります。ご来院をお待ちしております。変更・キャンセルはクリニックまでご連絡ください。${arrivalJa(c)}${lineJa(c)}`,
      short: `【${c.clinic}】${c.when} にご予約があります。${arrivalShort(c)}${lineShort(c)}`,
    }),
    reminder_1h: (c) => ({
      title: `【${c.clinic}】まもなくご予約の時間です`,
      body: `本日 ${c.time} に${c.clinic}${c.dept ? `（${c.dept}）` : ''}のご予約があります。お気をつけてお越しください。${arrivalJa(c)}${lineJa(c)}`,
      short: `【${c.clinic}】本日 ${c.time} にご予約があります。${arrivalShort(c)}${lineShort(c)}`,
    }),
    queue_3_ahead: (c) => ({
      title: `【${c.clinic}】あと${c.ahead}人でお呼びします`,
      body: `受付番号 ${c.number} の方、あと${c.ahead}人でお呼びします。待合室にお戻りください。`,
      short: `【${c.clinic}】受付番号 ${c.number}：あと${c.ahead}人でお呼びします。`,
    }),
    queue_1_ahead: (c) => {
      const soon = c.ahead === 0 ? '次にお呼びします' : `あと${c.ahead}人でお呼びします`;
      return {
        title: `【${c.clinic}】まもなく順番です`,
        body: `受付番号 ${c.number} の方、${soon}。待合室でお待ちください。`,
        short: `【${c.clinic}】受付番号 ${c.number}：${soon}。`,
      };
    },
    queue_called: (c) => {
      const where = c.room ? `${c.room}へお入りください` : '受付までお越しください';
      return {
        title: `【${c.clinic}】受付番号 ${c.number} の方、${where}`,
        body: `受付番号 ${c.number} の方、お待たせしました。${where}。`,
        short: `【${c.clinic}】受付番号 ${c.number} の方、${where}。`,
      };
    },
    consult_ready: (c) => ({
      title: `【${c.clinic}】診察の準備ができました`,
      body: `受付番号 ${c.number} の方、オンライン診察の準備ができました。受付番号のページを開き「診察に参加」を押してください。`,
      short: `【${c.clinic}】受付番号 ${c.number}：オンライン診察の準備ができました。`,
    }),
    chat_reply: (c) => ({
      title: `【${c.clinic}】クリニックからメッセージが届きました`,
      body: `受付番号 ${c.number} の方、クリニックからチャットに返信がありました。受付番号のページでご確認ください。`,
      short: `【${c.clinic}】チャットに返信がありました。`,
    }),
    test: (c) => ({
      title: `【${c.clinic}】テスト通知`,
      body: `${c.clinic}の通知のテストです。このメッセージが届いていれば、この経路でお知らせをお送りできます。`,
      short: `【${c.clinic}】テスト通知です。この経路でお知らせが届きます。`,
    }),
  },
  en: {
    reminder_24h: (c) => ({
      title: `${c.clinic}: appointment reminder`,
      body: `You have an appointment at ${c.clinic}${c.dept ? ` (${c.dept})` : ''} on ${c.when}. To change or cancel it, please contact the clinic.${arrivalEn(c)}${lineEn(c)}`,
      short: `${c.clinic}: your appointment is on ${c.when}.${arrivalShort(c)}${lineShort(c)}`,
    }),
    reminder_1h: (c) => ({
      title: `${c.clinic}: your appointment is soon`,
      body: `Your appointment at ${c.clinic}${c.dept ? ` (${c.dept})` : ''} is today at ${c.time}. See you soon.${arrivalEn(c)}${lineEn(c)}`,
      short: `${c.clinic}: your appointment is today at ${c.time}.${arrivalShort(c)}${lineShort(c)}`,
    }),
    queue_3_ahead: (c) => {
      const people = c.ahead === 1 ? '1 person' : `${c.ahead} people`;
      return {
        title: `${c.clinic}: ${people} ahead of you`,
        body: `Ticket ${c.number}: ${people} ahead of you. Please return to the waiting room.`,
        short: `${c.clinic}: ticket ${c.number}, ${people} ahead of you.`,
      };
    },
    queue_1_ahead: (c) => {
      const soon = c.ahead === 0 ? 'you are next' : c.ahead === 1 ? '1 person ahead of you' : `${c.ahead} people ahead of you`;
      return {
        title: `${c.clinic}: almost your turn`,
        body: `Ticket ${c.number}: ${soon}. Please wait in the waiting room.`,
        short: `${c.clinic}: ticket ${c.number}, ${soon}.`,
      };
    },
    queue_called: (c) => {
      const where = c.room ? `please go to ${c.room}` : 'please come to reception';
      return {
        title: `${c.clinic}: ticket ${c.number}, ${where}`,
        body: `Ticket ${c.number}: thank you for waiting, ${where}.`,
        short: `${c.clinic}: ticket ${c.number}, ${where}.`,
      };
    },
    consult_ready: (c) => ({
      title: `${c.clinic}: your consultation is ready`,
      body: `Ticket ${c.number}: your online consultation is ready. Open your ticket page and press "Join the consultation".`,
      short: `${c.clinic}: ticket ${c.number}, your online consultation is ready.`,
    }),
    chat_reply: (c) => ({
      title: `${c.clinic}: new message from the clinic`,
      body: `Ticket ${c.number}: the clinic replied in your chat. Open your ticket page to read it.`,
      short: `${c.clinic}: the clinic replied in your chat.`,
    }),
    test: (c) => ({
      title: `${c.clinic}: test notification`,
      body: `A test of ${c.clinic}'s notifications: if this reached you, notices can be sent to you this way.`,
      short: `${c.clinic}: test notification. Notices reach you this way.`,
    }),
  },
};

const WHEN_FORMAT: Record<NotifyLocale, Intl.DateTimeFormatOptions> = {
  ja: { month: 'long', day: 'numeric', weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' },
  en: { weekday: 'short', day: 'numeric', month: 'long', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' },
};

const formatters = new Map<string, Intl.DateTimeFormat>();
/** Building an Intl.DateTimeFormat costs ~0.4 ms: one per (locale, timezone, style), kept. */
function formatter(locale: NotifyLocale, timezone: string, style: 'when' | 'time'): Intl.DateTimeFormat {
  const key = `${locale}|${timezone}|${style}`;
  let format = formatters.get(key);
  if (!format) {
    const lang = locale === 'ja' ? 'ja-JP' : 'en-GB';
    const options: Intl.DateTimeFormatOptions =
      style === 'when' ? WHEN_FORMAT[locale] : { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' };
    format = new Intl.DateTimeFormat(lang, { ...options, timeZone: timezone });
    formatters.set(key, format);
  }
  return format;
}

/**
 * `arrival`: the appointment's arrival code and link (reminders of an
 * appointment stored for its arrival), and `lineUrl`, a reminder's LINE link,
 * read when the notice is sent: never in the job, which staff lists show.
 */
export function renderNotice(
  kind: NotifyKind,
  locale: NotifyLocale,
  vars: NoticeVars,
  clinic: ClinicConfig,
  arrival: { code: string; url: string | null } | null = null,
  lineUrl: string | null = null,
): RenderedNotice {
  const dept = vars.dept ? clinic.departments.find((d) => d.id === vars.dept) : undefined;
  const room = vars.room ? clinic.departments.flatMap((d) => d.rooms).find((r) => r.id === vars.room) : undefined;
  const startsAt = vars.startsAt !== undefined ? new Date(vars.startsAt) : null;
  const context: TemplateContext = {
    clinic: clinic.name[locale],
    dept: dept?.name[locale] ?? null,
    room: room?.name[locale] ?? null,
    number: vars.ticketNumber ?? '',
    ahead: vars.ahead ?? 0,
    when: startsAt ? formatter(locale, clinic.timezone, 'when').format(startsAt) : '',
    time: startsAt ? formatter(locale, clinic.timezone, 'time').format(startsAt) : '',
    arrival: arrival ? { code: `${arrival.code.slice(0, 3)}-${arrival.code.slice(3, 6)}-${arrival.code.slice(6)}`, url: arrival.url } : null,
    lineUrl,
  };
  return TEMPLATES[locale][kind](context);
}

/** An appointment's date and time as reminders write it, in the clinic's timezone ("12月7日(月) 10:30"). */
export function appointmentWhen(locale: NotifyLocale, clinic: ClinicConfig, startsAt: number): string {
  return formatter(locale, clinic.timezone, 'when').format(new Date(startsAt));
}

export function noticeFooter(locale: NotifyLocale): string {
  return FOOTER[locale];
}
