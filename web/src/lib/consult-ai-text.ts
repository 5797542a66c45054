import type { Bilingual } from './i18n.js';

/** Texts of the consultation page's AI panel (clinicians only), Japanese first. */
export const AI_TEXT = {
  title: { ja: 'AI 記録（医療者のみ表示）', en: 'AI notes (clinicians only)' },
  transcript: { ja: '文字起こし', en: 'Transcript' },
  emotions: { ja: '声の様子（話者ごと）', en: 'Voice trend per speaker' },
  noTranscript: { ja: '発話があるとここに表示されます。', en: 'What is said appears here.' },
  noEmotions: { ja: '発話ごとに更新されます。', en: 'Updated after each utterance.' },
  disclaimer: {
    ja: '自動認識による参考情報です。診断には使わないでください。',
    en: 'Automatic and approximate: a prompt for attention, not a finding.',
  },
  /** 0–100 after it. */
  stress: { ja: 'ストレス指数', en: 'Stress index' },
  speaking: { ja: '発話中', en: 'speaking' },
  you: { ja: 'あなた', en: 'you' },
  reconnecting: { ja: 'AI 記録に再接続しています…', en: 'Reconnecting to the AI notes…' },
  ended: { ja: '診察は終了しました。これ以降の記録はありません。', en: 'The consultation has ended: nothing more will be added.' },
  transcriptsOff: {
    ja: 'このクリニックではライブ文字起こしがオフです。文字起こしと声の様子は表示されません。',
    en: 'Live transcripts are off for this clinic: no transcript or voice trend will appear.',
  },
  noWorker: {
    ja: 'AI ワーカーが動いていないため、文字起こしと声の様子は届きません。',
    en: 'No AI worker is running: no transcript or voice trend will arrive.',
  },
} satisfies Record<string, Bilingual>;

/**
 * Emotion labels of the public speech-emotion models (IEMOCAP's short
 * names, RAVDESS's eight, common synonyms), as the AI workers canonicalise
 * them. A label not here is shown as the model gave it.
 */
const LABEL_TEXT: Record<string, Bilingual> = {
  neutral: { ja: '平静', en: 'neutral' },
  calm: { ja: '落ち着き', en: 'calm' },
  happy: { ja: '明るい', en: 'happy' },
  sad: { ja: '悲しみ', en: 'sad' },
  angry: { ja: '怒り', en: 'angry' },
  fearful: { ja: '不安・恐れ', en: 'fearful' },
  disgust: { ja: '嫌悪', en: 'disgust' },
  surprised: { ja: '驚き', en: 'surprised' },
  excited: { ja: '興奮', en: 'excited' },
  frustrated: { ja: 'いら立ち', en: 'frustrated' },
  bored: { ja: '退屈', en: 'bored' },
};

const LABEL_ALIASES: Record<string, string> = {
  neu: 'neutral',
  hap: 'happy',
  happiness: 'happy',
  joy: 'happy',
  ang: 'angry',
  anger: 'angry',
  sadness: 'sad',
  fea: 'fearful',
  fear: 'fearful',
  dis: 'disgust',
  disgusted: 'disgust',
  sur: 'surprised',
  surprise: 'surprised',
  cal: 'calm',
  exc: 'excited',
  fru: 'frustrated',
  frustration: 'frustrated',
  boredom: 'bored',
};

export function emotionLabelText(label: string): Bilingual {
  const key = label.trim().toLowerCase();
  return LABEL_TEXT[LABEL_ALIASES[key] ?? key] ?? { ja: label, en: label };
}

export const trendText = (values: readonly number[]): Bilingual => {
  const percent = values.map((v) => Math.round(v * 100));
  const first = percent[0] ?? 0;
  const last = percent.at(-1) ?? 0;
  return {
    ja: `${AI_TEXT.stress.ja}の推移（0〜100、発話 ${values.length} 回）：${first} → ${last}`,
    en: `${AI_TEXT.stress.en} over ${values.length} utterance(s), 0–100: ${first} → ${last}`,
  };
};
