import type { RedisClient } from '@clinic-hub/platform/redis';
import {
  AI_RESULT_FIELD,
  AiEmotion,
  AiTranscript,
  CONSULT_LANGUAGES,
  CONSULT_STATUSES,
  DEFAULT_RETENTION,
  retentionMs,
  consultControlChannel,
  consultKeys,
  type AiHistoryEntry,
  type AiResultMessage,
  type ConsultLanguage,
  type ConsultListing,
  type ConsultStatus,
  type RetentionMs,
} from '@clinic-hub/protocol';
import { defineScripts, type ScriptRunner } from '@clinic-hub/platform/redis-scripts';
import { currentTraceparentArg } from '@clinic-hub/platform/tracing';
import { CONSULTS_LISTED_DAYS, TICKET_INDEX_SECONDS, consultIndexKeys } from './consult-keys.js';

const SCRIPT_NAMES = ['create-consult', 'end-consult', 'move-consult'] as const;
type ScriptName = (typeof SCRIPT_NAMES)[number];
/** For consultations whose meta hash names no retention (admitted before it was written there). */
const FALLBACK_RETENTION = retentionMs(DEFAULT_RETENTION);

export interface NewConsultation {
  id: string;
  dept: string;
  ticket: string;
  number: string;
  room: string;
  node: string;
  language: ConsultLanguage;
  /** Token sub of who admitted. */
  by: string;
  /** Whether an AI session follows it (the clinic has AI on): without one its audio is deleted when it ends. */
  ai: boolean;
  /** The clinic's retention, written into the meta hash for the media-server and the AI workers. */
  retention: RetentionMs;
  /** The clinic's recording rule, written into the meta hash (`rec`) for the media-server. */
  recordingAllowed: boolean;
}

/**
 * Consultations in Redis: the meta hash and record stream of the contract
 * (protocol/src/consult.ts) and the hub's indexes. Each change is one Lua
 * script; reads are plain commands. Plain data in, plain data out.
 */
export class ConsultStore {
  private readonly scripts: Record<ScriptName, ScriptRunner>;

  constructor(private readonly redis: RedisClient) {
    this.scripts = defineScripts(redis, new URL('./scripts/', import.meta.url), 'clinicConsult', SCRIPT_NAMES);
  }

  /** Creates the consultation, or finds the ticket's one that has not ended. */
  async create(clinic: string, c: NewConsultation): Promise<{ created: boolean; id: string }> {
    const index = consultIndexKeys(clinic);
    const keys = consultKeys(clinic, c.id);
    // The script checks the ticket's existing consultation too: its meta hash is named first (a key of the script's).
    return this.untilNotStale('create-consult', async () => {
      const existing = (await this.redis.get(index.ticket(c.ticket))) ?? '';
      return this.scripts['create-consult'](
        [index.ticket(c.ticket), index.open, index.all, keys.meta, keys.record, consultKeys(clinic, existing).meta],
        [
          existing,
          c.id,
          c.dept,
          c.ticket,
          c.number,
          c.room,
          c.node,
          c.language,
          c.by,
          // The listing forgets ids no later than their data expires.
          Math.min(CONSULTS_LISTED_DAYS * 86_400_000, c.retention.consultMs),
          TICKET_INDEX_SECONDS,
          c.ai ? '1' : '0',
          c.retention.audioMs,
          c.retention.consultMs,
          c.retention.recordingMs,
          c.recordingAllowed ? '1' : '0',
        ],
      );
    });
  }

  /**
   * Runs a script whose keys name data read just before (`run` reads it and
   * runs the script) until the script finds that data as it was read: it
   * answers {"stale":true}, having changed nothing, otherwise.
   */
  private async untilNotStale<T>(script: ScriptName, run: () => Promise<string>): Promise<T> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const reply = JSON.parse(await run()) as T | { stale: true };
      if (!(reply as { stale?: boolean }).stale) return reply as T;
    }
    throw new Error(`${script}: what its keys were read from kept changing`);
  }

  /**
   * Ends it (and tells the media-server nodes); `ended` is false when it had
   * ended already. Its data now expires by the clinic's retention, and its
   * audio goes at once when no AI session follows it (end-consult-7.lua).
   */
  async end(clinic: string, id: string, by: string, reason: string): Promise<{ found: boolean; ended: boolean }> {
    const keys = consultKeys(clinic, id);
    const index = consultIndexKeys(clinic);
    // The ticket's index expires with it: the ticket is read first, so that its index is one of the script's keys.
    return this.untilNotStale('end-consult', async () => {
      const ticket = (await this.redis.hget(keys.meta, 'ticket')) ?? '';
      return this.scripts['end-consult'](
        [keys.meta, keys.record, index.open, keys.ai, keys.aiState, keys.audio, index.ticket(ticket)],
        [id, by, reason, consultControlChannel(clinic), currentTraceparentArg(), ticket, FALLBACK_RETENTION.consultMs, FALLBACK_RETENTION.audioMs],
      );
    });
  }

  /** Moves it off a node that has gone; the node it is on afterwards (null once ended). */
  async move(clinic: string, id: string, from: string, to: string): Promise<string | null> {
    const node = await this.scripts['move-consult']([consultKeys(clinic, id).meta], [from, to]);
    return node === '' ? null : node;
  }

  async get(clinic: string, id: string): Promise<ConsultListing | null> {
    return parseMeta(id, await this.redis.hgetall(consultKeys(clinic, id).meta));
  }

  async getMany(clinic: string, ids: string[]): Promise<ConsultListing[]> {
    if (ids.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hgetall(consultKeys(clinic, id).meta);
    const replies = (await pipeline.exec()) ?? [];
    const found: ConsultListing[] = [];
    ids.forEach((id, i) => {
      const [error, fields] = replies[i] ?? [null, null];
      if (error) throw error;
      const consultation = parseMeta(id, fields as Record<string, string>);
      if (consultation) found.push(consultation);
    });
    return found;
  }

  /** The ticket's latest consultation id (ended or not), or null. */
  idForTicket(clinic: string, ticketId: string): Promise<string | null> {
    return this.redis.get(consultIndexKeys(clinic).ticket(ticketId));
  }

  openIds(clinic: string): Promise<string[]> {
    return this.redis.smembers(consultIndexKeys(clinic).open);
  }

  countOpen(clinic: string): Promise<number> {
    return this.redis.scard(consultIndexKeys(clinic).open);
  }

  /** The latest `count` consultation ids, newest first. */
  recentIds(clinic: string, count: number): Promise<string[]> {
    return this.redis.zrevrange(consultIndexKeys(clinic).all, 0, count - 1);
  }

  /** AI results after a stream id (from the first without one), oldest first. Entries that do not parse are skipped. */
  async aiResults(clinic: string, id: string, after: string | undefined, limit: number): Promise<{ results: AiHistoryEntry[]; hasMore: boolean }> {
    const entries = await this.redis.xrange(consultKeys(clinic, id).ai, after === undefined ? '-' : `(${after}`, '+', 'COUNT', limit + 1);
    const results: AiHistoryEntry[] = [];
    for (const [entryId, fields] of entries.slice(0, limit)) {
      const message = parseAiResult(fieldValue(fields, AI_RESULT_FIELD));
      if (message) results.push({ ...message, id: entryId });
    }
    return { results, hasMore: entries.length > limit };
  }
}

function fieldValue(fields: string[], name: string): string | undefined {
  for (let i = 0; i < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}

/** An AiResultMessage from its JSON, checked against the contract; null for anything else. */
export function parseAiResult(raw: string | undefined): AiResultMessage | null {
  if (raw === undefined) return null;
  let value: { type?: unknown; payload?: unknown };
  try {
    value = JSON.parse(raw) as typeof value;
  } catch {
    return null;
  }
  if (value?.type === 'transcript') {
    const payload = AiTranscript.safeParse(value.payload);
    return payload.success ? { type: 'transcript', payload: payload.data } : null;
  }
  if (value?.type === 'emotion') {
    const payload = AiEmotion.safeParse(value.payload);
    return payload.success ? { type: 'emotion', payload: payload.data } : null;
  }
  return null;
}

function parseMeta(id: string, f: Record<string, string> | null): ConsultListing | null {
  if (!f || !f.status) return null;
  const number = (value: string | undefined) => (value === undefined || value === '' || !Number.isFinite(Number(value)) ? null : Number(value));
  return {
    id,
    dept: f.dept ?? '',
    ticket: f.ticket ?? '',
    number: f.number ?? '',
    room: f.room ?? '',
    status: (CONSULT_STATUSES as readonly string[]).includes(f.status) ? (f.status as ConsultStatus) : 'waiting',
    node: f.node ?? '',
    language: (CONSULT_LANGUAGES as readonly string[]).includes(f.language ?? '') ? (f.language as ConsultLanguage) : 'ja',
    createdAt: number(f.createdAt) ?? 0,
    endedAt: number(f.endedAt),
    participants: number(f.participants),
  };
}
