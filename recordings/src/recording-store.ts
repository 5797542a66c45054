import type { RedisClient } from '@clinic-hub/platform/redis';
import { evalScript, loadScript } from '@clinic-hub/platform/redis-scripts';
import {
  ConsultRole,
  RETENTION_META_FIELDS,
  consultKeys,
  retentionField,
  type ConsultRecordType,
  type RecordingConsentEvent,
  type RecordingFile,
  type RecordingMeta,
  type RecordingStatusName,
  type RecordingStopReason,
} from '@clinic-hub/protocol';

/**
 * Recording metadata in Redis, beside the consultation's keys (same `{clinic}` hash tag):
 *
 * - `ch:{clinic}:recording:<id>` hash: id, clinic, consult, node, status,
 *   startedAt, stoppedAt, stopReason, finalisedAt, purgeAt, consent (JSON),
 *   one `participant:<id>` field per participant (value: their part) and one
 *   `file:<name>` field per encrypted file (value: RecordingFile as JSON).
 *   One field per file and participant, so each write is a single HSET.
 * - `ch:{clinic}:recordings` sorted set: recording ids by start time.
 */
export const recordingsIndexKey = (clinic: string) => `ch:{${clinic}}:recordings`;
/**
 * Counter written after changes to a clinic's recordings (by any connection),
 * then waited for on a replica of the clinic's shard (ReplicaAck): the
 * replication stream is in order, so a replica that has it has them.
 */
export const recordingsAckFenceKey = (clinic: string) => `${recordingsIndexKey(clinic)}:ack-fence`;
export const recordingKeys = (clinic: string, recording: string) => ({
  meta: `ch:{${clinic}}:recording:${recording}`,
  index: recordingsIndexKey(clinic),
  /** Stream: the whole recording's transcript (AiResultMessage JSON under AI_RESULT_FIELD), written by the AI workers; purged with the recording. */
  transcript: `ch:{${clinic}}:recording:${recording}:transcript`,
  /** Hash: the metadata of a recording being purged, from the moment it is forgotten until recording.purged is handed over (purgeRecordingMeta). */
  purged: `ch:{${clinic}}:recording:${recording}:purged`,
});

/** Ids that end up in file paths and keys: no separators, no dots. */
export const RECORDING_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
export const CLINIC_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

const FILE_PREFIX = 'file:';
const PARTICIPANT_PREFIX = 'participant:';

export function parseRecording(fields: Record<string, string>): RecordingMeta | null {
  if (!fields.id || !fields.clinic || !fields.consult) return null;
  const files: RecordingFile[] = [];
  const participants: RecordingMeta['participants'] = [];
  for (const [field, value] of Object.entries(fields)) {
    if (field.startsWith(FILE_PREFIX)) files.push(JSON.parse(value) as RecordingFile);
    else if (field.startsWith(PARTICIPANT_PREFIX)) {
      const part = ConsultRole.safeParse(value);
      if (part.success) participants.push({ id: field.slice(PARTICIPANT_PREFIX.length), part: part.data });
    }
  }
  files.sort((a, b) => a.participant.localeCompare(b.participant) || a.kind.localeCompare(b.kind) || a.segment - b.segment);
  participants.sort((a, b) => a.id.localeCompare(b.id));
  const number = (value: string | undefined) => (value === undefined || value === '' ? null : Number(value));
  return {
    id: fields.id,
    clinic: fields.clinic,
    consult: fields.consult,
    status: (fields.status ?? 'recording') as RecordingStatusName,
    node: fields.node ?? '',
    startedAt: Number(fields.startedAt),
    stoppedAt: number(fields.stoppedAt),
    stopReason: (fields.stopReason || null) as RecordingStopReason | null,
    participants,
    files,
    consent: fields.consent ? (JSON.parse(fields.consent) as RecordingConsentEvent[]) : [],
    finalisedAt: number(fields.finalisedAt),
    purgeAt: number(fields.purgeAt),
  };
}

export async function getRecording(redis: RedisClient, clinic: string, recording: string): Promise<RecordingMeta | null> {
  if (!RECORDING_ID_PATTERN.test(recording)) return null;
  return parseRecording(await redis.hgetall(recordingKeys(clinic, recording).meta));
}

/** The clinic's recordings, newest first. */
export async function listRecordings(redis: RedisClient, clinic: string, options: { count?: number; consult?: string } = {}): Promise<RecordingMeta[]> {
  const ids = await redis.zrevrange(recordingsIndexKey(clinic), 0, -1);
  const out: RecordingMeta[] = [];
  const count = options.count ?? 100;
  // Metadata in pipelined pages: a clinic keeps recordings for its retention period only.
  for (let i = 0; i < ids.length && out.length < count; i += 50) {
    const page = ids.slice(i, i + 50);
    const pipeline = redis.pipeline();
    for (const id of page) pipeline.hgetall(recordingKeys(clinic, id).meta);
    const results = (await pipeline.exec()) ?? [];
    for (const [error, fields] of results) {
      if (error) throw error;
      const meta = parseRecording(fields as Record<string, string>);
      if (meta && (!options.consult || meta.consult === options.consult)) out.push(meta);
      if (out.length >= count) break;
    }
  }
  return out;
}

export async function createRecordingMeta(
  redis: RedisClient,
  meta: { id: string; clinic: string; consult: string; node: string; startedAt: number },
): Promise<void> {
  const keys = recordingKeys(meta.clinic, meta.id);
  await redis
    .multi()
    .hset(keys.meta, { id: meta.id, clinic: meta.clinic, consult: meta.consult, node: meta.node, status: 'recording', startedAt: String(meta.startedAt) })
    .zadd(keys.index, meta.startedAt, meta.id)
    .exec();
}

export async function addParticipant(redis: RedisClient, clinic: string, recording: string, participant: string, part: ConsultRole): Promise<void> {
  await redis.hset(recordingKeys(clinic, recording).meta, `${PARTICIPANT_PREFIX}${participant}`, part);
}

export async function addFile(redis: RedisClient, clinic: string, recording: string, file: RecordingFile): Promise<void> {
  await redis.hset(recordingKeys(clinic, recording).meta, `${FILE_PREFIX}${file.name}`, JSON.stringify(file));
}

export async function setRecordingFields(redis: RedisClient, clinic: string, recording: string, fields: Record<string, string>): Promise<void> {
  await redis.hset(recordingKeys(clinic, recording).meta, fields);
}

/**
 * Marks a verified recording final and notes `recording-finalised` in the
 * session record (if still kept) at once: a retry of the job after a
 * failover finds both or neither.
 */
export async function markRecordingFinal(redis: RedisClient, clinic: string, consult: string, recording: string, finalisedAt: number, files: number): Promise<void> {
  await redis
    .multi()
    .hset(recordingKeys(clinic, recording).meta, { status: 'final', finalisedAt: String(finalisedAt) })
    .xadd(consultKeys(clinic, consult).record, 'NOMKSTREAM', '*', 'type', 'recording-finalised', 'at', String(finalisedAt), 'recording', recording, 'files', String(files))
    .exec();
}

const PURGE_RECORDING = loadScript(new URL('./scripts/', import.meta.url), 'purge-recording');
/** Long enough for a purge job's retries; the tombstone is deleted as soon as recording.purged is handed over. */
const PURGED_TOMBSTONE_MS = 7 * 86_400_000;

/**
 * Forgets a recording whose files are deleted, in one step (purge-recording-5.lua):
 * its metadata, transcript and index entry go, `recording-purged` with `fields`
 * goes into the session record (if still kept), and the metadata is kept
 * as a tombstone (purgedRecording) until forgetPurgedRecording. False: no
 * metadata (gone already, or never there).
 */
export async function purgeRecordingMeta(redis: RedisClient, clinic: string, consult: string, recording: string, fields: Record<string, string>): Promise<boolean> {
  const keys = recordingKeys(clinic, recording);
  const args = [recording, String(PURGED_TOMBSTONE_MS), String(Date.now()), ...Object.entries(fields).flat()];
  return (await evalScript(redis, PURGE_RECORDING, [keys.meta, keys.transcript, keys.index, consultKeys(clinic, consult).record, keys.purged], args)) === 1;
}

/** What a purged recording's metadata was, and when it was forgotten, until forgetPurgedRecording. */
export async function purgedRecording(redis: RedisClient, clinic: string, recording: string): Promise<{ meta: RecordingMeta; purgedAt: number } | null> {
  const fields = await redis.hgetall(recordingKeys(clinic, recording).purged);
  const meta = parseRecording(fields);
  return meta ? { meta, purgedAt: Number(fields.purgedAt) } : null;
}

export async function forgetPurgedRecording(redis: RedisClient, clinic: string, recording: string): Promise<void> {
  await redis.del(recordingKeys(clinic, recording).purged);
}

const REPLACE_TRANSCRIPT = loadScript(new URL('./scripts/', import.meta.url), 'replace-transcript');

/**
 * Writes a recording's whole transcript in one go (a retried job replaces
 * it), only while the recording is kept, expiring at its purgeAt; false when
 * the recording has been purged meanwhile.
 */
export async function replaceRecordingTranscript(redis: RedisClient, clinic: string, recording: string, field: string, entries: string[]): Promise<boolean> {
  const keys = recordingKeys(clinic, recording);
  return (await evalScript(redis, REPLACE_TRANSCRIPT, [keys.meta, keys.transcript], [field, ...entries])) === 1;
}

/**
 * Appends to the consultation's session record: `type`, `at`, then the given
 * fields (ids only). `existingOnly` (the jobs, which may run long after the
 * consultation): only to a record that still exists (NOMKSTREAM), so one its
 * retention has removed is not brought back without an expiry.
 */
export async function appendRecord(
  redis: RedisClient,
  clinic: string,
  consult: string,
  type: ConsultRecordType,
  fields: Record<string, string>,
  options: { existingOnly?: boolean } = {},
): Promise<string> {
  const flat = Object.entries(fields).flat();
  const key = consultKeys(clinic, consult).record;
  const entry = ['*', 'type', type, 'at', String(Date.now()), ...flat];
  return (await (options.existingOnly ? redis.xadd(key, 'NOMKSTREAM', ...entry) : redis.xadd(key, ...entry))) ?? '';
}

/** How long the consultation's clinic keeps its recordings (its meta hash's retainRecordingMs), else `fallback`. */
export async function recordingRetentionMs(redis: RedisClient, clinic: string, consult: string, fallback: number): Promise<number> {
  return retentionField(await redis.hget(consultKeys(clinic, consult).meta, RETENTION_META_FIELDS.recordingMs), fallback);
}

/** The consent entries of the session record, as they were written there. */
export async function readConsentEvents(redis: RedisClient, clinic: string, consult: string): Promise<RecordingConsentEvent[]> {
  const entries = await redis.xrange(consultKeys(clinic, consult).record, '-', '+');
  const events: RecordingConsentEvent[] = [];
  for (const [id, list] of entries) {
    const fields: Record<string, string> = {};
    for (let i = 0; i + 1 < list.length; i += 2) fields[list[i]!] = list[i + 1]!;
    if (fields.type === 'consent-granted' || fields.type === 'consent-withdrawn') {
      events.push({ id, type: fields.type, at: Number(fields.at ?? id.split('-')[0]), fields });
    }
  }
  return events;
}

/**
 * The recordings a media-server node has open (`clinic/id` members), so that
 * a node that restarts after a crash can close and encrypt what it left.
 */
export const nodeRecordingsKey = (node: string) => `media:node:${node}:recordings`;

export async function markOpenOnNode(redis: RedisClient, node: string, clinic: string, recording: string): Promise<void> {
  await redis.sadd(nodeRecordingsKey(node), `${clinic}/${recording}`);
}

export async function markClosedOnNode(redis: RedisClient, node: string, clinic: string, recording: string): Promise<void> {
  await redis.srem(nodeRecordingsKey(node), `${clinic}/${recording}`);
}

export async function openOnNode(redis: RedisClient, node: string): Promise<{ clinic: string; recording: string }[]> {
  const members = await redis.smembers(nodeRecordingsKey(node));
  return members.flatMap((member) => {
    const [clinic, recording] = member.split('/');
    return clinic && recording ? [{ clinic, recording }] : [];
  });
}
