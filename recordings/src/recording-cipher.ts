import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { RecordingError } from './recording-error.js';

/**
 * Recording files at rest: AES-256-GCM in independently authenticated
 * chunks, so a file of any size is encrypted and decrypted as a stream and
 * every byte handed out has been authenticated.
 *
 * Version 2 (written since December 2026):
 *
 *     header (53 bytes)
 *       0  4  magic "CHRC"
 *       4  1  version (2)
 *       5  8  key id: the first 8 bytes of SHA-256("clinic-hub/recording-key-id/v1" || key)
 *      13  4  chunk size C (plaintext bytes per chunk, big-endian)
 *      17  4  first chunk size F (the WebM head for recorded segments; C otherwise)
 *      21 32  salt (random per file)
 *     chunks: chunk 0 holds min(F, rest) bytes, every later one min(C, rest);
 *       each is its ciphertext followed by its 16-byte tag.
 *
 * Each file has a key of its own, HKDF-SHA256(RECORDING_KEY, salt,
 * "clinic-hub/recording-file/v2"), so no two files ever share a (key, nonce)
 * pair whatever their number. Chunk i's nonce is 0 (7 bytes) || i (4,
 * big-endian) || flags (1): 1 on the final chunk, 2 on a provisional chunk 0
 * (the head a segment starts with, replaced by the final head when it
 * closes: a different nonce, never the same nonce twice). Chunks cannot be
 * reordered, and a file cut at a chunk boundary or extended fails (its real
 * last chunk was sealed as the last). The final chunk may be empty.
 *
 * Version 1 (files written before): header of 24 bytes with a 7-byte random
 * nonce prefix at 17 in place of F and the salt; every file under
 * RECORDING_KEY itself, nonce prefix || i || last. Still read, never written.
 *
 * The additional data of every chunk is the header followed by the file's
 * identity (clinic/recording/file name), so a file moved under another
 * recording or participant does not decrypt.
 */

export const RECORDING_FILE_VERSION = 2;
const LEGACY_VERSION = 1;
const MAGIC = Buffer.from('CHRC', 'ascii');
const HEADER_BYTES = { 1: 24, 2: 53 } as const;
const SALT_BYTES = 32;
const TAG_BYTES = 16;
export const DEFAULT_CHUNK_BYTES = 64 * 1024;
/**
 * Chunks of a segment being recorded: what has not filled a chunk yet is
 * only in memory, and is what a node that dies loses (16 KiB: 0.1 s of
 * video at 1.5 Mbit/s, 4 s of audio alone); a tag costs 0.1 %.
 */
export const SEGMENT_CHUNK_BYTES = 16 * 1024;
const MAX_CHUNK_BYTES = 16 * 1024 * 1024;
const FILE_KEY_INFO = Buffer.from('clinic-hub/recording-file/v2', 'ascii');

const LAST = 1;
const PROVISIONAL = 2;

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

/** One file's keys and layout, from its header. */
interface FileCipher {
  version: 1 | 2;
  header: Buffer;
  additionalData: Buffer;
  /** The AES key of this file (v2: derived; v1: RECORDING_KEY itself). */
  aesKey: Buffer;
  /** v1 only: the random nonce prefix. */
  prefix: Buffer;
  chunkBytes: number;
  firstChunkBytes: number;
}

const identityBytes = (version: number, identity: RecordingFileIdentity) =>
  Buffer.from(`clinic-hub/recording/v${version}/${identity.clinic}/${identity.recording}/${identity.name}`, 'utf8');

function fileKey(key: RecordingKey, salt: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', key.key, salt, FILE_KEY_INFO, 32));
}

/** A new v2 file: a fresh salt, so a key of its own. */
function newFileCipher(key: RecordingKey, identity: RecordingFileIdentity, chunkBytes: number, firstChunkBytes: number): FileCipher {
  if (!(chunkBytes >= 1 && chunkBytes <= MAX_CHUNK_BYTES && firstChunkBytes >= 1 && firstChunkBytes <= MAX_CHUNK_BYTES)) throw new RangeError('chunk sizes: 1 B to 16 MiB');
  const salt = randomBytes(SALT_BYTES);
  const header = Buffer.alloc(HEADER_BYTES[2]);
  MAGIC.copy(header, 0);
  header[4] = RECORDING_FILE_VERSION;
  Buffer.from(key.id, 'hex').copy(header, 5);
  header.writeUInt32BE(chunkBytes, 13);
  header.writeUInt32BE(firstChunkBytes, 17);
  salt.copy(header, 21);
  return {
    version: 2,
    header,
    additionalData: Buffer.concat([header, identityBytes(2, identity)]),
    aesKey: fileKey(key, salt),
    prefix: Buffer.alloc(7),
    chunkBytes,
    firstChunkBytes,
  };
}

/** How many header bytes `start` announces (null: not enough to tell yet); RECORDING_CORRUPT if it is no recording file. */
function headerLength(start: Buffer): number | null {
  if (start.length < 5) return null;
  if (!start.subarray(0, 4).equals(MAGIC)) throw new RecordingError('RECORDING_CORRUPT', 'not a recording file (no CHRC header)');
  const version = start[4];
  if (version === LEGACY_VERSION || version === RECORDING_FILE_VERSION) return HEADER_BYTES[version];
  throw new RecordingError('RECORDING_CORRUPT', `recording file version ${version} is not one this server reads (1 and 2): written by a newer Clinic Hub?`);
}

function readHeader(header: Buffer, key: RecordingKey, identity: RecordingFileIdentity): FileCipher {
  const version = header[4] as 1 | 2;
  const keyId = header.subarray(5, 13).toString('hex');
  if (keyId !== key.id) throw new RecordingError('RECORDING_CORRUPT', `encrypted with another key (key id ${keyId}; RECORDING_KEY has ${key.id})`);
  const chunkBytes = header.readUInt32BE(13);
  const firstChunkBytes = version === 2 ? header.readUInt32BE(17) : chunkBytes;
  for (const size of [chunkBytes, firstChunkBytes]) {
    if (size < 1 || size > MAX_CHUNK_BYTES) throw new RecordingError('RECORDING_CORRUPT', 'bad chunk size in header');
  }
  const copy = Buffer.from(header);
  return {
    version,
    header: copy,
    additionalData: Buffer.concat([copy, identityBytes(version, identity)]),
    aesKey: version === 2 ? fileKey(key, copy.subarray(21, 21 + SALT_BYTES)) : key.key,
    prefix: version === 2 ? Buffer.alloc(7) : copy.subarray(17, 24),
    chunkBytes,
    firstChunkBytes,
  };
}

function nonce(file: FileCipher, index: number, flags: number): Buffer {
  const out = Buffer.alloc(12);
  file.prefix.copy(out, 0);
  out.writeUInt32BE(index, 7);
  out[11] = flags;
  return out;
}

/** Plaintext bytes in chunk `index`, and where that chunk starts in the file. */
const plainBytesOf = (file: FileCipher, index: number) => (index === 0 ? file.firstChunkBytes : file.chunkBytes);
const sealedOffsetOf = (file: FileCipher, index: number) =>
  index === 0 ? file.header.length : file.header.length + file.firstChunkBytes + TAG_BYTES + (index - 1) * (file.chunkBytes + TAG_BYTES);

function sealChunk(file: FileCipher, index: number, flags: number, plain: Buffer): Buffer {
  if (index > 0xffffffff) throw new RangeError('too many chunks for one file');
  const cipher = createCipheriv('aes-256-gcm', file.aesKey, nonce(file, index, flags));
  cipher.setAAD(file.additionalData);
  return Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
}

/** The plaintext, or null when the chunk does not authenticate with these flags. */
function tryOpenChunk(file: FileCipher, index: number, flags: number, sealed: Buffer): Buffer | null {
  if (sealed.length < TAG_BYTES) return null;
  const decipher = createDecipheriv('aes-256-gcm', file.aesKey, nonce(file, index, flags));
  decipher.setAAD(file.additionalData);
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
  try {
    return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)), decipher.final()]);
  } catch {
    return null;
  }
}

/** A recording file's stream through the cipher: both sides, plain and sealed, counted and hashed as they pass. */
abstract class CountingCipherStream extends Transform {
  readonly plainHash: Hash = createHash('sha256');
  readonly sealedHash: Hash = createHash('sha256');
  plainBytes = 0;
  sealedBytes = 0;
}

/** Plain in, sealed out (version 2, chunks of `chunkBytes`); also hashes both sides. */
export class EncryptStream extends CountingCipherStream {
  private readonly file: FileCipher;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private index = 0;

  constructor(key: RecordingKey, identity: RecordingFileIdentity, chunkBytes = DEFAULT_CHUNK_BYTES) {
    super();
    this.file = newFileCipher(key, identity, chunkBytes, chunkBytes);
    this.emitSealed(this.file.header);
  }

  private emitSealed(bytes: Buffer): void {
    this.sealedHash.update(bytes);
    this.sealedBytes += bytes.length;
    this.push(bytes);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.plainHash.update(chunk);
    this.plainBytes += chunk.length;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    // Keep at least one byte back: only the end of the input says which chunk is the last.
    while (this.pendingBytes > this.file.chunkBytes) {
      const all = Buffer.concat(this.pending);
      this.emitSealed(sealChunk(this.file, this.index++, 0, all.subarray(0, this.file.chunkBytes)));
      const rest = all.subarray(this.file.chunkBytes);
      this.pending = [rest];
      this.pendingBytes = rest.length;
    }
    callback();
  }

  override _flush(callback: TransformCallback): void {
    this.emitSealed(sealChunk(this.file, this.index++, LAST, Buffer.concat(this.pending)));
    this.pending = [];
    callback();
  }
}

/** Sealed in (version 1 or 2), plain out; a chunk that does not authenticate is RECORDING_CORRUPT. */
export class DecryptStream extends CountingCipherStream {
  private file: FileCipher | null = null;
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  private index = 0;

  constructor(
    private readonly key: RecordingKey,
    private readonly identity: RecordingFileIdentity,
  ) {
    super();
  }

  /** Which version the file is, once its header has been read. */
  get version(): number | null {
    return this.file?.version ?? null;
  }

  private open(sealed: Buffer, last: boolean): void {
    const file = this.file!;
    if (sealed.length < TAG_BYTES) throw new RecordingError('RECORDING_CORRUPT', 'file is cut short');
    const plain = tryOpenChunk(file, this.index, last ? LAST : 0, sealed);
    if (!plain) {
      const provisional = this.index === 0 && file.version === 2 && tryOpenChunk(file, 0, PROVISIONAL, sealed) !== null;
      throw new RecordingError(
        'RECORDING_CORRUPT',
        provisional
          ? 'the segment was never closed (its head is still the provisional one): the recording node stopped while writing it'
          : `chunk ${this.index} does not authenticate (wrong key, damaged, cut or moved file)`,
      );
    }
    this.index++;
    this.plainHash.update(plain);
    this.plainBytes += plain.length;
    this.push(plain);
  }

  private takeBytes(bytes: number): Buffer {
    const all = Buffer.concat(this.buffered);
    const rest = all.subarray(bytes);
    this.buffered = [rest];
    this.bufferedBytes = rest.length;
    return all.subarray(0, bytes);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.sealedHash.update(chunk);
      this.sealedBytes += chunk.length;
      this.buffered.push(chunk);
      this.bufferedBytes += chunk.length;
      if (!this.file) {
        const length = headerLength(Buffer.concat(this.buffered));
        if (length === null || this.bufferedBytes < length) return callback();
        this.file = readHeader(this.takeBytes(length), this.key, this.identity);
      }
      // A full chunk with more after it is not the last one.
      while (this.bufferedBytes > plainBytesOf(this.file, this.index) + TAG_BYTES) {
        this.open(this.takeBytes(plainBytesOf(this.file, this.index) + TAG_BYTES), false);
      }
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      if (!this.file) throw new RecordingError('RECORDING_CORRUPT', 'not a recording file (too short)');
      this.open(Buffer.concat(this.buffered), true);
      this.buffered = [];
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }
}

/**
 * Writes one recording segment encrypted as it is recorded, so that no
 * plaintext ever reaches the disk. The segment's WebM head (EBML header,
 * Info, Tracks) is chunk 0, of its own size F: it is written at once as a
 * provisional chunk, and replaced in place when the segment closes by the
 * final head (Duration and Segment size filled in) — sealed with another
 * nonce, so no nonce is ever used twice. Everything after the head goes out
 * in chunks of C as they fill (the last C bytes or less wait in memory); the
 * file is only ever appended to, apart from that one head slot.
 *
 * A file whose writer never closed (the node died) keeps its provisional
 * head and lacks its last chunk: normal reads refuse it, and
 * `recoverSealedSegment` reads what it holds.
 */
export class SealedSegmentWriter {
  private readonly file: FileCipher;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private index = 1;
  private closed = false;

  private constructor(
    private readonly handle: FileHandle,
    identity: RecordingFileIdentity,
    key: RecordingKey,
    private readonly headBytes: number,
    chunkBytes: number,
  ) {
    this.file = newFileCipher(key, identity, chunkBytes, headBytes);
  }

  /** Creates the file (owner-only; it must not exist) with its header and the provisional head. */
  static async create(path: string, key: RecordingKey, identity: RecordingFileIdentity, head: Buffer, chunkBytes = SEGMENT_CHUNK_BYTES): Promise<SealedSegmentWriter> {
    const handle = await open(path, 'wx', 0o600);
    const writer = new SealedSegmentWriter(handle, identity, key, head.length, chunkBytes);
    try {
      const start = Buffer.concat([writer.file.header, sealChunk(writer.file, 0, PROVISIONAL, head)]);
      await handle.write(start, 0, start.length, 0);
    } catch (error) {
      await handle.close().catch(() => undefined);
      throw error;
    }
    return writer;
  }

  /** Appends WebM bytes after the head; full chunks are sealed and written now. Calls must not overlap. */
  async append(bytes: Buffer): Promise<void> {
    if (this.closed) throw new Error('segment already closed');
    this.pending.push(bytes);
    this.pendingBytes += bytes.length;
    // Keep at least one byte back: the last chunk is sealed as the last only at close.
    while (this.pendingBytes > this.file.chunkBytes) {
      const all = Buffer.concat(this.pending);
      await this.writeChunk(all.subarray(0, this.file.chunkBytes), 0);
      const rest = all.subarray(this.file.chunkBytes);
      this.pending = [rest];
      this.pendingBytes = rest.length;
    }
  }

  private async writeChunk(plain: Buffer, flags: number): Promise<void> {
    const index = this.index++;
    const sealed = sealChunk(this.file, index, flags, plain);
    await this.handle.write(sealed, 0, sealed.length, sealedOffsetOf(this.file, index));
  }

  /** Seals the rest as the last chunk, replaces the provisional head with `finalHead` (same length), syncs and closes the file. */
  async close(finalHead: Buffer): Promise<void> {
    if (this.closed) return;
    if (finalHead.length !== this.headBytes) throw new RangeError(`the final head must be ${this.headBytes} bytes, as the provisional one`);
    this.closed = true;
    try {
      await this.writeChunk(Buffer.concat(this.pending), LAST);
      this.pending = [];
      const head = sealChunk(this.file, 0, 0, finalHead);
      await this.handle.write(head, 0, head.length, this.file.header.length);
      await this.handle.datasync();
    } finally {
      await this.handle.close();
    }
  }

  /** Closes the file as it is (a failed segment): it stays unreadable until recovered or removed. */
  async abandon(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close().catch(() => undefined);
  }
}

/**
 * What a segment file whose writer never closed holds, in order: its head
 * (provisional or final) and every chunk after it that authenticates, up to
 * the first that does not (the one being written when the node died) —
 * plaintext in memory only. RECORDING_CORRUPT when not even the head opens.
 */
export async function* recoverSealedSegment(path: string, key: RecordingKey, identity: RecordingFileIdentity): AsyncGenerator<Buffer> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    const start = Buffer.alloc(Math.min(size, HEADER_BYTES[2]));
    await handle.read(start, 0, start.length, 0);
    const length = headerLength(start);
    if (length === null || size < length) throw new RecordingError('RECORDING_CORRUPT', 'not a recording file (too short)');
    const file = readHeader(start.subarray(0, length), key, identity);
    if (file.version !== 2) throw new RecordingError('RECORDING_CORRUPT', 'only version 2 segments are recovered');
    for (let index = 0; ; index++) {
      const offset = sealedOffsetOf(file, index);
      if (offset >= size) return;
      const sealed = Buffer.alloc(Math.min(plainBytesOf(file, index) + TAG_BYTES, size - offset));
      await handle.read(sealed, 0, sealed.length, offset);
      const flags = index === 0 ? [PROVISIONAL, 0, LAST] : [0, LAST];
      let plain: Buffer | null = null;
      let flag = 0;
      for (flag of flags) if ((plain = tryOpenChunk(file, index, flag, sealed))) break;
      if (!plain) {
        if (index === 0) throw new RecordingError('RECORDING_CORRUPT', 'the head of the segment does not authenticate');
        return;
      }
      yield plain;
      if (flag === LAST) return;
    }
  } finally {
    await handle.close();
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

const factsOf = (decrypt: DecryptStream): SealedFileFacts => ({
  bytes: decrypt.sealedBytes,
  sha256: decrypt.sealedHash.digest('hex'),
  plainBytes: decrypt.plainBytes,
  plainSha256: decrypt.plainHash.digest('hex'),
});

/** Reads and authenticates a whole file without keeping the plaintext; RECORDING_CORRUPT if any part fails. */
export async function verifyFile(sealedPath: string, key: RecordingKey, identity: RecordingFileIdentity): Promise<SealedFileFacts> {
  const decrypt = new DecryptStream(key, identity);
  await pipeline(createReadStream(sealedPath), decrypt, async (source: AsyncIterable<Buffer>) => {
    for await (const _ of source) {
      // authenticated and hashed by the transform; nothing is kept
    }
  }).catch(rethrowMissing);
  return factsOf(decrypt);
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
  return factsOf(decrypt);
}

function rethrowMissing(error: unknown): never {
  if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new RecordingError('RECORDING_NOT_FOUND', 'the file is missing from RECORDINGS_DIR');
  throw error;
}
