import type { Bilingual } from './i18n.js';

/** Texts of the consultation parts of the ticket and staff pages, Japanese first. */
export const CONSULT_TEXT = {
  onlineWaiting: { ja: 'オンライン診療です。順番が来ると、このページに「診察に参加する」ボタンが表示されます。', en: 'This is an online consultation. When it is your turn, a “Join the consultation” button appears on this page.' },
  ready: { ja: '医師の準備ができました', en: 'The doctor is ready to see you' },
  readyDetail: { ja: '下のボタンからビデオ診察に参加してください。', en: 'Join the video consultation with the button below.' },
  /** Called, but the consultation's join pass has not reached this page (yet): never point at a button that is not there. */
  preparing: { ja: '医師がビデオ診察を準備しています。「診察に参加する」ボタンがまもなくこのページに表示されます。', en: 'The doctor is opening your video consultation: the “Join the consultation” button appears on this page shortly.' },
  join: { ja: '診察に参加する', en: 'Join the consultation' },
  joinHint: { ja: 'カメラとマイクを使います。静かな場所でご参加ください。', en: 'Your camera and microphone will be used. Please join from a quiet place.' },
  ended: { ja: 'オンライン診察は終了しました。', en: 'The online consultation has ended.' },
  admit: { ja: 'オンライン診察に呼ぶ', en: 'Admit to video' },
  admitNext: { ja: '次の方をオンライン診察へ', en: 'Admit next to video' },
  joinVideo: { ja: 'ビデオ診察に入る', en: 'Join video' },
  endVideo: { ja: 'ビデオ診察を終了', en: 'End video' },
  admitted: { ja: 'オンライン診察を開始しました', en: 'Video consultation started' },
  videoEnded: { ja: 'ビデオ診察を終了しました', en: 'Video consultation ended' },
} satisfies Record<string, Bilingual>;
