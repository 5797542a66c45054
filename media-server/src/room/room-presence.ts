import type { RedisClient } from '@clinic-hub/platform/redis';
import { consultKeys } from '@clinic-hub/protocol';
import { defineScripts, type ScriptRunner } from '@clinic-hub/platform/redis-scripts';

/**
 * Writes a room's head count and live/waiting status to the consultation's
 * meta hash (docs/consultations.md, "What the other services read and
 * write"), in one script so that an `ended` written by the hub is never
 * overwritten.
 */
export class RoomPresence {
  private readonly scripts: Record<'room-presence', ScriptRunner>;

  constructor(redis: RedisClient) {
    this.scripts = defineScripts(redis, new URL('./scripts/', import.meta.url), 'clinicMedia', ['room-presence']);
  }

  async set(clinic: string, consult: string, participants: number): Promise<void> {
    await this.scripts['room-presence']<number>([consultKeys(clinic, consult).meta], [participants]);
  }
}
