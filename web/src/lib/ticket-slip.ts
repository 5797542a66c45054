/**
 * The ticket slip reception hands a patient: the clinic, the ticket number,
 * the department, the wait estimate and a QR code of the patient's own page.
 * Printed through the browser's print dialog: staff.css prints only
 * `#print-slip` (a narrow slip, any printer or a receipt printer's driver).
 */
import { bilingual, byId, h } from './dom.js';
import { minutesText, TEXT, type Bilingual } from './i18n.js';
import { qrSvg } from './qr.js';

export const SLIP_TEXT = {
  print: { ja: '受付票を印刷', en: 'Print ticket slip' },
  qr: { ja: 'QRコード', en: 'QR code' },
  scan: { ja: 'QRコードを読み取ると、スマートフォンで順番を確認できます。', en: 'Scan the QR code to follow your turn on your phone.' },
  qrLabel: { ja: '患者用ページのQRコード', en: 'QR code of the patient page' },
  close: { ja: '閉じる', en: 'Close' },
} satisfies Record<string, Bilingual>;

export interface SlipFacts {
  clinic: Bilingual;
  number: string;
  dept: Bilingual;
  waitMinutes: number;
  patientUrl: string;
}

/** The QR code of a patient's page, labelled in both languages. */
export function patientQr(patientUrl: string): SVGSVGElement {
  return qrSvg(patientUrl, `${SLIP_TEXT.qrLabel.ja} / ${SLIP_TEXT.qrLabel.en}`);
}

function slip(facts: SlipFacts): HTMLElement {
  return h(
    'article',
    { class: 'slip' },
    h('p', { class: 'slip-clinic' }, bilingual(facts.clinic)),
    h('p', { class: 'slip-label' }, bilingual(TEXT.ticketIssued, 'inline')),
    h('p', { class: 'slip-number' }, facts.number),
    h('p', { class: 'slip-dept' }, bilingual(facts.dept)),
    h('p', { class: 'slip-wait' }, bilingual(TEXT.estimatedWait, 'inline'), ' ', bilingual(minutesText(facts.waitMinutes), 'inline')),
    patientQr(facts.patientUrl),
    h('p', { class: 'slip-scan' }, bilingual(SLIP_TEXT.scan)),
  );
}

/** Puts the slip in the page's print area and opens the browser's print dialog. */
export function printSlip(facts: SlipFacts): void {
  byId('print-slip').replaceChildren(slip(facts));
  window.print();
}
