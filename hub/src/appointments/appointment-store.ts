import { randomInt } from 'node:crypto';
import type { RedisClient } from '@clinic-hub/platform/redis';
import { appointmentKeys } from './appointment-keys.js';

/** An appointment as stored: what its arrival needs. Patient data (its time and code): it expires. */
export interface AppointmentRecord {
  id: string;
  startsAt: number;
  dept: string;
  room: string | null;
  /** Ten digits, unique among the clinic's stored appointments. */
  code: string;
  /** Set by the check-in script when the patient arrives. */
  ticket: string | null;
  arrivedAt: number | null;
}

const CODE_ATTEMPTS = 20;

/** Ten random digits, the first not 0 (a code typed with a lost leading zero stays wrong, not another's). */
export function newArrivalCode(): string {
  return String(randomInt(1, 10)) + String(randomInt(0, 1_000_000_000)).padStart(9, '0');
}

export class AppointmentStore {
  constructor(private readonly redis: RedisClient) {}

  async get(clinic: string, appointmentId: string): Promise<AppointmentRecord | null> {
    return parse(await this.redis.get(appointmentKeys(clinic).record(appointmentId)));
  }

  async byCode(clinic: string, code: string): Promise<AppointmentRecord | null> {
    const id = await this.redis.get(appointmentKeys(clinic).byCode(code));
    return id ? this.get(clinic, id) : null;
  }

  /**
   * Creates or updates an appointment. An existing one keeps its arrival code
   * (the reminder already sent carries it) and its arrival; a new one gets a
   * code no other stored appointment of the clinic has.
   */
  async put(clinic: string, input: { id: string; startsAt: number; dept: string; room: string | null }, expiresAt: number): Promise<AppointmentRecord> {
    const keys = appointmentKeys(clinic);
    const previous = await this.get(clinic, input.id);
    let code = previous?.code;
    if (!code) {
      for (let attempt = 0; attempt < CODE_ATTEMPTS && !code; attempt++) {
        const candidate = newArrivalCode();
        if ((await this.redis.set(keys.byCode(candidate), input.id, 'PXAT', Math.round(expiresAt), 'NX')) === 'OK') code = candidate;
      }
      if (!code) throw new Error('no free arrival code after 20 attempts');
    }
    const record: AppointmentRecord = {
      id: input.id,
      startsAt: input.startsAt,
      dept: input.dept,
      room: input.room,
      code,
      ticket: previous?.ticket ?? null,
      arrivedAt: previous?.arrivedAt ?? null,
    };
    await this.redis
      .multi()
      .set(keys.record(input.id), JSON.stringify(record), 'PXAT', Math.round(expiresAt))
      .set(keys.byCode(code), input.id, 'PXAT', Math.round(expiresAt))
      .zadd(keys.byTime, input.startsAt, input.id)
      .exec();
    return record;
  }

  async delete(clinic: string, appointmentId: string): Promise<boolean> {
    const keys = appointmentKeys(clinic);
    const record = await this.get(clinic, appointmentId);
    if (!record) return false;
    await this.redis.multi().del(keys.record(appointmentId)).del(keys.byCode(record.code)).zrem(keys.byTime, appointmentId).exec();
    return true;
  }

  /** Appointments between two times, soonest first (records that expired are dropped from the index). */
  async between(clinic: string, from: number, to: number): Promise<AppointmentRecord[]> {
    const keys = appointmentKeys(clinic);
    const ids = await this.redis.zrangebyscore(keys.byTime, from, to);
    if (ids.length === 0) return [];
    const raws = await this.redis.mget(ids.map((id) => keys.record(id)));
    const gone = ids.filter((_, i) => raws[i] === null);
    if (gone.length > 0) await this.redis.zrem(keys.byTime, ...gone);
    return raws.map(parse).filter((r): r is AppointmentRecord => r !== null);
  }
}

function parse(raw: string | null): AppointmentRecord | null {
  if (!raw) return null;
  return JSON.parse(raw) as AppointmentRecord;
}
