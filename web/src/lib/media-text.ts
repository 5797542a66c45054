import type { ConsultRole, ErrorCode } from '@clinic-hub/protocol';
import type { Bilingual } from './i18n.js';

/** Texts of the consultation page (/consult), Japanese first. */
export const MEDIA_TEXT = {
  title: { ja: 'オンライン診察', en: 'Video consultation' },
  noPass: {
    ja: 'このページを開くには診察への入室リンクが必要です。受付またはチケットのページから「診察に参加する」を押してください。',
    en: 'This page needs a consultation link: press “Join the consultation” on your ticket page or ask the clinic.',
  },
  deviceCheck: { ja: 'カメラとマイクの確認', en: 'Check your camera and microphone' },
  deviceHint: {
    ja: '映像が映り、話すと下のメーターが動くことを確認してから参加してください。',
    en: 'Make sure you can see yourself and that the meter moves when you speak, then join.',
  },
  camera: { ja: 'カメラ', en: 'Camera' },
  microphone: { ja: 'マイク', en: 'Microphone' },
  level: { ja: '音量', en: 'Level' },
  noDevices: {
    ja: 'カメラまたはマイクを使えません。ブラウザの許可を確認してください。このままでも参加できます（相手の映像と音声は届きます）。',
    en: 'The camera or microphone cannot be used. Check the browser’s permissions. You can still join and see and hear the others.',
  },
  join: { ja: '参加する', en: 'Join' },
  you: { ja: 'あなた', en: 'You' },
  muted: { ja: 'ミュート中', en: 'Muted' },
  cameraOff: { ja: 'カメラオフ', en: 'Camera off' },
  mute: { ja: 'ミュート', en: 'Mute' },
  unmute: { ja: 'ミュート解除', en: 'Unmute' },
  stopCamera: { ja: 'カメラを止める', en: 'Stop camera' },
  startCamera: { ja: 'カメラを使う', en: 'Start camera' },
  shareScreen: { ja: '画面共有', en: 'Share screen' },
  stopSharing: { ja: '共有を停止', en: 'Stop sharing' },
  screenOf: { ja: 'の画面', en: '’s screen' },
  consent: { ja: '録画に同意する', en: 'Consent to recording' },
  withdrawConsent: { ja: '録画への同意を取り消す', en: 'Withdraw consent' },
  consented: { ja: '録画に同意済み', en: 'Consented to recording' },
  startRecording: { ja: '録画を開始', en: 'Start recording' },
  stopRecording: { ja: '録画を停止', en: 'Stop recording' },
  recording: { ja: '録画中', en: 'Recording' },
  speaking: { ja: '発言中', en: 'Speaking' },
  recordingStoppedWorker: {
    ja: '映像サーバーの障害で録画が止まりました。それまでの録画は保存されています。必要なら録画をもう一度開始してください。',
    en: 'Recording stopped: the media server failed. What was recorded until then is kept; start recording again if needed.',
  },
  leave: { ja: '退出', en: 'Leave' },
  waitingForOthers: { ja: '他の参加者を待っています…', en: 'Waiting for the others to join…' },
  left: { ja: '診察から退出しました。', en: 'You have left the consultation.' },
  rejoin: { ja: 'もう一度参加する', en: 'Join again' },
  ended: { ja: '診察は終了しました', en: 'The consultation has ended' },
  endedDetail: {
    ja: 'このページは閉じてかまいません。お大事になさってください。',
    en: 'You can close this page. Take care.',
  },
  replaced: { ja: '別の画面（タブ・端末）で参加したため、ここでの接続は終了しました。', en: 'You joined from another tab or device, so this one was disconnected.' },
  draining: {
    ja: 'サーバーの切り替えのため接続が終了しました。チケットのページからもう一度参加してください。',
    en: 'The server is being switched over. Join again from your ticket page.',
  },
  expired: { ja: '入室リンクの有効期限が切れました。もう一度参加してください。', en: 'The link has expired. Join again from your ticket page.' },
  qualityGood: { ja: '通信状態：良好', en: 'Connection: good' },
  qualityFair: { ja: '通信状態：やや不安定', en: 'Connection: fair' },
  qualityPoor: { ja: '通信状態：不安定', en: 'Connection: poor' },
  qualityUnknown: { ja: '通信状態：確認中', en: 'Connection: checking' },
} satisfies Record<string, Bilingual>;

export const ROLE_TEXT: Record<ConsultRole, Bilingual> = {
  doctor: { ja: '医師', en: 'Doctor' },
  nurse: { ja: '看護師', en: 'Nurse' },
  patient: { ja: '患者', en: 'Patient' },
  interpreter: { ja: '通訳', en: 'Interpreter' },
  family: { ja: 'ご家族', en: 'Family' },
};

export const waitingConsentText = (count: number): Bilingual => ({
  ja: `録画は全員の同意待ちです（未同意 ${count} 人）`,
  en: `Recording waits for everyone’s consent (${count} not yet)`,
});

/** Japanese for the media-server's refusals; the server's English message is shown beside it. */
export const MEDIA_ERROR_TEXT_JA: Partial<Record<ErrorCode, string>> = {
  AUTH_INVALID: '入室リンクが正しくありません。',
  AUTH_EXPIRED: '入室リンクの有効期限が切れました。チケットのページからもう一度参加してください。',
  MEDIA_WRONG_ROOM: 'この診察は別のサーバーで行われています。チケットのページからもう一度参加してください。',
  MEDIA_ROOM_FULL: '診察室が満員です（6人まで）。',
  MEDIA_NODE_UNAVAILABLE: 'サーバーが切り替え中です。少し待ってからもう一度参加してください。',
  CONSULT_ENDED: 'この診察は終了しています。',
  RECORDING_KEY_MISSING: 'このサーバーでは録画できません。',
  RECORDING_NOT_ALLOWED: 'このクリニックの設定では診察を録画できません。',
  RECORDING_CONSENT_MISSING: '全員の同意がそろうまで録画は始まりません。',
  AUTH_FORBIDDEN: 'この操作の権限がありません。',
  STORE_UNAVAILABLE: '記録できませんでした。もう一度お試しください。',
  RATE_LIMITED: '操作が多すぎます。少し待ってからお試しください。',
  MEDIA_SIGNAL_DOWN: 'サーバーとの接続が切れています。自動で再接続します。少し待ってからお試しください。',
};
