import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Where chat attachments' bytes live (already encrypted: AttachmentCipher),
 * apart from Redis, which keeps only their metadata. Keys are
 * `<clinic>/<attachmentId>`. An object store (S3, GCS, Azure Blob) can
 * implement the same four calls; the hub nodes must all see the same
 * storage.
 */
export interface AttachmentStorage {
  /** Stores the bytes under `key`, replacing what was there; when it resolves, the bytes are durable. */
  put(key: string, bytes: Buffer): Promise<void>;
  /** The bytes, or null when there is nothing under `key`. */
  get(key: string): Promise<Buffer | null>;
  /** Removes `key`; nothing there is not an error. */
  delete(key: string): Promise<void>;
  /** Keys stored before `before` (ms), for the sweep of files Redis no longer knows (at most `limit`). */
  listOlderThan(before: number, limit: number): Promise<string[]>;
}

/** Where an attachment's bytes are stored: `<clinic>/<attachmentId>`. */
export const attachmentStorageKey = (clinic: string, attachmentId: string) => `${clinic}/${attachmentId}`;

const KEY = /^[A-Za-z0-9_-]{1,64}\/[A-Za-z0-9_-]{1,64}$/;

export class AttachmentKeyError extends Error {}

/**
 * Files under a directory: `<dir>/<clinic>/<id>.bin`, mode 0600, written to
 * a temporary name and renamed (a reader never sees half a file), and
 * synced before `put` resolves. Share the directory between hub nodes (a
 * volume, NFS) or use an object store.
 */
export class FileAttachmentStorage implements AttachmentStorage {
  constructor(readonly dir: string) {}

  async put(key: string, bytes: Buffer): Promise<void> {
    const path = this.pathOf(key);
    await mkdir(join(path, '..'), { recursive: true, mode: 0o700 });
    const temporary = `${path}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await writeFile(temporary, bytes, { mode: 0o600, flush: true });
      await rename(temporary, path);
    } catch (error) {
      await rm(temporary, { force: true });
      throw error;
    }
  }

  async get(key: string): Promise<Buffer | null> {
    try {
      return await readFile(this.pathOf(key));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.pathOf(key), { force: true });
  }

  async listOlderThan(before: number, limit: number): Promise<string[]> {
    const keys: string[] = [];
    let clinics: string[];
    try {
      clinics = await readdir(this.dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return keys;
      throw error;
    }
    for (const clinic of clinics) {
      let files: string[];
      try {
        files = await readdir(join(this.dir, clinic));
      } catch {
        continue;
      }
      for (const file of files) {
        if (keys.length >= limit) return keys;
        const id = file.endsWith('.bin') ? file.slice(0, -4) : null;
        const key = id ? `${clinic}/${id}` : null;
        if (!key || !KEY.test(key)) continue;
        const info = await stat(join(this.dir, clinic, file)).catch(() => null);
        if (info && info.mtimeMs < before) keys.push(key);
      }
    }
    return keys;
  }

  private pathOf(key: string): string {
    // Keys are made by the hub from validated ids; checked again here, so nothing can name a path outside the directory.
    if (!KEY.test(key)) throw new AttachmentKeyError(`not an attachment key: ${key.slice(0, 80)}`);
    const [clinic, id] = key.split('/') as [string, string];
    return join(this.dir, clinic, `${id}.bin`);
  }
}
