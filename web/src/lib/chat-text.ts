import type { PresenceStatus, Role, StaffPresence } from '@clinic-hub/protocol';
import type { Bilingual } from './i18n.js';

/** Every text of the chat panels, in Japanese and English. */
export const CHAT_TEXT = {
  chatWithClinic: { ja: 'クリニックとのチャット', en: 'Chat with the clinic' },
  chat: { ja: 'チャット', en: 'Chat' },
  message: { ja: 'メッセージ', en: 'Message' },
  placeholder: { ja: 'メッセージを入力（Enterで送信）', en: 'Type a message (Enter sends)' },
  send: { ja: '送信', en: 'Send' },
  attach: { ja: '添付', en: 'Attach' },
  removeFile: { ja: '添付を外す', en: 'Remove' },
  earlier: { ja: '以前のメッセージ', en: 'Earlier messages' },
  sending: { ja: '送信中…', en: 'Sending…' },
  failed: { ja: '送信できませんでした', en: 'Not sent' },
  retry: { ja: '再送', en: 'Retry' },
  read: { ja: '既読', en: 'Read' },
  you: { ja: 'あなた', en: 'You' },
  staff: { ja: 'スタッフ', en: 'Staff' },
  doctor: { ja: '医師', en: 'Doctor' },
  patient: { ja: '患者さん', en: 'Patient' },
  typing: { ja: '入力中…', en: 'typing…' },
  noMessages: { ja: 'まだメッセージはありません', en: 'No messages yet' },
  download: { ja: 'ダウンロード', en: 'Download' },
  cannotOpen: { ja: 'ファイルを開けません', en: 'Cannot open the file' },
  patients: { ja: '患者さんとのチャット', en: 'Patient chats' },
  channels: { ja: 'スタッフチャンネル', en: 'Staff channels' },
  noThreads: { ja: 'まだありません', en: 'None yet' },
  newChannel: { ja: '新しいチャンネル', en: 'New channel' },
  channelTitle: { ja: 'チャンネル名', en: 'Channel name' },
  channelMembers: { ja: 'メンバー（ユーザーID、カンマ区切り）', en: 'Members (user ids, comma-separated)' },
  create: { ja: '作成', en: 'Create' },
  chooseThread: { ja: '左の一覧からチャットを選んでください', en: 'Choose a chat from the list' },
  myStatus: { ja: '自分の状態', en: 'My status' },
  staffPresence: { ja: 'スタッフの状態', en: 'Staff' },
  nobodyOnline: { ja: 'ただいま対応できるスタッフはいません。メッセージは後ほど確認します。', en: 'No staff are available right now; we will read your message later.' },
  unread: { ja: '未読', en: 'Unread' },
} satisfies Record<string, Bilingual>;

export const PRESENCE_TEXT: Record<PresenceStatus | 'offline', Bilingual> = {
  online: { ja: '対応可能', en: 'Available' },
  busy: { ja: '対応中', en: 'Busy' },
  away: { ja: '離席中', en: 'Away' },
  offline: { ja: 'オフライン', en: 'Offline' },
};

export function roleText(role: Role): Bilingual {
  if (role === 'patient') return CHAT_TEXT.patient;
  if (role === 'doctor') return CHAT_TEXT.doctor;
  return CHAT_TEXT.staff;
}

/** What a patient sees of the staff: how many are available, busy or away. */
export function presenceSummary(staff: Iterable<StaffPresence>): Bilingual {
  const counts = { online: 0, busy: 0, away: 0 };
  for (const p of staff) if (p.status !== 'offline') counts[p.status] += 1;
  if (counts.online + counts.busy + counts.away === 0) return CHAT_TEXT.nobodyOnline;
  const parts = (['online', 'busy', 'away'] as const).filter((s) => counts[s] > 0);
  return {
    ja: `${CHAT_TEXT.staff.ja}：${parts.map((s) => `${PRESENCE_TEXT[s].ja} ${counts[s]}人`).join('、')}`,
    en: `${CHAT_TEXT.staff.en}: ${parts.map((s) => `${counts[s]} ${PRESENCE_TEXT[s].en.toLowerCase()}`).join(', ')}`,
  };
}
