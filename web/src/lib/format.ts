import type { SpokenCallLanguage } from '@clinic-hub/protocol';

/** Clock text in the clinic's time zone, whatever zone the screen's computer is set to. */
export function clinicClock(timezone: string): (at: Date) => { time: string; dateJa: string; dateEn: string } {
  const time = new Intl.DateTimeFormat('ja-JP', { timeZone: timezone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  const dateJa = new Intl.DateTimeFormat('ja-JP', { timeZone: timezone, month: 'long', day: 'numeric', weekday: 'short' });
  const dateEn = new Intl.DateTimeFormat('en-US', { timeZone: timezone, month: 'short', day: 'numeric', weekday: 'short' });
  return (at) => ({ time: time.format(at), dateJa: dateJa.format(at), dateEn: dateEn.format(at) });
}

const LETTER_READINGS: Record<string, string> = {
  A: 'エー', B: 'ビー', C: 'シー', D: 'ディー', E: 'イー', F: 'エフ', G: 'ジー', H: 'エイチ', I: 'アイ',
  J: 'ジェー', K: 'ケー', L: 'エル', M: 'エム', N: 'エヌ', O: 'オー', P: 'ピー', Q: 'キュー', R: 'アール',
  S: 'エス', T: 'ティー', U: 'ユー', V: 'ブイ', W: 'ダブリュー', X: 'エックス', Y: 'ワイ', Z: 'ゼット',
};

/**
 * "A-012" as a Japanese voice should say it: the letters in katakana (a
 * synthesiser may spell "A" in English) and the number without its leading
 * zeros (or it reads "ゼロいちに").
 */
export function spokenTicketNumber(number: string): string {
  const match = /^([A-Z]{1,2})-?0*(\d+)$/.exec(number);
  if (!match) return number;
  const [, letters = '', digits = ''] = match;
  const reading = [...letters].map((l) => LETTER_READINGS[l] ?? l).join('');
  return `${reading}の${Number(digits)}番`;
}

export function callAnnouncementJa(number: string, roomJa: string, recalled: boolean): string {
  const call = `${spokenTicketNumber(number)}の方、${roomJa}へお越しください。`;
  return recalled ? `もう一度お呼びします。${call}` : call;
}

/** "A-012" as an English voice should say it: "A 12" (letters spelled, no leading zeros). */
export function spokenTicketNumberEn(number: string): string {
  const match = /^([A-Z]{1,2})-?0*(\d+)$/.exec(number);
  if (!match) return number;
  const [, letters = '', digits = ''] = match;
  return `${[...letters].join(' ')} ${Number(digits)}`;
}

export function callAnnouncementEn(number: string, roomEn: string, recalled: boolean): string {
  const call = `Number ${spokenTicketNumberEn(number)}, please go to ${roomEn}.`;
  return recalled ? `Calling again. ${call}` : call;
}

/** A call as the clinic's displays speak it: in each of its `spokenCallLanguages`, in order. */
export function spokenCall(
  number: string,
  room: { ja: string; en: string },
  recalled: boolean,
  languages: readonly SpokenCallLanguage[],
): { text: string; lang: string }[] {
  return languages.map((language) =>
    language === 'ja'
      ? { text: callAnnouncementJa(number, room.ja, recalled), lang: 'ja-JP' }
      : { text: callAnnouncementEn(number, room.en, recalled), lang: 'en-US' },
  );
}
