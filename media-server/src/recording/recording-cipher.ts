import { createCipheriv, createDecipheriv, createHash, randomBytes, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { RecordingError } from './recording-error.js';

/**
 * Recording files at rest: AES-256-GCM in independently authenticated
 * chunks, so a file of any size is encrypted and decrypted as a stream and
 * every byte handed out has been authenticated.
 *
 *     header (24 bytes)
 *       0  4  magic "CHRC"
 *       4  1  version (1)
 *       5  8  key id: the first 8 bytes of SHA-256("clinic-hub/recording-key-id/v1" || key)
 *      13  4  chunk size C (plaintext bytes per chunk, big-endian)
 *      17  7  nonce prefix (random per file)
 *     chunks: each min(C, rest) bytes of ciphertext followed by its 16-byte tag
 *
 * Chunk i's nonce is prefix (7) || i (4, big-endian) || last (1: 1 on the
 * final chunk, else 0) — the STREAM construction: chunks cannot be
 * reordered, and a file cut at a chunk boundary or extended fails (its real
 * last chunk was sealed with last = 1). The final chunk may be empty. The
 * additional data of every chunk is the header followed by the file's
 * identity (clinic/recording/file name), so a file moved under another
 * recording or participant does not decrypt.
 */

export const RECORDING_FILE_VERSION = 1;
const MAGIC = Buffer.from('CHRC', 'ascii');
const HEADER_BYTES = 24;
const NONCE_PREFIX_BYTES = 7;
const TAG_BYTES = 16;
export const DEFAULT_CHUNK_BYTES = 64 * 1024;
const MAX_CHUNK_BYTES = 16 * 1024 * 1024;

/** The 32-byte key, and the id written into each file's header. */
export interface RecordingKey {
  key: Buffer;
  /** 16 hex digits. */
  id: string;
}

export function recordingKeyId(key: Buffer): string {
  return createHash('sha256').update('clinic-hub/recording-key-id/v1').update(key).digest().subarray(0, 8).toString('hex');
}

/** 32 bytes from standard or URL-safe base64 (padding optional), or null. */
export function parseRecordingKey(value: string): RecordingKey | null {
  const trimmed = value.trim();
  if (!/^[A-Za-z0-9+/_-]{43}=?$/.test(trimmed)) return null;
  const key = Buffer.from(trimmed.replaceAll('-', '+').replaceAll('_', '/'), 'base64');
  return key.length === 32 ? { key, id: recordingKeyId(key) } : null;
}

/** What a recording file is bound to: its additional data. */
export interface RecordingFileIdentity {
  clinic: string;
  recording: string;
  name: string;
}

const identityBytes = (identity: RecordingFileIdentity) =>
  Buffer.from(`clinic-hub/recording/v${RECORDING_FILE_VERSION}/${identity.clinic}/${identity.recording}/${identity.name}`, 'utf8');

function nonce(prefix: Buffer, index: number, last: boolean): Buffer {
  const out = Buffer.alloc(12);
  prefix.copy(out, 0);
  out.writeUInt32BE(index, NONCE_PREFIX_BYTES);
  out[11] = last ? 1 : 0;
  return out;
}

/** Plain in, sealed out; also hashes both sides. */
export class EncryptStream extends Transform {
  private readonly header: Buffer;
  private readonly additionalData: Buffer;
  private readonly prefix = randomBytes(NONCE_PREFIX_BYTES);
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private index = 0;
  readonly plainHash: Hash = createHash('sha256');
  readonly sealedHash: Hash = createHash('sha256');
  plainBytes = 0;
  sealedBytes = 0;

  constructor(
    private readonly key: RecordingKey,
    identity: RecordingFileIdentity,
    private readonly chunkBytes = DEFAULT_CHUNK_BYTES,
  ) {
    super();
    this.header = Buffer.alloc(HEADER_BYTES);
    MAGIC.copy(this.header, 0);
    this.header[4] = RECORDING_FILE_VERSION;
    Buffer.from(key.id, 'hex').copy(this.header, 5);
    this.header.writeUInt32BE(chunkBytes, 13);
    this.prefix.copy(this.header, 17);
    this.additionalData = Buffer.concat([this.header, identityBytes(identity)]);
    this.emitSealed(this.header);
  }

  private emitSealed(bytes: Buffer): void {
    this.sealedHash.update(bytes);
    this.sealedBytes += bytes.length;
    this.push(bytes);
  }

  private seal(plain: Buffer, last: boolean): void {
    const cipher = createCipheriv('aes-256-gcm', this.key.key, nonce(this.prefix, this.index++, last));
    cipher.setAAD(this.additionalData);
    const sealed = Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
    this.emitSealed(sealed);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.plainHash.update(chunk);
    this.plainBytes += chunk.length;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    // Keep at least one byte back: only the end of the input says which chunk is the last.
    while (this.pendingBytes > this.chunkBytes) {
      const all = Buffer.concat(this.pending);
      this.seal(all.subarray(0, this.chunkBytes), false);
      const rest = all.subarray(this.chunkBytes);
      this.pending = [rest];
      this.pendingBytes = rest.length;
    }
    callback();
  }

  override _flush(callback: TransformCallback): void {
    this.seal(Buffer.concat(this.pending), true);
    this.pending = [];
    callback();
  }
}

/** Sealed in, plain out; a chunk that does not authenticate is RECORDING_CORRUPT. */
export class DecryptStream extends Transform {
  private header: Buffer | null = null;
  private additionalData: Buffer | null = null;
  private chunkBytes = 0;
  private prefix: Buffer | null = null;
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  private index = 0;
  readonly plainHash: Hash = createHash('sha256');
  readonly sealedHash: Hash = createHash('sha256');
  plainBytes = 0;
  sealedBytes = 0;

  constructor(
    private readonly key: RecordingKey,
    private readonly identity: RecordingFileIdentity,
  ) {
    super();
  }

  private readHeader(): void {
    const all = Buffer.concat(this.buffered);
    const header = all.subarray(0, HEADER_BYTES);
    if (!header.subarray(0, 4).equals(MAGIC)) throw new RecordingError('RECORDING_CORRUPT', 'not a recording file (no CHRC header)');
    if (header[4] !== RECORDING_FILE_VERSION) throw new RecordingError('RECORDING_CORRUPT', `unknown recording file version ${header[4]}`);
    const keyId = header.subarray(5, 13).toString('hex');
    if (keyId !== this.key.id) throw new RecordingError('RECORDING_CORRUPT', `encrypted with another key (key id ${keyId}; RECORDING_KEY has ${this.key.id})`);
    this.chunkBytes = header.readUInt32BE(13);
    if (this.chunkBytes < 1 || this.chunkBytes > MAX_CHUNK_BYTES) throw new RecordingError('RECORDING_CORRUPT', 'bad chunk size in header');
    this.prefix = Buffer.from(header.subarray(17, HEADER_BYTES));
    this.header = Buffer.from(header);
    this.additionalData = Buffer.concat([this.header, identityBytes(this.identity)]);
    const rest = all.subarray(HEADER_BYTES);
    this.buffered = [rest];
    this.bufferedBytes = rest.length;
  }

  private open(sealed: Buffer, last: boolean): void {
    if (sealed.length < TAG_BYTES) throw new RecordingError('RECORDING_CORRUPT', 'file is cut short');
    const decipher = createDecipheriv('aes-256-gcm', this.key.key, nonce(this.prefix!, this.index, last));
    decipher.setAAD(this.additionalData!);
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    let plain: Buffer;
    try {
      plain = Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)), decipher.final()]);
    } catch {
      throw new RecordingError('RECORDING_CORRUPT', `chunk ${this.index} does not authenticate (wrong key, damaged, cut or moved file)`);
    }
    this.index++;
    this.plainHash.update(plain);
    this.plainBytes += plain.length;
    this.push(plain);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.sealedHash.update(chunk);
      this.sealedBytes += chunk.length;
      this.buffered.push(chunk);
      this.bufferedBytes += chunk.length;
      if (!this.header) {
        if (this.bufferedBytes < HEADER_BYTES) return callback();
        this.readHeader();
      }
      const sealedChunk = this.chunkBytes + TAG_BYTES;
      // A full chunk with more after it is not the last one.
      while (this.bufferedBytes > sealedChunk) {
        const all = Buffer.concat(this.buffered);
        this.open(all.subarray(0, sealedChunk), false);
        const rest = all.subarray(sealedChunk);
        this.buffered = [rest];
        this.bufferedBytes = rest.length;
      }
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      if (!this.header) throw new RecordingError('RECORDING_CORRUPT', 'not a recording file (too short)');
      this.open(Buffer.concat(this.buffered), true);
      this.buffered = [];
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }
}

export interface SealedFileFacts {
  bytes: number;
  sha256: string;
  plainBytes: number;
  plainSha256: string;
}

/** Encrypts `plainPath` into `sealedPath` (the caller removes the plaintext once this resolves). */
export async function encryptFile(plainPath: string, sealedPath: string, key: RecordingKey, identity: RecordingFileIdentity): Promise<SealedFileFacts> {
  const encrypt = new EncryptStream(key, identity);
  await pipeline(createReadStream(plainPath), encrypt, createWriteStream(sealedPath, { mode: 0o600 }));
  return { bytes: encrypt.sealedBytes, sha256: encrypt.sealedHash.digest('hex'), plainBytes: encrypt.plainBytes, plainSha256: encrypt.plainHash.digest('hex') };
}

/** Reads and authenticates a whole file without keeping the plaintext; RECORDING_CORRUPT if any part fails. */
export async function verifyFile(sealedPath: string, key: RecordingKey, identity: RecordingFileIdentity): Promise<SealedFileFacts> {
  const decrypt = new DecryptStream(key, identity);
  await pipeline(createReadStream(sealedPath), decrypt, async (source: AsyncIterable<Buffer>) => {
    for await (const _ of source) {
      // authenticated and hashed by the transform; nothing is kept
    }
  }).catch(rethrowMissing);
  return { bytes: decrypt.sealedBytes, sha256: decrypt.sealedHash.digest('hex'), plainBytes: decrypt.plainBytes, plainSha256: decrypt.plainHash.digest('hex') };
}

/** Decrypts into a file (the export); the output is removed again if the input fails its check. */
export async function decryptFile(sealedPath: string, plainPath: string, key: RecordingKey, identity: RecordingFileIdentity): Promise<SealedFileFacts> {
  const decrypt = new DecryptStream(key, identity);
  try {
    await pipeline(createReadStream(sealedPath), decrypt, createWriteStream(plainPath, { mode: 0o600 }));
  } catch (error) {
    await rm(plainPath, { force: true });
    rethrowMissing(error);
  }
  return { bytes: decrypt.sealedBytes, sha256: decrypt.sealedHash.digest('hex'), plainBytes: decrypt.plainBytes, plainSha256: decrypt.plainHash.digest('hex') };
}

function rethrowMissing(error: unknown): never {
  if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new RecordingError('RECORDING_NOT_FOUND', 'the file is missing from RECORDINGS_DIR');
  throw error;
}
