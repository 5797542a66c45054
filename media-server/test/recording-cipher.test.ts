import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_CHUNK_BYTES, decryptFile, encryptFile, parseRecordingKey, verifyFile } from '../src/recording/recording-cipher.js';
import { RecordingError } from '../src/recording/recording-error.js';
import { loadRecordingConfig } from '../src/recording/recording-config.js';

const dir = mkdtempSync(join(tmpdir(), 'recording-cipher-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const key = parseRecordingKey(randomBytes(32).toString('base64'))!;
const otherKey = parseRecordingKey(randomBytes(32).toString('base64'))!;
const identity = { clinic: 'testclinic', recording: 'rec-1', name: 'p1-av-000.webm' };

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
    expect(sealed.length).toBe(24 + size + 16 * (Math.floor(size / DEFAULT_CHUNK_BYTES) + (size % DEFAULT_CHUNK_BYTES === 0 && size > 0 ? 0 : 1)));
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
      cutAtChunk: sealed.subarray(0, 24 + DEFAULT_CHUNK_BYTES + 16),
      cutInside: sealed.subarray(0, sealed.length - 5),
      extended: Buffer.concat([sealed, randomBytes(40)]),
      header: sealed.subarray(0, 10),
    };
    variants.flipped![24 + DEFAULT_CHUNK_BYTES + 16 + 7]! ^= 1;
    for (const [name, bytes] of Object.entries(variants)) {
      const path = join(dir, `tamper-${name}.enc`);
      writeFileSync(path, bytes);
      expect(await corruptCode(path), name).toMatch(/^RECORDING_CORRUPT/);
      await expect(verifyFile(path, key, identity), name).rejects.toMatchObject({ code: 'RECORDING_CORRUPT' });
    }
    // A failed export leaves no partial plaintext behind.
    expect(() => readFileSync(join(dir, 'out.webm'))).toThrow();
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
