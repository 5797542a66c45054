import { createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_CHUNK_BYTES,
  SEGMENT_CHUNK_BYTES,
  SealedSegmentWriter,
  decryptFile,
  encryptFile,
  parseRecordingKey,
  recoverSealedSegment,
  verifyFile,
} from '../src/recording-cipher.js';
import { RecordingError } from '../src/recording-error.js';
import { loadRecordingConfig } from '../src/recording-config.js';

const dir = mkdtempSync(join(tmpdir(), 'recording-cipher-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const key = parseRecordingKey(randomBytes(32).toString('base64'))!;
const otherKey = parseRecordingKey(randomBytes(32).toString('base64'))!;
const identity = { clinic: 'testclinic', recording: 'rec-1', name: 'p1-av-000.webm' };
/** Version 2's header: magic, version, key id, C, F, salt. */
const HEADER = 53;

async function seal(plain: Buffer, name = 'file') {
  const plainPath = join(dir, `${name}.webm`);
  const sealedPath = join(dir, `${name}.webm.enc`);
  writeFileSync(plainPath, plain);
  const facts = await encryptFile(plainPath, sealedPath, key, identity);
  return { plainPath, sealedPath, facts };
}

async function corruptCode(path: string, useKey = key, useIdentity = identity): Promise<string> {
  try {
    await decryptFile(path, join(dir, 'out.webm'), useKey, useIdentity);
    return 'decrypted';
  } catch (error) {
    expect(error).toBeInstanceOf(RecordingError);
    return `${(error as RecordingError).code}: ${(error as RecordingError).detail}`;
  }
}

describe('recording file encryption (chunked AES-256-GCM)', () => {
  it.each([0, 1, DEFAULT_CHUNK_BYTES - 1, DEFAULT_CHUNK_BYTES, DEFAULT_CHUNK_BYTES + 1, 3 * DEFAULT_CHUNK_BYTES + 17])('round-trips %i bytes', async (size) => {
    const plain = randomBytes(size);
    const { sealedPath, facts } = await seal(plain, `rt-${size}`);
    const sealed = readFileSync(sealedPath);
    expect(facts.bytes).toBe(sealed.length);
    // header + one tag per chunk (the last may be empty)
    expect(sealed.length).toBe(HEADER + size + 16 * (Math.floor(size / DEFAULT_CHUNK_BYTES) + (size % DEFAULT_CHUNK_BYTES === 0 && size > 0 ? 0 : 1)));
    const out = join(dir, `rt-${size}.out`);
    const back = await decryptFile(sealedPath, out, key, identity);
    expect(readFileSync(out).equals(plain)).toBe(true);
    expect(back).toEqual(facts);
  });

  it('refuses a wrong key, a moved file, a flipped bit, a cut and an extension with RECORDING_CORRUPT', async () => {
    const plain = randomBytes(2 * DEFAULT_CHUNK_BYTES + 100);
    const { sealedPath } = await seal(plain, 'tamper');
    const sealed = readFileSync(sealedPath);
    expect(await corruptCode(sealedPath, otherKey)).toMatch(/^RECORDING_CORRUPT: encrypted with another key/);
    expect(await corruptCode(sealedPath, key, { ...identity, name: 'p2-av-000.webm' })).toMatch(/^RECORDING_CORRUPT: chunk 0 /);

    const variants: Record<string, Buffer> = {
      flipped: Buffer.from(sealed),
      cutAtChunk: sealed.subarray(0, HEADER + DEFAULT_CHUNK_BYTES + 16),
      cutInside: sealed.subarray(0, sealed.length - 5),
      extended: Buffer.concat([sealed, randomBytes(40)]),
      header: sealed.subarray(0, 10),
    };
    variants.flipped![HEADER + DEFAULT_CHUNK_BYTES + 16 + 7]! ^= 1;
    for (const [name, bytes] of Object.entries(variants)) {
      const path = join(dir, `tamper-${name}.enc`);
      writeFileSync(path, bytes);
      expect(await corruptCode(path), name).toMatch(/^RECORDING_CORRUPT/);
      await expect(verifyFile(path, key, identity), name).rejects.toMatchObject({ code: 'RECORDING_CORRUPT' });
    }
    // A failed export leaves no partial plaintext behind.
    expect(() => readFileSync(join(dir, 'out.webm'))).toThrow();
  });

  it('reorders and swaps of whole chunks fail', async () => {
    const plain = randomBytes(3 * DEFAULT_CHUNK_BYTES + 10);
    const { sealedPath } = await seal(plain, 'order');
    const sealed = readFileSync(sealedPath);
    const slot = DEFAULT_CHUNK_BYTES + 16;
    const chunk = (i: number) => sealed.subarray(HEADER + i * slot, HEADER + (i + 1) * slot);
    const swapped = Buffer.concat([sealed.subarray(0, HEADER), chunk(1), chunk(0), sealed.subarray(HEADER + 2 * slot)]);
    const dropped = Buffer.concat([sealed.subarray(0, HEADER), chunk(0), sealed.subarray(HEADER + 2 * slot)]);
    for (const [name, bytes] of Object.entries({ swapped, dropped })) {
      const path = join(dir, `order-${name}.enc`);
      writeFileSync(path, bytes);
      expect(await corruptCode(path), name).toMatch(/^RECORDING_CORRUPT: chunk [01] does not authenticate/);
    }
  });

  it('derives a key per file from RECORDING_KEY and a random salt (HKDF-SHA256), as documented', async () => {
    const plain = Buffer.alloc(1000, 0x42);
    const a = readFileSync((await seal(plain, 'salt-a')).sealedPath);
    const b = readFileSync((await seal(plain, 'salt-b')).sealedPath);
    expect(a[4], 'version').toBe(2);
    const saltOf = (file: Buffer) => file.subarray(21, 53);
    expect(saltOf(a).equals(saltOf(b))).toBe(false);
    // The same plaintext, key and identity: nothing of the ciphertext repeats.
    expect(a.subarray(HEADER, HEADER + 32).equals(b.subarray(HEADER, HEADER + 32))).toBe(false);
    // A reader written from docs/consultations.md alone opens chunk 0 (here also the last) with the derived key and a counter nonce.
    const fileKey = Buffer.from(hkdfSync('sha256', key.key, saltOf(a), Buffer.from('clinic-hub/recording-file/v2'), 32));
    const nonce = Buffer.alloc(12);
    nonce[11] = 1;
    const decipher = createDecipheriv('aes-256-gcm', fileKey, nonce);
    decipher.setAAD(Buffer.concat([a.subarray(0, HEADER), Buffer.from(`clinic-hub/recording/v2/${identity.clinic}/${identity.recording}/${identity.name}`)]));
    decipher.setAuthTag(a.subarray(a.length - 16));
    expect(Buffer.concat([decipher.update(a.subarray(HEADER, a.length - 16)), decipher.final()]).equals(plain)).toBe(true);
    // The recording key itself does not open it.
    const raw = createDecipheriv('aes-256-gcm', key.key, nonce);
    raw.setAAD(Buffer.concat([a.subarray(0, HEADER), Buffer.from(`clinic-hub/recording/v2/${identity.clinic}/${identity.recording}/${identity.name}`)]));
    raw.setAuthTag(a.subarray(a.length - 16));
    raw.update(a.subarray(HEADER, a.length - 16));
    expect(() => raw.final()).toThrow();
  });

  it('still reads version 1 files (one key, nonce prefix), and says which versions it reads', async () => {
    // Written by the version 1 code, with a key made for this fixture only.
    const fixture = resolve(import.meta.dirname, 'fixtures/recording-v1.webm.enc');
    const v1Key = parseRecordingKey(createHash('sha256').update('clinic-hub/test/v1-fixture-key').digest('base64'))!;
    const v1Identity = { clinic: 'testclinic', recording: 'rec-v1-0001', name: 'legacy-0a1b2c3d-av-000.webm' };
    expect(readFileSync(fixture)[4]).toBe(1);
    const out = join(dir, 'v1.out');
    const facts = await decryptFile(fixture, out, v1Key, v1Identity);
    expect(facts).toEqual({
      bytes: 70056,
      sha256: '88f781150f56a541d4afd01beeef8bb7f58787e79bf69ceeca21fe161bb94617',
      plainBytes: 70000,
      plainSha256: '79fe15ae18af64058eef2096dad3d1a00d4d5654c6957f056c3940b290e8d44f',
    });
    const parts: Buffer[] = [];
    let block = createHash('sha256').update('clinic-hub/test/v1-fixture-plaintext').digest();
    for (let n = 0; n < 70_000; n += 32) {
      parts.push(block);
      block = createHash('sha256').update(block).digest();
    }
    expect(readFileSync(out).equals(Buffer.concat(parts).subarray(0, 70_000))).toBe(true);
    expect(await corruptCode(fixture, v1Key, { ...v1Identity, name: 'other-0a1b2c3d-av-000.webm' })).toMatch(/^RECORDING_CORRUPT: chunk 0 /);

    const future = Buffer.from(readFileSync(fixture));
    future[4] = 3;
    writeFileSync(join(dir, 'v3.enc'), future);
    expect(await corruptCode(join(dir, 'v3.enc'), v1Key, v1Identity)).toMatch(/^RECORDING_CORRUPT: recording file version 3 is not one this server reads \(1 and 2\)/);
  });

  it('is not WebM without the key: no EBML magic, no plaintext run', async () => {
    const plain = Buffer.concat([Buffer.from([0x1a, 0x45, 0xdf, 0xa3]), Buffer.alloc(5000, 0x41)]);
    const { sealedPath } = await seal(plain, 'opaque');
    const sealed = readFileSync(sealedPath);
    expect(sealed.subarray(0, 4).toString('ascii')).toBe('CHRC');
    expect(sealed.includes(Buffer.from([0x1a, 0x45, 0xdf, 0xa3]))).toBe(false);
    expect(sealed.includes(Buffer.alloc(16, 0x41))).toBe(false);
  });

  it('config: RECORDING_KEY must be 32 bytes of base64, named in the error; unset turns recording off', () => {
    expect(() => loadRecordingConfig({ RECORDING_KEY: 'c2hvcnQ=' })).toThrow(/RECORDING_KEY: must be 32 bytes in base64/);
    expect(() => loadRecordingConfig({ RECORDING_KEY: 'c2hvcnQ=' })).not.toThrow(/c2hvcnQ/);
    expect(() => loadRecordingConfig({ RECORDING_RETENTION_DAYS: '-1' })).toThrow(/RECORDING_RETENTION_DAYS/);
    expect(loadRecordingConfig({}).key).toBeNull();
    const keyFile = join(dir, 'key');
    writeFileSync(keyFile, `${randomBytes(32).toString('base64')}\n`);
    const config = loadRecordingConfig({ RECORDING_KEY_FILE: keyFile, RECORDING_RETENTION_DAYS: '0.5', RECORDINGS_DIR: dir });
    expect(config.key?.id).toMatch(/^[0-9a-f]{16}$/);
    expect(config.retentionMs).toBe(43_200_000);
  });
});

describe('segments sealed as they are written', () => {
  const head = Buffer.concat([Buffer.from([0x1a, 0x45, 0xdf, 0xa3]), Buffer.alloc(300, 0x48)]);
  const finalHead = Buffer.concat([Buffer.from([0x1a, 0x45, 0xdf, 0xa3]), Buffer.alloc(300, 0x46)]);
  const body = randomBytes(3 * SEGMENT_CHUNK_BYTES + 999);

  async function writeSegment(path: string, close: boolean): Promise<void> {
    const writer = await SealedSegmentWriter.create(path, key, identity, head);
    for (let at = 0; at < body.length; at += 7000) await writer.append(body.subarray(at, at + 7000));
    if (close) await writer.close(finalHead);
    else await writer.abandon();
  }

  it('a closed segment decrypts to the final head and everything after it; nothing of it is on disk in the clear', async () => {
    const path = join(dir, 'segment.webm.enc');
    await writeSegment(path, true);
    const sealed = readFileSync(path);
    expect(sealed.includes(head.subarray(0, 4))).toBe(false);
    expect(sealed.includes(body.subarray(100, 132))).toBe(false);
    expect(sealed.readUInt32BE(17), 'F: the head').toBe(head.length);
    const out = join(dir, 'segment.out');
    const facts = await decryptFile(path, out, key, identity);
    expect(readFileSync(out).equals(Buffer.concat([finalHead, body]))).toBe(true);
    expect(facts.plainBytes).toBe(finalHead.length + body.length);
    expect(facts.bytes).toBe(sealed.length);
  });

  it('one never closed is refused as such, and what it holds can be recovered up to its last whole chunk', async () => {
    const path = join(dir, 'open-segment.webm.enc');
    await writeSegment(path, false);
    expect(await corruptCode(path)).toMatch(/^RECORDING_CORRUPT: the segment was never closed/);
    const recovered: Buffer[] = [];
    for await (const plain of recoverSealedSegment(path, key, identity)) recovered.push(plain);
    expect(recovered[0]!.equals(head)).toBe(true);
    // Whole chunks only: the last bytes (at most a chunk) were still in memory.
    const rest = Buffer.concat(recovered.slice(1));
    expect(rest.length).toBe(3 * SEGMENT_CHUNK_BYTES);
    expect(rest.equals(body.subarray(0, rest.length))).toBe(true);
    // A chunk torn by the crash ends what is recovered.
    const torn = readFileSync(path);
    const cut = join(dir, 'torn-segment.webm.enc');
    writeFileSync(cut, torn.subarray(0, torn.length - 100));
    let chunks = 0;
    for await (const _ of recoverSealedSegment(cut, key, identity)) chunks++;
    expect(chunks).toBe(3);
  });
});
