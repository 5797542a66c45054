/**
 * Where Japanese text may wrap. Pages set `word-break: keep-all` on names and
 * notices, so a browser never breaks between two Japanese characters on its
 * own (it would split オンライン診察室1 as オンライ/ン診察室1); the only places
 * a line may end are the `<wbr>`s put here: between words (Intl.Segmenter),
 * and only where the two sides are different kinds of word, so that
 * 診察|室, させ|て or 第|1 stay together while オンライン|診察室1 may wrap.
 */

const HAN = /\p{Script=Han}/u;
const HIRAGANA = /\p{Script=Hiragana}/u;
const KATAKANA = /[\p{Script=Katakana}ー]/u;
const DIGIT = /\p{Nd}/u;
/** Characters a line must not start with (closing brackets, marks, small kana); none ends one either after an opening bracket. */
const NO_LINE_START = /[、。，．・：；！？）」』】〕〉》ー々ゝゞぁぃぅぇぉっゃゅょゎァィゥェォッャュョヮヵヶ,.:;!?)\]}%]/u;
const NO_LINE_END = /[（「『【〔〈《([{]/u;

type Kind = 'han' | 'hiragana' | 'katakana' | 'digit' | 'other';

function kindOf(char: string): Kind {
  if (HAN.test(char)) return 'han';
  if (HIRAGANA.test(char)) return 'hiragana';
  if (KATAKANA.test(char)) return 'katakana';
  if (DIGIT.test(char)) return 'digit';
  return 'other';
}

const segmenter = typeof Intl !== 'undefined' && 'Segmenter' in Intl ? new Intl.Segmenter('ja', { granularity: 'word' }) : null;

/** Offsets (0 < i < length) where `text` may wrap. */
export function breakOpportunities(text: string): number[] {
  if (!segmenter) return [];
  const segments = [...segmenter.segment(text)];
  const out: number[] = [];
  for (let s = 1; s < segments.length; s++) {
    const at = segments[s]!.index;
    const before = text[at - 1]!;
    const after = text[at]!;
    if (/\s/u.test(before) || /\s/u.test(after)) continue; // spaces break by themselves
    if (NO_LINE_START.test(after) || NO_LINE_END.test(before)) continue;
    const a = kindOf(before);
    const b = kindOf(after);
    if (a === 'other' && b === 'other') continue; // Latin words break at their spaces
    if (a === b) continue;
    if (b === 'digit') continue; // 室1, 第1
    // A one-character kanji word after a word is its suffix: アレルギー|科, 小児|科.
    const next = segments[s]!.segment;
    if (b === 'han' && next.length === 1 && a !== 'digit') continue;
    out.push(at);
  }
  return out;
}

/** `text` as text nodes with a `<wbr>` at each break opportunity; the text itself is unchanged (textContent is the same). */
export function breakable(text: string): DocumentFragment {
  const fragment = document.createDocumentFragment();
  let from = 0;
  for (const at of breakOpportunities(text)) {
    fragment.append(text.slice(from, at), document.createElement('wbr'));
    from = at;
  }
  fragment.append(text.slice(from));
  return fragment;
}
