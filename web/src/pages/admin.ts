/**
 * The clinic manager's console (`/admin`, docs/protocol.md "Clinic
 * settings"): a live overview of the services (the same APIs as `clinic
 * status` and `clinic workers`), the clinic's settings (rooms open or closed,
 * and every setting as the clinic file's JSON), the audit log (filter, CSV
 * export; reading it is audited), recordings, notifications (dead letters
 * with retry) and tokens (issue, revoke). Admins see every section; staff
 * see the overview, the settings (rooms switchable, the rest read-only) and
 * the notifications of their own clinic. Admins also purge a recording on
 * request (with a reason), see the active sessions on every node and revoke
 * one, and manage the clinic's webhooks (endpoints, deliveries with their
 * outcome, secret rotation; docs/webhooks.md).
 */
import type {
  ActiveSessions,
  ClinicSettingsRecord,
  ConsultListing,
  DisplayPresence,
  NotifyOverview,
  OpsStatus,
  OpsWorkers,
  ProtocolError,
  RecordingList,
  Revocation,
  Role,
  WebhookDelivery,
  WebhookEndpoint,
} from '@clinic-hub/protocol';
import { bilingual, byId, h } from '../lib/dom.js';
import { both, type Bilingual } from '../lib/i18n.js';
import { showMessage as showPageMessage } from '../lib/messages.js';
import { pageToken } from '../lib/page.js';
import { tokenFromFragment } from '../lib/token.js';

const OVERVIEW_EVERY_MS = 5000;

const T = {
  nodes: { ja: 'ハブノード', en: 'Hub nodes' },
  redis: { ja: 'Redis', en: 'Redis' },
  queues: { ja: '待ち行列', en: 'Queues' },
  media: { ja: 'メディアサーバー', en: 'Media servers' },
  workers: { ja: 'AI ワーカー', en: 'AI workers' },
  jobs: { ja: 'ジョブキュー', en: 'Job queues' },
  screens: { ja: '接続中の画面', en: 'Connected screens' },
  screen: { ja: '画面', en: 'Screen' },
  lastSeen: { ja: '最終確認', en: 'Last seen' },
  consultations: { ja: 'オンライン診察', en: 'Video consultations' },
  ticket: { ja: '受付番号', en: 'Ticket' },
  room: { ja: '診察室', en: 'Room' },
  up: { ja: '稼働中', en: 'up' },
  down: { ja: '停止', en: 'down' },
  none: { ja: 'なし', en: 'none' },
  node: { ja: 'ノード', en: 'Node' },
  clients: { ja: '接続（役割別）', en: 'Clients by role' },
  state: { ja: '状態', en: 'State' },
  dept: { ja: '診療科', en: 'Department' },
  waiting: { ja: '待ち', en: 'Waiting' },
  calledInConsult: { ja: '呼出・診察中', en: 'Called, in consultation' },
  liveRooms: { ja: 'オンライン診察中', en: 'Open video consultations' },
  sessions: { ja: 'セッション', en: 'Sessions' },
  lag: { ja: '遅れ（秒）', en: 'Lag (s)' },
  queue: { ja: 'キュー', en: 'Queue' },
  counts: { ja: '件数', en: 'Counts' },
  version: { ja: '版', en: 'version' },
  updatedBy: { ja: '更新者', en: 'updated by' },
  open: { ja: '開室', en: 'open' },
  closed: { ja: '閉室', en: 'closed' },
  saved: { ja: '保存しました', en: 'Saved' },
  noChange: { ja: '変更はありません', en: 'Nothing changed' },
  time: { ja: '日時', en: 'Time' },
  actor: { ja: '実行者', en: 'Actor' },
  action: { ja: '操作', en: 'Action' },
  subject: { ja: '対象', en: 'Subject' },
  from: { ja: '接続元', en: 'From' },
  change: { ja: '変更前 → 変更後', en: 'Before → after' },
  noEntries: { ja: '該当する記録はありません', en: 'No matching entries' },
  recording: { ja: '録画', en: 'Recording' },
  consult: { ja: '診察', en: 'Consultation' },
  status: { ja: '状態', en: 'Status' },
  started: { ja: '開始', en: 'Started' },
  purgeAt: { ja: '削除予定', en: 'Purged at' },
  files: { ja: 'ファイル', en: 'Files' },
  download: { ja: 'ダウンロード', en: 'Download' },
  noRecordings: { ja: '録画はありません', en: 'No recordings' },
  recordingsOff: { ja: 'このハブには録画の鍵がありません（RECORDING_KEY）', en: 'This hub has no recording key (RECORDING_KEY)' },
  deadLetters: { ja: '送信できなかった通知', en: 'Dead letters' },
  retry: { ja: '再送', en: 'Retry' },
  retried: { ja: '再送しました', en: 'Sent again' },
  kind: { ja: '種類', en: 'Kind' },
  channel: { ja: '経路', en: 'Channel' },
  reason: { ja: '理由', en: 'Reason' },
  issued: { ja: '発行しました（この画面を離れると再表示できません）', en: 'Issued (it is not shown again once you leave)' },
  revoked: { ja: '無効化しました', en: 'Revoked' },
  noRevocations: { ja: '無効化はありません', en: 'No revocations' },
  until: { ja: '期限', en: 'Until' },
  what: { ja: '対象', en: 'What' },
  testQueued: { ja: 'テスト通知を送信待ちにしました', en: 'Test notice queued' },
  purgeQueued: { ja: '削除を受け付けました（録画ワーカーが削除します）', en: 'Purge queued (the recordings worker deletes it)' },
  purge: { ja: '削除', en: 'Purge' },
  session: { ja: 'セッション ID', en: 'Session id' },
  user: { ja: '利用者', en: 'User' },
  since: { ja: '開始', en: 'Since' },
  where: { ja: '接続', en: 'Connected to' },
  noSessions: { ja: '接続中のセッションはありません', en: 'No active sessions' },
  revoke: { ja: '無効化', en: 'Revoke' },
  endpoint: { ja: '送信先', en: 'Endpoint' },
  events: { ja: 'イベント', en: 'Events' },
  patientData: { ja: '患者情報', en: 'Patient data' },
  yes: { ja: 'あり', en: 'yes' },
  no: { ja: 'なし', en: 'no' },
  noEndpoints: { ja: '送信先はありません', en: 'No endpoints' },
  noDeliveries: { ja: '送信はまだありません', en: 'No deliveries yet' },
  rotate: { ja: '秘密鍵を更新', en: 'Rotate secret' },
  remove: { ja: '削除', en: 'Remove' },
  removed: { ja: '削除しました', en: 'Removed' },
  secret: {
    ja: '署名用の秘密鍵です。いま控えてください（再表示できません）。以前の鍵も24時間は署名に使われます。',
    en: 'The signing secret: keep it now (it is not shown again). A previous secret keeps signing for 24 hours.',
  },
  event: { ja: 'イベント', en: 'Event' },
  eventId: { ja: 'イベント ID', en: 'Event id' },
  attempt: { ja: '回', en: 'Try' },
  outcome: { ja: '結果', en: 'Outcome' },
  http: { ja: 'HTTP / 理由', en: 'HTTP / why' },
} satisfies Record<string, Bilingual>;

const access = pageToken(['admin', 'staff']);
if (access?.info.role) start(access.token, access.info.role, access.info.clinic ?? '');

function start(initialToken: string, role: Role, tokenClinic: string): void {
  const clinic = new URLSearchParams(location.hash.slice(1)).get('clinic') ?? tokenClinic;
  const token = () => tokenFromFragment() ?? initialToken;
  const isAdmin = role === 'admin';
  document.documentElement.dataset.role = role;
  byId('who').textContent = `${access?.info.name ?? access?.info.sub ?? ''} (${role})`;
  const adminOnly = ['audit', 'recordings', 'tokens', 'webhooks'];
  for (const id of [...adminOnly, 'notify-test']) byId(id).hidden = !isAdmin;
  for (const link of document.querySelectorAll<HTMLAnchorElement>('.tabs a')) if (!isAdmin && adminOnly.includes(link.hash.slice(1))) link.hidden = true;

  async function api<T>(method: string, path: string, body?: unknown): Promise<{ ok: true; value: T; response: Response } | { ok: false; error: ProtocolError }> {
    try {
      const response = await fetch(path, {
        method,
        headers: { authorization: `Bearer ${token()}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      if (response.ok && (response.headers.get('content-type') ?? '').startsWith('application/json')) return { ok: true, value: (await response.json()) as T, response };
      if (response.ok) return { ok: true, value: undefined as T, response };
      const answer = (await response.json().catch(() => null)) as { error?: ProtocolError } | null;
      return { ok: false, error: answer?.error ?? { code: 'INTERNAL', message: `HTTP ${response.status}` } };
    } catch {
      return { ok: false, error: { code: 'STORE_UNAVAILABLE', message: 'no answer from the hub' } };
    }
  }
  const clinicPath = (rest: string) => `/api/clinics/${encodeURIComponent(clinic)}${rest}`;

  // ---- Overview: the same APIs as `clinic status` and `clinic workers`, every few seconds.
  async function refreshOverview(): Promise<void> {
    const [status, workers, displays, consultations] = await Promise.all([
      api<OpsStatus>('GET', '/api/ops/status'),
      api<OpsWorkers>('GET', '/api/ops/workers'),
      api<{ displays: DisplayPresence[] }>('GET', clinicPath('/displays')),
      api<{ consultations: ConsultListing[] }>('GET', clinicPath('/consultations?count=5')),
    ]);
    if (!status.ok) return showError(status.error, both(T.nodes));
    const mine = status.value.clinics.filter((c) => c.id === clinic);
    const cards = [
      card(T.nodes, table([T.node, T.state, T.clients], status.value.nodes.map((n) => [n.nodeId, upDown(n.up), Object.entries(n.clients).map(([r, c]) => `${r} ${c}`).join(', ') || '0']))),
      card(T.redis, h('p', {}, upDown(status.value.redis.up), status.value.redis.version ? ` ${status.value.redis.version}` : '')),
      card(
        T.queues,
        mine.length === 0
          ? bilingual(T.none, 'inline')
          : table(
              [T.dept, T.waiting],
              Object.entries(mine[0]!.waiting).map(([dept, n]) => [dept, String(n)]),
            ),
        mine[0] ? h('p', { class: 'summary', 'data-called': mine[0].called }, `${both(T.calledInConsult)}: ${mine[0].called} / ${mine[0].inConsultation} · ${both(T.liveRooms)}: ${mine[0].liveRooms}`) : null,
      ),
      card(T.media, status.value.mediaNodes.length === 0 ? bilingual(T.none, 'inline') : table([T.node], status.value.mediaNodes.map((m) => [m.id]))),
    ];
    // What `clinic displays` and `clinic rooms` show: the screens online now, the consultations not yet ended.
    if (displays.ok) {
      const online = displays.value.displays.filter((d) => d.online);
      cards.push(card(T.screens, online.length === 0 ? bilingual(T.none, 'inline') : table([T.screen, T.node, T.lastSeen], online.map((d) => [d.sub, d.node, new Date(d.lastSeen).toLocaleTimeString('ja-JP', { hourCycle: 'h23' })]), 'screens-table')));
    }
    if (consultations.ok) {
      const open = consultations.value.consultations.filter((c) => c.status !== 'ended');
      cards.push(card(T.consultations, open.length === 0 ? bilingual(T.none, 'inline') : table([T.ticket, T.dept, T.room, T.state, T.node], open.map((c) => [c.number, c.dept, c.room, c.status, c.node]), 'consultations-table')));
    }
    if (workers.ok) {
      cards.push(
        card(T.workers, workers.value.workers.length === 0 ? bilingual(T.none, 'inline') : table([T.node, T.sessions, T.lag], workers.value.workers.map((w) => [w.id, `${w.sessions}/${w.concurrency}`, w.lagSeconds.toFixed(1)]))),
        card(T.jobs, table([T.queue, T.counts], workers.value.queues.map((q) => [q.queue, `waiting ${q.counts.waiting} · active ${q.counts.active} · delayed ${q.counts.delayed} · failed ${q.counts.failed}`]))),
      );
    }
    byId('overview-body').replaceChildren(h('div', { class: 'cards' }, ...cards));
    byId('overview-updated').textContent = new Date().toLocaleTimeString('ja-JP', { hourCycle: 'h23' });
    document.documentElement.dataset.overview = 'live';
  }

  // ---- Settings: rooms as switches, everything as the clinic file's JSON.
  let settingsVersion = 0;
  async function loadSettings(): Promise<void> {
    const answer = await api<ClinicSettingsRecord>('GET', clinicPath('/settings'));
    if (!answer.ok) return showError(answer.error, both({ ja: '設定', en: 'Settings' }));
    const record = answer.value;
    settingsVersion = record.version;
    byId('clinic-name').replaceChildren(bilingual(record.settings.name, 'inline'));
    byId('settings-meta').textContent = `${both(T.version)} ${record.version} · ${both(T.updatedBy)} ${record.updatedBy} · ${new Date(record.updatedAt).toLocaleString('ja-JP')}`;
    byId('settings-rooms').replaceChildren(
      ...record.settings.departments.map((dept) =>
        h(
          'div',
          { class: 'dept-rooms', 'data-dept': dept.id },
          h('h4', {}, bilingual(dept.name, 'inline')),
          h(
            'ul',
            { class: 'rooms' },
            ...dept.rooms.map((room) =>
              h(
                'li',
                {},
                h(
                  'button',
                  { type: 'button', class: 'room-switch', role: 'switch', 'aria-checked': room.open ? 'true' : 'false', 'data-room': room.id, onclick: () => void switchRoom(room.id, !room.open) },
                  `${both(room.name)}: ${both(room.open ? T.open : T.closed)}`,
                ),
              ),
            ),
          ),
        ),
      ),
    );
    const textarea = byId<HTMLTextAreaElement>('settings-json');
    textarea.value = JSON.stringify(record.settings, null, 2);
    textarea.readOnly = !isAdmin;
    byId('settings-save').hidden = !isAdmin;
    document.documentElement.dataset.settings = String(record.version);
  }
  async function switchRoom(room: string, open: boolean): Promise<void> {
    const answer = await api<{ version: number }>('PUT', clinicPath(`/rooms/${encodeURIComponent(room)}`), { open });
    if (!answer.ok) return showError(answer.error, room);
    await loadSettings();
  }
  byId('settings-form').addEventListener('submit', (event) => {
    event.preventDefault();
    void (async () => {
      let settings: unknown;
      try {
        settings = JSON.parse(byId<HTMLTextAreaElement>('settings-json').value);
      } catch (error) {
        return showError({ code: 'INVALID_PAYLOAD', message: 'The settings are not JSON.', detail: (error as Error).message }, both({ ja: '設定', en: 'Settings' }));
      }
      const answer = await api<{ changed: boolean; version: number }>('PUT', clinicPath('/settings'), { settings, ifVersion: settingsVersion });
      if (!answer.ok) return showError(answer.error, both({ ja: '設定の保存', en: 'Saving the settings' }));
      showMessage('ok', both(answer.value.changed ? T.saved : T.noChange) + ` (${both(T.version)} ${answer.value.version})`);
      await loadSettings();
    })();
  });

  // ---- Audit: filter, CSV export.
  const auditQuery = () => {
    const form = new FormData(byId<HTMLFormElement>('audit-form'));
    const query = new URLSearchParams({ count: '200' });
    for (const key of ['actor', 'action', 'subject']) {
      const value = String(form.get(key) ?? '').trim();
      if (value) query.set(key, value);
    }
    for (const key of ['since', 'until']) {
      const value = String(form.get(key) ?? '');
      if (value) query.set(key, String(new Date(value).getTime()));
    }
    return query;
  };
  async function searchAudit(): Promise<void> {
    const answer = await api<{ entries: { id: string; at: number; actor: string; role: string; action: string; subject: string; from: string; before?: string; after?: string }[] }>(
      'GET',
      clinicPath(`/audit?${auditQuery()}`),
    );
    if (!answer.ok) return showError(answer.error, both({ ja: '監査ログ', en: 'Audit log' }));
    const entries = answer.value.entries;
    byId('audit-body').replaceChildren(
      entries.length === 0
        ? h('p', { class: 'empty' }, bilingual(T.noEntries, 'inline'))
        : table(
            [T.time, T.actor, T.action, T.subject, T.from, T.change],
            entries.map((e) => [new Date(e.at).toLocaleString('ja-JP'), `${e.actor} (${e.role})`, e.action, e.subject, e.from, e.before !== undefined ? `${e.before} → ${e.after ?? ''}` : '']),
            'audit-table',
          ),
    );
    document.documentElement.dataset.audit = String(entries.length);
  }
  byId('audit-form').addEventListener('submit', (event) => {
    event.preventDefault();
    void searchAudit();
  });
  byId('audit-csv').addEventListener('click', () => {
    void (async () => {
      const query = auditQuery();
      query.set('format', 'csv');
      query.set('count', '1000');
      const answer = await api<undefined>('GET', clinicPath(`/audit?${query}`));
      if (!answer.ok) return showError(answer.error, 'CSV');
      save(await answer.response.blob(), `audit-${clinic}.csv`);
    })();
  });

  // ---- Recordings: list, export (as `clinic recordings` does).
  async function loadRecordings(): Promise<void> {
    const answer = await api<RecordingList>('GET', clinicPath('/recordings?count=50'));
    if (!answer.ok) {
      byId('recordings-body').replaceChildren(h('p', { class: 'empty' }, answer.error.code === 'RECORDING_KEY_MISSING' ? bilingual(T.recordingsOff, 'inline') : `${answer.error.code}: ${answer.error.message}`));
      return;
    }
    const recordings = answer.value.recordings;
    byId('recordings-body').replaceChildren(
      recordings.length === 0
        ? h('p', { class: 'empty' }, bilingual(T.noRecordings, 'inline'))
        : table(
            [T.recording, T.consult, T.status, T.started, T.purgeAt, T.files],
            recordings.map((r) => [
              r.id,
              r.consult,
              r.status,
              new Date(r.startedAt).toLocaleString('ja-JP'),
              r.purgeAt ? new Date(r.purgeAt).toLocaleString('ja-JP') : '',
              h(
                'span',
                {},
                ...[...new Set(r.files.map((f) => f.participant))].map((participant) =>
                  h('button', { type: 'button', onclick: () => void exportRecording(r.id, participant) }, `${both(T.download)} ${participant}`),
                ),
              ),
            ]),
            'recordings-table',
          ),
    );
  }
  byId('purge-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const form = new FormData(event.target as HTMLFormElement);
    const recording = String(form.get('recording') ?? '').trim();
    const reason = String(form.get('reason') ?? '').trim();
    void (async () => {
      const answer = await api<{ recording: string; queued: boolean }>('POST', clinicPath(`/recordings/${encodeURIComponent(recording)}/purge`), { reason });
      if (!answer.ok) return showError(answer.error, `${both(T.purge)} ${recording}`);
      showMessage('ok', `${both(T.purgeQueued)}: ${recording}`);
      (event.target as HTMLFormElement).reset();
      await loadRecordings();
    })();
  });
  async function exportRecording(id: string, participant: string): Promise<void> {
    const answer = await api<undefined>('GET', clinicPath(`/recordings/${encodeURIComponent(id)}/files/${encodeURIComponent(participant)}`));
    if (!answer.ok) return showError(answer.error, id);
    save(await answer.response.blob(), `${id}-${participant}.webm`);
  }

  // ---- Notifications: counts and dead letters with retry.
  async function loadNotifications(): Promise<void> {
    const answer = await api<NotifyOverview>('GET', `/api/notify?clinic=${encodeURIComponent(clinic)}&count=20`);
    if (!answer.ok) return showError(answer.error, both({ ja: '通知', en: 'Notifications' }));
    const { counts, deadLetters } = answer.value;
    byId('notifications-body').replaceChildren(
      h('p', { class: 'counts', 'data-failed': counts.failed }, Object.entries(counts).map(([state, n]) => `${state} ${n}`).join(' · ')),
      h('h3', {}, bilingual(T.deadLetters, 'inline')),
      deadLetters.length === 0
        ? h('p', { class: 'empty' }, bilingual(T.none, 'inline'))
        : table(
            [T.time, T.kind, T.channel, T.reason, T.action],
            deadLetters.map((d) => [
              new Date(d.failedAt ?? d.enqueuedAt).toLocaleString('ja-JP'),
              `${d.kind}${d.ticketNumber ? ` ${d.ticketNumber}` : ''}`,
              d.channel ?? '',
              `${d.code}: ${d.reason}`,
              h('button', { type: 'button', 'data-dead-letter': d.id, onclick: () => void retry(d.id) }, both(T.retry)),
            ]),
            'dead-letters',
          ),
    );
  }
  byId('notify-test-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const form = new FormData(event.target as HTMLFormElement);
    void (async () => {
      const answer = await api<{ id: string; channel: string }>('POST', clinicPath('/notify/test'), {
        channel: form.get('channel'),
        address: String(form.get('address') ?? '').trim(),
        locale: form.get('locale'),
      });
      if (!answer.ok) return showError(answer.error, both({ ja: 'テスト送信', en: 'Test send' }));
      showMessage('ok', `${both(T.testQueued)}: ${answer.value.channel} (${answer.value.id})`);
      // Its outcome: in the counts now, among the dead letters if it fails.
      setTimeout(() => void loadNotifications(), 3000);
    })();
  });
  async function retry(id: string): Promise<void> {
    const answer = await api<{ ok: true }>('POST', `/api/notify/dead-letters/${encodeURIComponent(id)}/retry`);
    if (!answer.ok) return showError(answer.error, both(T.retry));
    showMessage('ok', both(T.retried));
    await loadNotifications();
  }

  // ---- Tokens: issue, revoke, revocations in force.
  byId('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const form = new FormData(event.target as HTMLFormElement);
    const sub = String(form.get('sub') ?? '').trim();
    const name = String(form.get('name') ?? '').trim();
    void (async () => {
      const answer = await api<{ token: string; id: string; expiresAt: number; role: string; sub: string }>('POST', '/api/tokens', {
        role: form.get('role'),
        clinic,
        ...(sub ? { sub } : {}),
        ...(name ? { name } : {}),
        ttlSeconds: Math.round(Number(form.get('hours') ?? 12) * 3600),
      });
      if (!answer.ok) return showError(answer.error, both({ ja: 'トークンの発行', en: 'Issuing a token' }));
      const issued = answer.value;
      byId('token-issued').replaceChildren(
        h('p', {}, bilingual(T.issued, 'inline')),
        h('p', {}, `id ${issued.id} · ${issued.role} · ${issued.sub} · ${both(T.until)} ${new Date(issued.expiresAt * 1000).toLocaleString('ja-JP')}`),
        h('p', { class: 'issued-token', id: 'issued-token' }, issued.token),
      );
    })();
  });
  byId('revoke-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const form = new FormData(event.target as HTMLFormElement);
    const target = String(form.get('target') ?? '').trim();
    const reason = String(form.get('reason') ?? '').trim();
    // A user id has a colon (role:name); anything else is a token id.
    const body = target.includes(':') ? { clinic, sub: target } : { tokenId: target };
    void (async () => {
      const answer = await api<{ revocation: Revocation }>('POST', '/api/tokens/revoke', { ...body, ...(reason ? { reason } : {}) });
      if (!answer.ok) return showError(answer.error, both({ ja: '無効化', en: 'Revoking' }));
      showMessage('ok', `${both(T.revoked)}: ${target}`);
      await loadRevocations();
    })();
  });
  async function loadSessions(): Promise<void> {
    const answer = await api<ActiveSessions>('GET', clinicPath('/sessions'));
    if (!answer.ok) return showError(answer.error, both({ ja: '接続中のセッション', en: 'Active sessions' }));
    const sessions = answer.value.sessions;
    byId('sessions-body').replaceChildren(
      sessions.length === 0
        ? h('p', { class: 'empty' }, bilingual(T.noSessions, 'inline'))
        : table(
            [T.session, T.user, T.since, T.until, T.where, T.action],
            sessions.map((session) => [
              session.id ?? '-',
              `${session.sub} (${session.role})${session.tokenClinic === '*' ? ' *' : ''}`,
              new Date(session.startedAt).toLocaleString('ja-JP'),
              new Date(session.endsAt).toLocaleString('ja-JP'),
              `${session.namespaces.join(' ')} · ${session.sockets} · ${session.addresses.join(', ')}`,
              session.id
                ? h('button', { type: 'button', class: 'danger', 'data-session': session.id, onclick: () => void revokeSession(session.id!, session.sub) }, `${both(T.revoke)}`)
                : '',
            ]),
            'sessions-table',
          ),
    );
    document.documentElement.dataset.sessions = String(sessions.length);
  }
  async function revokeSession(id: string, sub: string): Promise<void> {
    const answer = await api<{ revocation: Revocation }>('POST', '/api/tokens/revoke', { tokenId: id, reason: 'revoked from the console (active sessions)' });
    if (!answer.ok) return showError(answer.error, both(T.revoke));
    showMessage('ok', `${both(T.revoked)}: ${sub} (${id})`);
    await Promise.all([loadRevocations(), loadSessions()]);
  }
  async function loadRevocations(): Promise<void> {
    const answer = await api<{ revocations: Revocation[] }>('GET', '/api/tokens/revocations');
    if (!answer.ok) return showError(answer.error, both({ ja: '無効化一覧', en: 'Revocations' }));
    const list = answer.value.revocations;
    byId('revocations-body').replaceChildren(
      list.length === 0
        ? h('p', { class: 'empty' }, bilingual(T.noRevocations, 'inline'))
        : table(
            [T.what, T.time, T.actor, T.reason],
            list.map((r) => [r.kind === 'token' ? `token ${r.id}` : r.kind === 'user' ? `user ${r.sub}` : `clinic ${r.clinic}`, new Date(r.at).toLocaleString('ja-JP'), r.by, r.reason ?? '']),
            'revocations-table',
          ),
    );
  }

  // ---- Webhooks: endpoints (add, remove, rotate the secret) and the latest deliveries with their outcome.
  const webhooksPath = (rest = '') => clinicPath(`/webhooks${rest}`);
  function showSecret(endpoint: string, secret: string): void {
    byId('webhook-secret').replaceChildren(h('p', {}, bilingual(T.secret, 'inline')), h('p', { class: 'issued-token', id: 'webhook-secret-value', 'data-endpoint': endpoint }, secret));
  }
  async function loadWebhooks(): Promise<void> {
    const [endpoints, deliveries] = await Promise.all([api<{ endpoints: WebhookEndpoint[] }>('GET', webhooksPath()), api<{ deliveries: WebhookDelivery[] }>('GET', webhooksPath('/deliveries?count=50'))]);
    if (!endpoints.ok) return showError(endpoints.error, both({ ja: 'Webhook', en: 'Webhooks' }));
    const list = endpoints.value.endpoints;
    byId('webhooks-body').replaceChildren(
      list.length === 0
        ? h('p', { class: 'empty' }, bilingual(T.noEndpoints, 'inline'))
        : table(
            [T.endpoint, T.events, T.patientData, T.since, T.action],
            list.map((e) => [
              h('span', {}, h('code', {}, e.id), ' ', e.url, e.description ? ` — ${e.description}` : ''),
              e.events.join(', '),
              both(e.includePatientData ? T.yes : T.no),
              new Date(e.createdAt).toLocaleString('ja-JP'),
              h(
                'span',
                { class: 'actions' },
                h('button', { type: 'button', 'data-rotate': e.id, onclick: () => void rotateSecret(e.id) }, both(T.rotate)),
                ' ',
                h('button', { type: 'button', class: 'danger', 'data-remove': e.id, onclick: () => void removeEndpoint(e.id) }, both(T.remove)),
              ),
            ]),
            'webhooks-table',
          ),
    );
    if (!deliveries.ok) return showError(deliveries.error, both(T.outcome));
    const attempts = deliveries.value.deliveries;
    byId('deliveries-body').replaceChildren(
      attempts.length === 0
        ? h('p', { class: 'empty' }, bilingual(T.noDeliveries, 'inline'))
        : table(
            [T.time, T.event, T.eventId, T.endpoint, T.attempt, T.outcome, T.http],
            attempts.map((d) => [
              new Date(d.at).toLocaleString('ja-JP'),
              d.type,
              d.eventId,
              d.endpoint,
              String(d.attempt),
              h('span', { class: `outcome-${d.status}` }, d.status),
              d.httpStatus === null ? (d.error ?? '') : `${d.httpStatus}${d.error ? ` (${d.error})` : ''} · ${d.durationMs} ms`,
            ]),
            'deliveries-table',
          ),
    );
    document.documentElement.dataset.webhooks = `${list.length}/${attempts.length}`;
  }
  byId('webhook-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const formElement = event.target as HTMLFormElement;
    const form = new FormData(formElement);
    const description = String(form.get('description') ?? '').trim();
    const body = {
      url: String(form.get('url') ?? '').trim(),
      events: String(form.get('events') ?? '')
        .split(',')
        .map((e) => e.trim())
        .filter(Boolean),
      includePatientData: form.get('includePatientData') === 'on',
      ...(description ? { description } : {}),
    };
    void (async () => {
      const answer = await api<{ endpoint: WebhookEndpoint; secret: string }>('POST', webhooksPath(), body);
      if (!answer.ok) return showError(answer.error, both({ ja: '送信先の追加', en: 'Adding an endpoint' }));
      showSecret(answer.value.endpoint.id, answer.value.secret);
      formElement.reset();
      await loadWebhooks();
    })();
  });
  async function rotateSecret(id: string): Promise<void> {
    const answer = await api<{ secret: string }>('POST', webhooksPath(`/${encodeURIComponent(id)}/rotate-secret`));
    if (!answer.ok) return showError(answer.error, both(T.rotate));
    showSecret(id, answer.value.secret);
    await loadWebhooks();
  }
  async function removeEndpoint(id: string): Promise<void> {
    const answer = await api<{ ok: true }>('DELETE', webhooksPath(`/${encodeURIComponent(id)}`));
    if (!answer.ok) return showError(answer.error, both(T.remove));
    showMessage('ok', `${both(T.removed)}: ${id}`);
    await loadWebhooks();
  }

  void refreshOverview();
  setInterval(() => void refreshOverview(), OVERVIEW_EVERY_MS);
  void loadSettings();
  void loadNotifications();
  if (isAdmin) {
    void searchAudit();
    void loadRecordings();
    void loadRevocations();
    void loadSessions();
    void loadWebhooks();
    // Deliveries and sessions change by themselves: refreshed with the overview.
    setInterval(() => void Promise.all([loadWebhooks(), loadSessions()]), OVERVIEW_EVERY_MS);
  }
}

function card(title: Bilingual, ...content: (Node | null)[]): HTMLElement {
  return h('div', { class: 'card' }, h('h3', {}, bilingual(title, 'inline')), ...content);
}

function upDown(up: boolean): HTMLElement {
  return h('span', { class: up ? 'up' : 'down' }, both(up ? T.up : T.down));
}

function table(headers: Bilingual[], rows: (string | Node)[][], className = ''): HTMLTableElement {
  return h(
    'table',
    { class: className },
    h('thead', {}, h('tr', {}, ...headers.map((header) => h('th', { scope: 'col' }, both(header))))),
    h('tbody', {}, ...rows.map((row) => h('tr', {}, ...row.map((cell) => h('td', {}, cell))))),
  );
}

function save(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const link = h('a', { href: url, download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** At most 4 messages at once on this page. */
function showMessage(kind: 'ok' | 'error', content: string | Node, code?: string): void {
  showPageMessage(kind, content, code, 4);
}

function showError(error: ProtocolError, what: string): void {
  const content = h('span', {}, h('strong', { class: 'code' }, error.code), ` ${what} — ${error.message}`, error.detail ? ` (${error.detail})` : '');
  showMessage('error', content, error.code);
}
