import type { RedisClient } from '@clinic-hub/platform/redis';
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
export async function appendAudit(redis: RedisClient, clinic: string, entry: AuditEntry): Promise<string> {
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

export async function readAudit(redis: RedisClient, clinic: string, count = 100): Promise<(AuditEntry & { id: string; at: number })[]> {
  const entries = await redis.xrevrange(auditKey(clinic), '+', '-', 'COUNT', count);
  return entries.map(([id, fields]) => entryOf(id, fields));
}

/** What an audit query keeps: each field given must match (actor and action exactly, subject as a substring). */
export interface AuditFilter {
  actor?: string;
  action?: string;
  subject?: string;
  /** ms since the epoch, inclusive. */
  since?: number;
  until?: number;
}

/** How many entries one query reads at most, to find `count` that match: a query never walks the whole stream. */
const AUDIT_SCAN_LIMIT = 20_000;
const AUDIT_SCAN_BATCH = 1000;

/** The newest `count` entries matching `filter`, newest first, reading at most AUDIT_SCAN_LIMIT entries (`scanned` says how many). */
export async function queryAudit(
  redis: RedisClient,
  clinic: string,
  filter: AuditFilter,
  count: number,
): Promise<{ entries: (AuditEntry & { id: string; at: number })[]; scanned: number; complete: boolean }> {
  const matches = (entry: AuditEntry & { at: number }) =>
    (filter.actor === undefined || entry.actor === filter.actor) &&
    (filter.action === undefined || entry.action === filter.action) &&
    (filter.subject === undefined || entry.subject.includes(filter.subject));
  const entries: (AuditEntry & { id: string; at: number })[] = [];
  let end = filter.until !== undefined ? String(filter.until) : '+';
  const start = filter.since !== undefined ? String(filter.since) : '-';
  let scanned = 0;
  for (;;) {
    const batch = await redis.xrevrange(auditKey(clinic), end, start, 'COUNT', AUDIT_SCAN_BATCH);
    for (const [id, fields] of batch) {
      scanned++;
      const entry = entryOf(id, fields);
      if (matches(entry)) entries.push(entry);
      if (entries.length >= count) return { entries, scanned, complete: true };
    }
    if (batch.length < AUDIT_SCAN_BATCH) return { entries, scanned, complete: true };
    if (scanned >= AUDIT_SCAN_LIMIT) return { entries, scanned, complete: false };
    end = `(${batch[batch.length - 1]![0]}`;
  }
}

function entryOf(id: string, fields: string[]): AuditEntry & { id: string; at: number } {
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
}

const CSV_COLUMNS = ['id', 'at', 'actor', 'role', 'action', 'subject', 'from', 'before', 'after'] as const;

/** RFC 4180 CSV with a header line; a cell starting with = + - @ is prefixed with ' so that spreadsheets do not run it. */
export function auditCsv(entries: readonly (AuditEntry & { id: string; at: number })[]): string {
  const cell = (value: unknown) => {
    let text = value === undefined ? '' : typeof value === 'number' ? String(value) : String(value);
    if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
    return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  };
  const rows = entries.map((entry) => CSV_COLUMNS.map((column) => cell(column === 'at' ? new Date(entry.at).toISOString() : entry[column])).join(','));
  return [CSV_COLUMNS.join(','), ...rows].join('\r\n') + '\r\n';
}
