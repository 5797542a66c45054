import type { ErrorCode, LocalizedText, Priority, TicketStatus } from '@clinic-hub/protocol';

/** Every text a person reads, in Japanese and English. Pages show both, Japanese first. */
export type Bilingual = LocalizedText;

export const TEXT = {
  noCalls: { ja: 'ただいま呼び出し中の番号はありません', en: 'No numbers are being called right now' },
  nextUp: { ja: '次の番号', en: 'Next' },
  nobodyWaiting: { ja: 'お待ちの方はいません', en: 'Nobody is waiting' },
  typicalWait: { ja: '今から受付の場合', en: 'If you check in now' },
  waitingCount: { ja: '待ち人数', en: 'Waiting' },
  roomsOpen: { ja: '診察室の受付状況', en: 'Rooms open or closed' },
  roomOpen: { ja: '開室', en: 'open' },
  roomClosed: { ja: '閉室', en: 'closed' },
  openRoom: { ja: '診察室を開く', en: 'Open the room' },
  closeRoom: { ja: '診察室を閉じる', en: 'Close the room' },
  live: { ja: '接続中', en: 'Live' },
  connecting: { ja: '接続しています…', en: 'Connecting…' },
  reconnecting: { ja: '再接続中…', en: 'Reconnecting…' },
  rejected: { ja: '接続できません', en: 'Cannot connect' },
  enableSound: { ja: '音声を有効にする', en: 'Enable sound' },
  noToken: {
    ja: 'このページにはトークンが必要です。アドレスの最後に #token=… が付いているか確認してください。',
    en: 'This page needs a token: the address must end with #token=…',
  },
  wrongTokenRole: { ja: 'このトークンではこのページを開けません。', en: 'This token cannot open this page.' },
  youAreNext: { ja: '次にお呼びします', en: 'You are next' },
  estimatedWait: { ja: '待ち時間の目安', en: 'Estimated wait' },
  inConsultation: { ja: '診察中です', en: 'In consultation' },
  done: { ja: '診察は終了しました。お大事になさってください。', en: 'Your consultation has finished. Take care.' },
  cancelled: { ja: 'この受付は取り消されました。', en: 'This ticket has been cancelled.' },
  noShow: {
    ja: 'お呼びしましたがお越しにならなかったため、受付は終了しました。受付にお声がけください。',
    en: 'You were called but did not come, so this ticket has ended. Please speak to reception.',
  },
  ticketEnded: { ja: 'この番号の受付は終了しています。', en: 'This ticket is no longer in the queue.' },
  ticketUnknown: {
    ja: 'この番号は待合にありません（受付が終了したか、取り消されました）。ご不明な点は受付にお声がけください。',
    en: 'This ticket is not in the queue (it has ended or was cancelled). Please ask at reception if unsure.',
  },
  checkin: { ja: '受付', en: 'Check in' },
  callNext: { ja: '次の方を呼ぶ', en: 'Call next' },
  room: { ja: '診察室', en: 'Room' },
  priority: { ja: '優先度', en: 'Priority' },
  patientName: { ja: '氏名', en: 'Name' },
  ticketIssued: { ja: '受付番号', en: 'Ticket' },
  patientPage: { ja: '患者用ページ', en: 'Patient page' },
  waitingList: { ja: '待合', en: 'Waiting' },
  callsAndConsultations: { ja: '呼び出し・診察中', en: 'Called and in consultation' },
  number: { ja: '番号', en: 'Number' },
  status: { ja: '状態', en: 'Status' },
  estimate: { ja: '目安', en: 'Estimate' },
  actions: { ja: '操作', en: 'Actions' },
  showName: { ja: '氏名を表示', en: 'Show name' },
  hideName: { ja: '氏名を隠す', en: 'Hide name' },
  noName: { ja: '氏名の登録なし', en: 'No name given' },
  recall: { ja: '再呼び出し', en: 'Recall' },
  start: { ja: '診察開始', en: 'Start' },
  skip: { ja: '不在（後回し）', en: 'Skip' },
  finish: { ja: '終了', en: 'Done' },
  cancel: { ja: '取消', en: 'Cancel' },
  announcement: { ja: 'お知らせ', en: 'Announcement' },
  noResponse: { ja: 'ハブから応答がありません。接続を確認して、もう一度お試しください。', en: 'No answer from the hub. Check the connection and try again.' },
  notConnected: { ja: '接続されていません', en: 'Not connected' },
  confirmCancel: { ja: 'もう一度押すと取消', en: 'Press again to cancel' },
  chat: { ja: 'チャット', en: 'Chat' },
} satisfies Record<string, Bilingual>;

export const STATUS_TEXT: Record<TicketStatus, Bilingual> = {
  waiting: { ja: '待合中', en: 'Waiting' },
  called: { ja: '呼び出し中', en: 'Called' },
  in_consultation: { ja: '診察中', en: 'In consultation' },
  done: { ja: '終了', en: 'Done' },
  no_show: { ja: '不在', en: 'No-show' },
  cancelled: { ja: '取消', en: 'Cancelled' },
};

export const PRIORITY_TEXT: Record<Priority, Bilingual> = {
  normal: { ja: '通常', en: 'Normal' },
  urgent: { ja: '急患', en: 'Urgent' },
};

/** Japanese for the codes these pages can meet; the hub's English message is always shown beside it. */
export const ERROR_TEXT_JA: Partial<Record<ErrorCode, string>> = {
  AUTH_REQUIRED: 'トークンがありません。',
  AUTH_INVALID: 'トークンが正しくありません。管理者に新しいトークンを依頼してください。',
  AUTH_EXPIRED: 'トークンの有効期限が切れました。管理者に新しいトークンを依頼してください。',
  AUTH_FORBIDDEN: 'この操作の権限がありません。',
  AUTH_WRONG_CLINIC: 'このトークンは別のクリニックのものです。',
  INVALID_PAYLOAD: '入力内容が正しくありません。',
  PAYLOAD_TOO_LARGE: '入力内容が大きすぎます。',
  UNKNOWN_EVENT: 'ハブが知らない操作です。',
  RATE_LIMITED: '操作が多すぎます。少し待ってからお試しください。',
  STORE_UNAVAILABLE: 'データベースに接続できません。もう一度お試しください（二重に処理されることはありません）。',
  INTERNAL: 'ハブで予期しないエラーが起きました。',
  NOT_FOUND: '見つかりません。',
  METHOD_NOT_ALLOWED: 'この方法では使えません。',
  CLINIC_NOT_FOUND: 'クリニックが見つかりません。',
  QUEUE_DEPT_NOT_FOUND: '診療科が見つかりません。',
  QUEUE_ROOM_NOT_FOUND: 'この診療科にその診察室はありません。',
  QUEUE_ROOM_BUSY: 'この診察室には、まだ診察を始めていない呼び出し中の方がいます。再呼び出し・後回し・終了のいずれかを先に行ってください。',
  QUEUE_EMPTY: 'この診療科にお待ちの方はいません。',
  QUEUE_DEPT_ONLINE: 'オンライン診療の科です。呼び出しではなく「オンライン診察へ」で診察を開始してください。',
  QUEUE_TICKET_NOT_FOUND: 'この受付番号は見つかりません。',
  QUEUE_INVALID_TRANSITION: '今の状態ではこの操作はできません。',
  QUEUE_RESUME_TOO_OLD: '再同期が必要です。',
  CHAT_THREAD_NOT_FOUND: 'このチャットは見つかりません（受付が終了した可能性があります）。',
  CHAT_THREAD_EXISTS: '同じIDのチャンネルがすでにあります。',
  CHAT_NOT_MEMBER: 'このチャットのメンバーではありません。',
  CHAT_NOT_JOINED: 'このチャットを開いてからお試しください。',
  CHAT_MEMBERS_FIXED: '患者さんとのチャットのメンバーは変更できません。',
  CHAT_MESSAGE_EMPTY: 'メッセージを入力するか、ファイルを添付してください。',
  CHAT_MESSAGE_TOO_LONG: 'メッセージが長すぎます（2000文字まで）。',
  CHAT_ATTACHMENT_NOT_FOUND: '添付ファイルが見つかりません。もう一度添付してください。',
  CHAT_ATTACHMENT_TYPE_NOT_ALLOWED: '添付できるのは画像（PNG・JPEG・WebP）とPDFだけです。',
  CHAT_ATTACHMENT_TOO_LARGE: 'ファイルが大きすぎます。',
  CHAT_ATTACHMENTS_DISABLED: 'このサーバーではファイルを添付できません。',
  CHAT_QUOTA_EXCEEDED: '送信できる量の上限に達しました。しばらく待ってからお試しください。',
  CONSULT_DISABLED: 'このサーバーではオンライン診療が設定されていません。',
  CONSULT_DEPT_NOT_ONLINE: 'この診療科はオンライン診療の科ではありません。',
  MEDIA_NODE_UNAVAILABLE: 'ビデオ通話のサーバーが利用できません。少し待ってからお試しください。',
  CONSULT_NOT_FOUND: 'オンライン診察が見つかりません。',
  CONSULT_ENDED: 'オンライン診察は終了しています。',
  CONSULT_NOT_PARTICIPANT: 'このオンライン診察の参加者ではありません。',
};

export const both = (text: Bilingual, separator = ' / '): string => `${text.ja}${separator}${text.en}`;

export const aheadText = (ahead: number): Bilingual => ({ ja: `あと ${ahead} 人`, en: `${ahead} ahead` });

export const minutesText = (minutes: number): Bilingual => ({ ja: `約 ${minutes} 分`, en: `about ${minutes} min` });
/** The same estimate where there is little room (a ticket on the display). */
export const shortMinutesText = (minutes: number): Bilingual => ({ ja: `約${minutes}分`, en: `~${minutes} min` });

export const goToRoomText = (room: Bilingual): Bilingual => ({ ja: `${room.ja}へお越しください`, en: `Please go to ${room.en}` });
