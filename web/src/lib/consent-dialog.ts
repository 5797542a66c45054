/**
 * The recording consent dialog of the consultation page: before anyone
 * agrees to be recorded they read what is recorded, who can see it, how
 * long it is kept (the room token's `recordingRetentionDays`) and how to
 * withdraw. A modal <dialog>: Escape or "Not now" leaves consent as it was.
 */
import { bilingual, h } from './dom.js';
import type { Bilingual } from './i18n.js';

export const CONSENT_TEXT = {
  title: { ja: '録画への同意', en: 'Consent to recording' },
  whatTitle: { ja: '録画するもの', en: 'What is recorded' },
  what: { ja: 'この診察の映像と音声を、参加者ごとに録画します（画面共有を含みます）。録画は参加者全員が同意している間だけ行われます。', en: 'The video and sound of this consultation, for each participant (screen shares included). Recording runs only while everyone in the room has consented.' },
  whoTitle: { ja: '見られる人', en: 'Who can see it' },
  who: { ja: 'このクリニックの医師と管理者だけです。録画は暗号化して保存され、見たり書き出したりするたびに、誰がいつ行ったかが記録されます。', en: 'Only this clinic’s doctors and administrators. Recordings are stored encrypted, and every viewing or export is logged with who and when.' },
  howLongTitle: { ja: '保存期間', en: 'How long it is kept' },
  withdrawTitle: { ja: '取り消すには', en: 'How to withdraw' },
  withdraw: { ja: 'いつでも「録画への同意を取り消す」ボタンで取り消せます。取り消すと、その時点で録画は止まります。', en: 'Press “Withdraw consent” at any time: recording stops at once.' },
  agree: { ja: '同意する', en: 'I agree' },
  decline: { ja: '同意しない', en: 'Not now' },
} satisfies Record<string, Bilingual>;

export function keptText(days: number | null): Bilingual {
  if (days === null) {
    return {
      ja: 'クリニックが定めた期間保存し、その後自動的に削除します。',
      en: 'For the period the clinic has set, then deleted automatically.',
    };
  }
  const shown = Number.isInteger(days) ? String(days) : days.toFixed(1);
  return {
    ja: `録画の停止から ${shown} 日間保存し、その後自動的に削除します。`,
    en: `${shown} day${days === 1 ? '' : 's'} after the recording stops, then deleted automatically.`,
  };
}

/** Shows the dialog; resolves true when the person agrees, false otherwise. */
export function askRecordingConsent(retentionDays: number | null): Promise<boolean> {
  const section = (id: string, title: Bilingual, body: Bilingual) =>
    h('section', { 'aria-labelledby': id }, h('h3', { id }, bilingual(title, 'inline')), h('p', {}, bilingual(body)));
  const agree = h('button', { type: 'submit', value: 'agree', class: 'primary', id: 'consent-agree' }, bilingual(CONSENT_TEXT.agree, 'inline'));
  const decline = h('button', { type: 'submit', value: 'decline', id: 'consent-decline' }, bilingual(CONSENT_TEXT.decline, 'inline'));
  const dialog = h(
    'dialog',
    { class: 'consent-dialog', id: 'consent-dialog', 'aria-labelledby': 'consent-title' },
    h(
      'form',
      { method: 'dialog' },
      h('h2', { id: 'consent-title' }, bilingual(CONSENT_TEXT.title, 'inline')),
      section('consent-what', CONSENT_TEXT.whatTitle, CONSENT_TEXT.what),
      section('consent-who', CONSENT_TEXT.whoTitle, CONSENT_TEXT.who),
      section('consent-how-long', CONSENT_TEXT.howLongTitle, keptText(retentionDays)),
      section('consent-withdraw', CONSENT_TEXT.withdrawTitle, CONSENT_TEXT.withdraw),
      h('div', { class: 'consent-buttons' }, decline, agree),
    ),
  );
  document.body.append(dialog);
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => {
      resolve(dialog.returnValue === 'agree');
      dialog.remove();
    });
    dialog.showModal();
    decline.focus();
  });
}
