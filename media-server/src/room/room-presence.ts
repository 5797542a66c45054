import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { consultKeys } from '@clinic-hub/protocol';

const SCRIPT = readFileSync(new URL('./scripts/room-presence.lua', import.meta.url), 'utf8');
const COMMAND = 'clinicMedia_roomPresence';

/**
 * Writes a room's head count and live/waiting status to the consultation's
 * meta hash (docs/consultations.md, "What the other services read and
 * write"), in one script so that an `ended` written by the hub is never
 * overwritten.
 */
export class RoomPresence {
  constructor(private readonly redis: Redis) {
    redis.defineCommand(COMMAND, { numberOfKeys: 1, lua: SCRIPT });
  }

  async set(clinic: string, consult: string, participants: number): Promise<void> {
    const commands = this.redis as unknown as Record<string, (...args: (string | number)[]) => Promise<number>>;
    await commands[COMMAND]!.call(this.redis, consultKeys(clinic, consult).meta, participants);
  }
}
