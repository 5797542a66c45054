/**
 * The manager's console (/admin) in real Chromium against two real hub
 * processes on one test Redis: a test per section, each checking what it
 * shows in Japanese and in English. Settings changed in the console reach a
 * display connected to the other hub node; the audit viewer filters,
 * exports CSV, and its reads are audited; a token issued in the console
 * works and, revoked in the console, is refused; an active session on the
 * other node, revoked from the list, is disconnected; a recording purge
 * asks for a reason, is audited and queued; webhook endpoints are added,
 * rotated and removed, and their deliveries listed with their outcome
 * (a local receiver checks every signature). Staff see only their
 * sections. (axe-core runs on /admin in accessibility.test.ts.)
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { HUB_SESSION_ENDED, JOB_QUEUE_PREFIX, JOB_QUEUES, WEBHOOK_HEADERS, recordingPurgeJobId, type RecordingJob, type WebhookPayload } from '@clinic-hub/protocol';
import { verifyWebhook } from '@clinic-hub/hub';
import { newRecordingKey, seedRecording } from '@clinic-hub/test-kit/recording-fixture';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTestHubs, stopTestHubs, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { connectQueue, expectOk, followQueue, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import type { TestRedis } from '@clinic-hub/test-kit/redis';
import { collectPageProblems, launchChromium } from '@clinic-hub/test-kit/browser';
import { waitFor } from '@clinic-hub/test-kit/wait';

const CLINIC = 'testclinic';

let redis: TestRedis;
let hubA: HubNodeProcess;
let hubB: HubNodeProcess;
let browser: Browser;
let context: BrowserContext;
const sockets: QueueSocket[] = [];
const problems: string[] = [];
let receiver: Server;
let receiverUrl: string;
const received: { path: string; body: string; signature: string; payload: WebhookPayload }[] = [];

beforeAll(async () => {
  ({ redis, nodes: [hubA, hubB] } = await startTestHubs(['admin-a', 'admin-b']));
  browser = await launchChromium();
  context = await browser.newContext({ viewport: { width: 1440, height: 1000 }, acceptDownloads: true });
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      received.push({ path: req.url ?? '/', body, signature: String(req.headers[WEBHOOK_HEADERS.signature] ?? ''), payload: JSON.parse(body) as WebhookPayload });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
}, 120_000);

afterEach(() => {
  for (const socket of sockets.splice(0)) socket.close();
});

afterAll(async () => {
  await context?.close();
  await browser?.close();
  await new Promise((resolve) => receiver?.close(resolve));
  await stopTestHubs(redis, [hubA, hubB]);
});

async function openConsole(role: 'admin' | 'staff' = 'admin', sub = `${role}:manager`): Promise<Page> {
  const page = await context.newPage();
  problems.push(...collectPageProblems(page));
  await page.goto(`${hubA.url}/admin#token=${await tokenFor(role, CLINIC, { sub })}`);
  await page.waitForSelector('html[data-overview="live"][data-settings]', { timeout: 20_000 });
  return page;
}

/** A section's text has both languages: every pair given appears in it. */
async function expectBilingual(page: Page, section: string, pairs: [string, string][]): Promise<void> {
  const text = await page.locator(section).innerText();
  for (const [ja, en] of pairs) {
    expect(text, `${section}: ${ja}`).toContain(ja);
    expect(text, `${section}: ${en}`).toContain(en);
  }
}

/** A port nothing listens on: a receiver that is down. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function api(method: string, path: string, token: string, body?: unknown) {
  const response = await fetch(`${hubA.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

describe('the manager console', () => {
  it('overview: hub nodes, Redis, the queue, screens, consultations, media servers, AI workers and job queues, live', async () => {
    const staff = await connectQueue(hubB.url, await tokenFor('staff'));
    sockets.push(staff);
    const screen = await connectQueue(hubB.url, await tokenFor('display', CLINIC, { sub: 'display:waiting-room' }));
    sockets.push(screen);
    expectOk(await request(staff, 'queue:checkin', { dept: 'gp' }));
    const page = await openConsole();
    await expectBilingual(page, '#overview', [
      ['ハブノード', 'Hub nodes'],
      ['待ち行列', 'Queues'],
      ['メディアサーバー', 'Media servers'],
      ['AI ワーカー', 'AI workers'],
      ['ジョブキュー', 'Job queues'],
      ['接続中の画面', 'Connected screens'],
      ['オンライン診察', 'Video consultations'],
    ]);
    // The screen on node B, as `clinic displays` lists it.
    await expect.poll(() => page.locator('#overview .screens-table').innerText(), { timeout: 15_000 }).toMatch(/display:waiting-room\s+admin-b/);
    // Both nodes, from the same API as `clinic status`; the check-in on node B counted.
    await expect.poll(() => page.locator('#overview').innerText(), { timeout: 15_000 }).toContain('admin-b');
    expect(await page.locator('#overview').innerText()).toContain('admin-a');
    await expect.poll(async () => (await page.locator('#overview').innerText()).match(/gp\s+(\d+)/)?.[1], { timeout: 10_000 }).toBe('1');
    expect(await page.locator('#overview').innerText()).toContain('notifications');
    expect(await page.locator('#overview').innerText()).toContain('webhooks');
    await page.close();
  });

  it('settings: a room closed and a language changed in the console reach a display on the other hub node', async () => {
    const display = await connectQueue(hubB.url, await tokenFor('display'));
    sockets.push(display);
    const follower = followQueue(display);
    await follower.resync();
    const page = await openConsole();
    await expectBilingual(page, '#settings', [
      ['クリニック設定', 'Clinic settings'],
      ['診察室', 'Rooms'],
      ['開室', 'open'],
    ]);
    const r2 = page.locator('#settings-rooms button[data-room="r2"]');
    expect(await r2.getAttribute('aria-checked')).toBe('true');
    await r2.click();
    await expect.poll(() => page.locator('#settings-rooms button[data-room="r2"]').getAttribute('aria-checked'), { timeout: 5000 }).toBe('false');
    expect(await page.locator('#settings-rooms button[data-room="r2"]').innerText()).toContain('閉室 / closed');
    await waitFor('r2 closed on the display of the other node', () => follower.openRooms('gp').join() === 'r1', 5000);

    // The whole settings as JSON: a bad edit is refused with the field named, a good one saved and applied everywhere.
    const textarea = page.locator('#settings-json');
    const settings = JSON.parse(await textarea.inputValue());
    await textarea.fill(JSON.stringify({ ...settings, departments: [{ ...settings.departments[0], prefix: 'a' }] }));
    await page.locator('#settings-save').click();
    await expect.poll(() => page.locator('#messages').innerText(), { timeout: 5000 }).toContain('INVALID_PAYLOAD');
    expect(await page.locator('#messages').innerText()).toContain('settings.departments.0.prefix');
    await textarea.fill(JSON.stringify({ ...settings, spokenCallLanguages: ['en', 'ja'] }, null, 2));
    await page.locator('#settings-save').click();
    await expect.poll(() => page.locator('#messages').innerText(), { timeout: 5000 }).toContain('保存しました / Saved');
    await waitFor('the new languages on the display of the other node', () => follower.clinic?.spokenCallLanguages.join() === 'en,ja', 5000);
    await page.close();
  });

  it('audit: filters by action, exports CSV, and reading it is audited', async () => {
    const page = await openConsole();
    await expectBilingual(page, '#audit', [
      ['監査ログ', 'Audit log'],
      ['実行者', 'Actor'],
      ['変更前 → 変更後', 'Before → after'],
    ]);
    await page.locator('#audit-form input[name="action"]').fill('room.close');
    await page.locator('#audit-search').click();
    await expect.poll(() => page.locator('#audit-body table tbody tr').count(), { timeout: 5000 }).toBe(1);
    const row = await page.locator('#audit-body table tbody tr').innerText();
    expect(row).toContain('admin:manager');
    expect(row).toContain('rooms.r2.open');
    expect(row).toContain('{"open":true} → {"open":false}');

    const [download] = await Promise.all([page.waitForEvent('download', { timeout: 10_000 }), page.locator('#audit-csv').click()]);
    const csv = readFileSync((await download.path())!, 'utf8').split('\r\n');
    expect(csv[0]).toBe('id,at,actor,role,action,subject,from,before,after');
    expect(csv.filter((line) => line.includes('room.close'))).toHaveLength(1);
    expect(csv[1]).toContain('"{""open"":true}"');

    const audit = (await api('GET', `/api/clinics/${CLINIC}/audit?actor=admin:manager&count=50`, await tokenFor('admin'))).body.entries as { action: string; subject: string }[];
    expect(audit.some((e) => e.action === 'audit.read' && e.subject === 'action=room.close')).toBe(true);
    expect(audit.some((e) => e.action === 'audit.export' && e.subject === 'action=room.close')).toBe(true);
    await page.close();
  });

  it('recordings: says when this hub cannot export them (no RECORDING_KEY), in both languages', async () => {
    const page = await openConsole();
    await expectBilingual(page, '#recordings', [
      ['録画', 'Recordings'],
      ['このハブには録画の鍵がありません', 'This hub has no recording key'],
    ]);
    await page.close();
  });

  it('notifications: counts, dead letters and a test send to a given channel', async () => {
    const page = await openConsole();
    await expectBilingual(page, '#notifications', [
      ['通知', 'Notifications'],
      ['送信できなかった通知', 'Dead letters'],
      ['テスト送信', 'Test send'],
      ['宛先', 'Address'],
    ]);
    const counts = () => page.locator('#notifications .counts').innerText();
    expect(await counts()).toMatch(/waiting \d+ · delayed \d+ · active \d+ · completed \d+ · failed \d+/);
    const waitingBefore = Number(/waiting (\d+)/.exec(await counts())![1]);

    await page.locator('#notify-test-form select[name="channel"]').selectOption('sms');
    await page.locator('#notify-test-form input[name="address"]').fill('090-1234');
    await page.locator('#notify-test-send').click();
    await expect.poll(() => page.locator('#messages').innerText(), { timeout: 5000 }).toContain('NOTIFY_CONTACT_INVALID');
    // These hubs have no SMS provider configured: said at once, nothing queued.
    await page.locator('#notify-test-form input[name="address"]').fill('+819012345678');
    await page.locator('#notify-test-send').click();
    await expect.poll(() => page.locator('#messages').innerText(), { timeout: 5000 }).toContain('NOTIFY_CHANNEL_DISABLED');
    await page.locator('#notify-test-form select[name="channel"]').selectOption('in_app');
    await page.locator('#notify-test-form input[name="address"]').fill('staff:sato');
    await page.locator('#notify-test-send').click();
    await expect.poll(() => page.locator('#messages').innerText(), { timeout: 5000 }).toContain('テスト通知を送信待ちにしました / Test notice queued: in_app');
    // No notification worker runs beside these hubs: the notice waits in the queue, counted.
    await expect.poll(async () => Number(/waiting (\d+)/.exec(await counts())![1]), { timeout: 10_000 }).toBe(waitingBefore + 1);
    expect(await page.locator('#notifications').innerText()).not.toContain('staff:sato');
    await page.close();
  });

  it('tokens: a token issued in the console works, and once revoked there it is refused', async () => {
    const page = await openConsole();
    await expectBilingual(page, '#tokens', [
      ['発行', 'Issue'],
      ['無効化', 'Revoke'],
    ]);
    await page.locator('#token-form select[name="role"]').selectOption('staff');
    await page.locator('#token-form input[name="sub"]').fill('staff:sato');
    await page.locator('#token-form input[name="name"]').fill('佐藤 花子');
    await page.locator('#token-issue').click();
    const issued = (await page.locator('#issued-token').innerText({ timeout: 5000 })).trim();
    expect((await api('GET', `/api/clinics/${CLINIC}/settings`, issued)).status).toBe(200);

    await page.locator('#revoke-form input[name="target"]').fill('staff:sato');
    await page.locator('#revoke-form input[name="reason"]').fill('left the clinic');
    await page.locator('#token-revoke').click();
    await expect.poll(() => page.locator('#revocations-body').innerText(), { timeout: 5000 }).toContain('user staff:sato');
    expect(await page.locator('#revocations-body').innerText()).toContain('left the clinic');
    await expect.poll(async () => (await api('GET', `/api/clinics/${CLINIC}/settings`, issued)).body.error?.code, { timeout: 5000 }).toBe('AUTH_REVOKED');
    await page.close();
  });

  it('tokens: the active sessions on every node, and one revoked from the list is disconnected', async () => {
    const nurse = await connectQueue(hubB.url, await tokenFor('staff', CLINIC, { sub: 'staff:yamada' }));
    sockets.push(nurse);
    const ended = new Promise<{ code: string }>((resolve) => nurse.on(HUB_SESSION_ENDED as never, resolve as never));
    const page = await openConsole();
    await page.waitForSelector('html[data-sessions]', { timeout: 10_000 });
    await expectBilingual(page, '#tokens', [
      ['接続中のセッション', 'Active sessions'],
      ['セッション ID', 'Session id'],
    ]);
    const row = page.locator('#sessions-body tr', { hasText: 'staff:yamada' });
    await expect.poll(() => row.count(), { timeout: 10_000 }).toBe(1);
    // The console's own page does not hold a socket; the staff socket on the other node is listed with its namespace.
    expect(await row.innerText()).toContain('/queue');
    await row.locator('button[data-session]').click();
    expect((await ended).code).toBe('AUTH_REVOKED');
    await expect.poll(() => page.locator('#sessions-body').innerText(), { timeout: 10_000 }).not.toContain('staff:yamada');
    expect(await page.locator('#revocations-body').innerText()).toContain('revoked from the console');
    await page.close();
  });

  it('recordings: a purge on request needs a reason, is audited and queued for the recordings worker', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'admin-purge-'));
    const redisClient = new Redis(redis.url);
    const queue = new Queue<RecordingJob>(JOB_QUEUES.recordings, { connection: redisClient, prefix: JOB_QUEUE_PREFIX });
    try {
      await seedRecording({ redis: redisClient, dir, key: newRecordingKey().key, clinic: CLINIC, consult: 'consult-purge-01', recording: 'rec-purge-01', files: [{ participant: 'doctor:x', part: 'doctor', plain: Buffer.from('webm') }] });
      const page = await openConsole();
      await expectBilingual(page, '#recordings', [
        ['依頼による削除', 'Purge on request'],
        ['理由', 'Reason'],
      ]);
      await page.locator('#purge-form input[name="recording"]').fill('rec-nope-01');
      await page.locator('#purge-form input[name="reason"]').fill('patient asked for deletion');
      await page.locator('#recording-purge').click();
      await expect.poll(() => page.locator('#messages').innerText(), { timeout: 5000 }).toContain('RECORDING_NOT_FOUND');

      await page.locator('#purge-form input[name="recording"]').fill('rec-purge-01');
      await page.locator('#purge-form input[name="reason"]').fill('patient asked for deletion');
      await page.locator('#recording-purge').click();
      await expect.poll(() => page.locator('#messages').innerText(), { timeout: 5000 }).toContain('削除を受け付けました（録画ワーカーが削除します） / Purge queued (the recordings worker deletes it): rec-purge-01');
      const job = await queue.getJob(recordingPurgeJobId({ clinic: CLINIC, recording: 'rec-purge-01' }));
      expect(job?.data).toMatchObject({ clinic: CLINIC, consult: 'consult-purge-01', recording: 'rec-purge-01', purgeRequest: { by: 'admin:manager', reason: 'patient asked for deletion' } });
      const audit = (await api('GET', `/api/clinics/${CLINIC}/audit?action=recording.purge&count=10`, await tokenFor('admin'))).body.entries as Record<string, string>[];
      expect(audit).toEqual([expect.objectContaining({ actor: 'admin:manager', subject: 'rec-purge-01', after: '{"reason":"patient asked for deletion"}' })]);
      // Doctors see recordings but do not purge them; a reason is required.
      const doctor = await api('POST', `/api/clinics/${CLINIC}/recordings/rec-purge-01/purge`, await tokenFor('doctor'), { reason: 'because' });
      expect(doctor.body.error.code).toBe('AUTH_FORBIDDEN');
      const noReason = await api('POST', `/api/clinics/${CLINIC}/recordings/rec-purge-01/purge`, await tokenFor('admin'), {});
      expect(noReason.body.error.code).toBe('INVALID_PAYLOAD');
      await page.close();
    } finally {
      await queue.close();
      redisClient.disconnect();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('webhooks: endpoints added, rotated and removed in the console, their deliveries listed with the outcome', async () => {
    const page = await openConsole();
    await page.waitForSelector('html[data-webhooks]', { timeout: 10_000 });
    await expectBilingual(page, '#webhooks', [
      ['Webhook（外部システムへの通知）', 'Webhooks (events to other systems)'],
      ['送信先はありません', 'No endpoints'],
      ['送信先の追加', 'Add an endpoint'],
      ['最近の送信', 'Latest deliveries'],
    ]);
    const add = async (url: string, events: string) => {
      const secret = page.locator('#webhook-secret-value');
      const shown = (await secret.count()) > 0 ? await secret.getAttribute('data-endpoint') : null;
      await page.locator('#webhook-form input[name="url"]').fill(url);
      await page.locator('#webhook-form input[name="events"]').fill(events);
      await page.locator('#webhook-add').click();
      // The new endpoint's secret replaces the one shown before.
      await expect.poll(async () => ((await secret.count()) > 0 ? await secret.getAttribute('data-endpoint') : null), { timeout: 5000 }).not.toBe(shown);
      return { id: (await secret.getAttribute('data-endpoint'))!, secret: (await secret.innerText()).trim() };
    };
    // A bad event name is refused with the field named.
    await page.locator('#webhook-form input[name="url"]').fill(`${receiverUrl}/bad`);
    await page.locator('#webhook-form input[name="events"]').fill('ticket.lost');
    await page.locator('#webhook-add').click();
    await expect.poll(() => page.locator('#messages').innerText(), { timeout: 5000 }).toContain('INVALID_PAYLOAD');

    const ok = await add(`${receiverUrl}/console`, 'ticket.issued');
    expect(ok.secret).toMatch(/^whsec_/);
    expect(await page.locator('#webhook-secret').innerText()).toContain('いま控えてください');
    const down = await add(`http://127.0.0.1:${await closedPort()}/hook`, 'ticket.*');
    await expect.poll(() => page.locator('#webhooks-body tbody tr').count(), { timeout: 5000 }).toBe(2);

    const staff = await connectQueue(hubB.url, await tokenFor('staff'));
    sockets.push(staff);
    const checkin = expectOk(await request(staff, 'queue:checkin', { dept: 'peds' }));
    const eventId = `${CLINIC}-q${checkin.event.seq}`;
    const delivered = await waitFor('the delivery at the receiver', () => received.find((r) => r.path === '/console' && r.payload.id === eventId), 15_000);
    expect(verifyWebhook(delivered.body, delivered.signature, ok.secret)).toBe(true);
    const rows = page.locator('#deliveries-body tbody tr', { hasText: eventId });
    await expect.poll(async () => (await rows.allInnerTexts()).join('\n'), { timeout: 15_000 }).toMatch(new RegExp(`${ok.id}\\s+1\\s+delivered\\s+204`));
    await expect.poll(async () => (await rows.allInnerTexts()).join('\n'), { timeout: 15_000 }).toMatch(new RegExp(`${down.id}\\s+1\\s+retrying\\s+cannot connect`));

    // Rotating shows the new secret once; the next delivery is signed with both.
    await page.locator(`#webhooks-body button[data-rotate="${ok.id}"]`).click();
    // The secret shown until then was the last endpoint added's: wait for this endpoint's new one.
    const shownFor = async () => `${await page.locator('#webhook-secret-value').getAttribute('data-endpoint')} ${(await page.locator('#webhook-secret-value').innerText()).trim()}`;
    await expect.poll(shownFor, { timeout: 5000 }).toMatch(new RegExp(`^${ok.id} whsec_`));
    const rotated = (await shownFor()).split(' ')[1]!;
    expect(rotated).not.toBe(ok.secret);
    const second = expectOk(await request(staff, 'queue:checkin', { dept: 'peds' }));
    const next = await waitFor('a delivery after the rotation', () => received.find((r) => r.path === '/console' && r.payload.id === `${CLINIC}-q${second.event.seq}`), 15_000);
    expect(verifyWebhook(next.body, next.signature, rotated)).toBe(true);
    expect(verifyWebhook(next.body, next.signature, ok.secret)).toBe(true);

    for (const id of [ok.id, down.id]) {
      await page.locator(`#webhooks-body button[data-remove="${id}"]`).click();
      await expect.poll(() => page.locator('#webhooks-body').innerText(), { timeout: 5000 }).not.toContain(id);
    }
    const audit = (await api('GET', `/api/clinics/${CLINIC}/audit?subject=${ok.id}&count=10`, await tokenFor('admin'))).body.entries as { action: string }[];
    expect(audit.map((e) => e.action).sort()).toEqual(['webhook.create', 'webhook.remove', 'webhook.rotate-secret']);
    await page.close();
  });

  it('staff see the overview, the rooms and the notifications of their clinic, nothing else', async () => {
    const page = await openConsole('staff', 'staff:desk');
    for (const hidden of ['#audit', '#recordings', '#tokens', '#webhooks']) expect(await page.locator(hidden).isVisible(), hidden).toBe(false);
    expect(await page.locator('#settings-json').getAttribute('readonly')).not.toBeNull();
    expect(await page.locator('#settings-save').isVisible()).toBe(false);
    const r2 = page.locator('#settings-rooms button[data-room="r2"]');
    const before = await r2.getAttribute('aria-checked');
    await r2.click();
    await expect.poll(() => page.locator('#settings-rooms button[data-room="r2"]').getAttribute('aria-checked'), { timeout: 5000 }).not.toBe(before);
    await page.close();
    expect(problems).toEqual([]);
  });
});
