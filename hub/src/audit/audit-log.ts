import type { Redis } from 'ioredis';
import type { Role } from '@clinic-hub/protocol';

export interface AuditEntry {
  /** Token subject of who read or exported. */
  actor: string;
  role: Role;
  /** What was done, e.g. "patient.read". */
  action: string;
  /** What it was done to, e.g. a ticket id. Never the patient data itself. */
  subject: string;
  /** Where from: the client's address. */
  from: string;
  /** For a change of settings: the changed parts as they were, and as they are now (JSON). Never patient data. */
  before?: string;
  after?: string;
}

const AUDIT_ENTRIES_KEPT = 1_000_000;

export const auditKey = (clinic: string) => `ch:{${clinic}}:audit`;

/**
 * Appends to the clinic's audit stream. Callers await it before returning
 * patient data, so a read that cannot be audited does not happen.
 */
export async function appendAudit(redis: Redis, clinic: string, entry: AuditEntry): Promise<string> {
  const id = await redis.xadd(
    auditKey(clinic),
    'MAXLEN',
    '~',
    AUDIT_ENTRIES_KEPT,
    '*',
    'actor',
    entry.actor,
    'role',
    entry.role,
    'action',
    entry.action,
    'subject',
    entry.subject,
    'from',
    entry.from,
    'at',
    String(Date.now()),
    ...(entry.before !== undefined ? ['before', entry.before] : []),
    ...(entry.after !== undefined ? ['after', entry.after] : []),
  );
  return id ?? '';
}

export async function readAudit(redis: Redis, clinic: string, count = 100): Promise<(AuditEntry & { id: string; at: number })[]> {
  const entries = await redis.xrevrange(auditKey(clinic), '+', '-', 'COUNT', count);
  return entries.map(([id, fields]) => {
    const f: Record<string, string> = {};
    for (let i = 0; i < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
    return {
      id,
      actor: f.actor!,
      role: f.role as Role,
      action: f.action!,
      subject: f.subject!,
      from: f.from!,
      at: Number(f.at),
      ...(f.before !== undefined ? { before: f.before } : {}),
      ...(f.after !== undefined ? { after: f.after } : {}),
    };
  });
}
