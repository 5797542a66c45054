/**
 * What the consultation page says once the patient or clinician is out of
 * the room. A consultation that ended normally (the clinician ended it, or
 * the media-server says it is over when one joins late) is not an error:
 * it says so calmly, with no red connection badge. Only a refusal that
 * needs someone to act (a bad or expired link, a full room) reads as one.
 */
import type { MediaClientState } from './media-client.js';
import { MEDIA_ERROR_TEXT_JA, MEDIA_TEXT } from './media-text.js';
import type { Bilingual } from './i18n.js';

type Finished = Extract<MediaClientState, { kind: 'closed' | 'rejected' }>;

export interface AfterConsultation {
  /** ended: the consultation is over; left/replaced: this page left, and may come back; problem: a refusal. */
  kind: 'ended' | 'left' | 'problem';
  text: Bilingual;
  /** Offer "Join again". */
  canRejoin: boolean;
  /** What <html data-closed> says (tests and styles): the reason or the code. */
  code: string;
}

export function afterConsultation(state: Finished): AfterConsultation {
  if (state.kind === 'rejected') {
    if (state.code === 'CONSULT_ENDED') return { kind: 'ended', text: MEDIA_TEXT.ended, canRejoin: false, code: 'ended' };
    const ja = MEDIA_ERROR_TEXT_JA[state.code as keyof typeof MEDIA_ERROR_TEXT_JA] ?? state.code;
    return { kind: 'problem', text: { ja, en: `${state.code}: ${state.message}` }, canRejoin: false, code: state.code };
  }
  switch (state.reason) {
    case 'ended':
      return { kind: 'ended', text: MEDIA_TEXT.ended, canRejoin: false, code: 'ended' };
    case 'left':
      return { kind: 'left', text: MEDIA_TEXT.left, canRejoin: true, code: 'left' };
    case 'replaced':
      return { kind: 'left', text: MEDIA_TEXT.replaced, canRejoin: true, code: 'replaced' };
    default:
      return { kind: 'problem', text: MEDIA_TEXT[state.reason], canRejoin: false, code: state.reason };
  }
}
