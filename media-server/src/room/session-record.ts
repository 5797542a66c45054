import type { RedisClient } from '@clinic-hub/platform/redis';
import { consultKeys, type ConsultRecordType, type ConsultRole } from '@clinic-hub/protocol';

/** The entries the room writes; `participant` is the room token's sub, never a name. */
export type RoomRecordEntry =
  | { type: 'joined'; participant: string; part: ConsultRole }
  | { type: 'left'; participant: string; part: ConsultRole; reason: 'left' | 'dropped' | 'replaced' | 'removed' | 'ended' | 'draining' }
  | { type: 'consent-granted' | 'consent-withdrawn'; participant: string; part: ConsultRole };

/**
 * Appends to the consultation's session record stream (consultKeys().record):
 * `type`, `at` (ms since the epoch), `node`, then the entry's own fields,
 * the same shape the hub's and the recorder's entries have.
 */
export class SessionRecord {
  constructor(
    private readonly redis: RedisClient,
    private readonly nodeId: string,
  ) {}

  async append(clinic: string, consult: string, entry: RoomRecordEntry): Promise<string> {
    const { type, ...fields } = entry;
    const recordType: ConsultRecordType = type;
    const flat = Object.entries(fields).flatMap(([name, value]) => [name, String(value)]);
    const id = await this.redis.xadd(consultKeys(clinic, consult).record, '*', 'type', recordType, 'at', String(Date.now()), 'node', this.nodeId, ...flat);
    return id ?? '';
  }
}
