/**
 * The clinic's QR poster, for staff to print (`/poster#token=…`, a staff or
 * admin token). Its QR code opens the phone check-in page on a patient's own
 * phone; each poster has its own id, so a poster whose photo went around can
 * be withdrawn and a new one printed. Phones are taken only while the clinic
 * is open (its opening hours) and only when the clinic has mobile check-in on.
 */
import type { OpeningHours, ProtocolError, PublicClinic } from '@clinic-hub/protocol';
import { bilingual, byId, h } from '../lib/dom.js';
import { fetchClinic } from '../lib/clinic-info.js';
import { pageToken, showFatal } from '../lib/page.js';
import { qrSvg } from '../lib/qr.js';

interface Poster {
  id: string;
  label: string;
  createdAt: number;
  createdBy: string;
  url: string;
}
interface PostersAnswer {
  mobile: { enabled: boolean; open: boolean; openingHours: OpeningHours | null };
  posters: Poster[];
}

const TEXT = {
  title: { ja: 'スマートフォンで受付', en: 'Check in on your phone' },
  steps: {
    ja: 'スマートフォンのカメラでQRコードを読み取り、画面の案内に従って受付してください。順番が近づくとお知らせします。',
    en: 'Scan the QR code with your phone camera and follow the screens. We will tell you when your turn is near.',
  },
  hours: { ja: '受付時間', en: 'Hours' },
  make: { ja: '新しいポスターを作る', en: 'Make a new poster' },
  label: { ja: '掲示場所（メモ）', en: 'Where it hangs (a note)' },
  print: { ja: '印刷', en: 'Print' },
  withdraw: { ja: '取り下げ（QRコードを無効に）', en: 'Withdraw (stop its QR code)' },
  off: {
    ja: 'このクリニックではスマートフォンからの受付がオフです（クリニック設定の selfCheckin.mobile）。ポスターのQRコードは使えません。',
    en: 'This clinic has phone check-in off (selfCheckin.mobile in its clinic file): poster QR codes do not work.',
  },
  none: { ja: 'ポスターはまだありません。', en: 'No posters yet.' },
} as const;

const DAYS = [
  ['mon', '月', 'Mon'],
  ['tue', '火', 'Tue'],
  ['wed', '水', 'Wed'],
  ['thu', '木', 'Thu'],
  ['fri', '金', 'Fri'],
  ['sat', '土', 'Sat'],
  ['sun', '日', 'Sun'],
] as const;

const access = pageToken(['staff', 'admin']);
if (access) void start(access.token, access.info.clinic ?? '');

async function start(token: string, clinicId: string): Promise<void> {
  const clinic = await fetchClinic(token, clinicId);
  if (!clinic) return showFatal({ ja: 'クリニックの情報を読み込めません。', en: 'Cannot load the clinic.' });
  const api = async <T>(method: string, path = '', body?: unknown): Promise<T | { error: ProtocolError }> => {
    const res = await fetch(`/api/clinics/${encodeURIComponent(clinicId)}/posters${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return (await res.json()) as T | { error: ProtocolError };
  };
  let selected: string | null = null;

  async function refresh(): Promise<void> {
    const answer = await api<PostersAnswer>('GET');
    if ('error' in answer) return showFatal({ ja: 'ポスターを読み込めません。', en: 'Cannot load the posters.' }, answer.error.code);
    if (!selected || !answer.posters.some((p) => p.id === selected)) selected = answer.posters[0]?.id ?? null;
    render(answer);
  }

  function render(answer: PostersAnswer): void {
    const poster = answer.posters.find((p) => p.id === selected) ?? null;
    const form = h('form', { class: 'make', id: 'make-poster' }, h('label', {}, bilingual(TEXT.label, 'inline'), h('input', { name: 'label', maxlength: 100 })), h('button', { type: 'submit' }, bilingual(TEXT.make, 'inline')));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const label = String(new FormData(form).get('label') ?? '').trim();
      void api<{ poster: Poster }>('POST', '', label ? { label } : {}).then((made) => {
        if (!('error' in made)) selected = made.poster.id;
        return refresh();
      });
    });
    const list = answer.posters.length
      ? h(
          'ul',
          { class: 'poster-list' },
          ...answer.posters.map((p) =>
            h(
              'li',
              { 'data-poster': p.id, class: p.id === selected ? 'selected' : '' },
              h('button', { type: 'button', onclick: () => ((selected = p.id), render(answer)) }, `${p.label || p.id.slice(0, 6)} · ${new Date(p.createdAt).toLocaleDateString('ja-JP')}`),
              h('button', { type: 'button', class: 'withdraw', 'data-withdraw': p.id, onclick: () => void api('DELETE', `/${encodeURIComponent(p.id)}`).then(refresh) }, bilingual(TEXT.withdraw, 'inline')),
            ),
          ),
        )
      : h('p', {}, bilingual(TEXT.none, 'inline'));
    byId('controls').replaceChildren(
      ...(answer.mobile.enabled ? [] : [h('p', { class: 'warning', role: 'alert' }, bilingual(TEXT.off))]),
      form,
      list,
      ...(poster ? [h('button', { type: 'button', id: 'print-poster', onclick: () => window.print() }, bilingual(TEXT.print, 'inline'))] : []),
    );
    byId('poster').replaceChildren(...(poster ? posterSheet(clinic!, poster, answer.mobile.openingHours) : []));
  }

  await refresh();
}

function posterSheet(clinic: PublicClinic, poster: Poster, hours: OpeningHours | null): Node[] {
  const rows = hours
    ? DAYS.filter(([day]) => hours[day].length > 0).map(([day, ja, en]) => h('tr', {}, h('th', {}, `${ja} ${en}`), h('td', {}, hours[day].join('　'))))
    : [];
  return [
    h('p', { class: 'poster-clinic' }, bilingual(clinic.name)),
    h('h1', {}, bilingual(TEXT.title)),
    h('figure', { class: 'poster-qr', id: 'poster-qr' }, qrSvg(poster.url, `${TEXT.title.ja} / ${TEXT.title.en}`)),
    h('p', { class: 'poster-steps' }, bilingual(TEXT.steps)),
    ...(rows.length ? [h('h2', {}, bilingual(TEXT.hours, 'inline')), h('table', { class: 'poster-hours' }, ...rows)] : []),
  ];
}
