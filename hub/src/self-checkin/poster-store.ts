import type { RedisClient } from '@clinic-hub/platform/redis';
import { newOpaqueId } from '@clinic-hub/platform/ids';

/** A printed clinic poster: its QR code opens the phone check-in page with this id. */
export interface Poster {
  id: string;
  label: string;
  createdAt: number;
  createdBy: string;
}

const postersKey = (clinic: string) => `ch:{${clinic}}:posters`;

/**
 * The clinic's posters. A poster's id is what lets a phone check in from it:
 * withdrawing a poster (a photo of it shared online) stops its QR code, and
 * a new poster gets a new id. Kept until withdrawn.
 */
export class PosterStore {
  constructor(private readonly redis: RedisClient) {}

  async create(clinic: string, label: string, createdBy: string): Promise<Poster> {
    const poster: Poster = { id: newOpaqueId(18), label, createdAt: Date.now(), createdBy };
    await this.redis.hset(postersKey(clinic), poster.id, JSON.stringify(poster));
    return poster;
  }

  async get(clinic: string, id: string): Promise<Poster | null> {
    const raw = await this.redis.hget(postersKey(clinic), id);
    return raw ? (JSON.parse(raw) as Poster) : null;
  }

  async list(clinic: string): Promise<Poster[]> {
    const all = await this.redis.hvals(postersKey(clinic));
    return all.map((raw) => JSON.parse(raw) as Poster).sort((a, b) => b.createdAt - a.createdAt);
  }

  async withdraw(clinic: string, id: string): Promise<boolean> {
    return (await this.redis.hdel(postersKey(clinic), id)) === 1;
  }
}
