import { z } from 'zod';
import { clinicChannel } from './clinic-channels.js';

/**
 * Video consultations: the contract between the hub (admission, room
 * tokens), the media-server (SFU, recording, audio tap), the AI workers
 * (transcripts, emotion scores) and the consultation page.
 *
 * Redis keys of one consultation share the clinic's hash tag `{clinic}` with
 * the queue's keys, so that a cluster keeps a clinic's keys in one slot.
 */

/** What a person is in the room. Their hub role decides what they may become. */
export const CONSULT_ROLES = ['doctor', 'nurse', 'patient', 'interpreter', 'family'] as const;
export const ConsultRole = z.enum(CONSULT_ROLES);
export type ConsultRole = z.infer<typeof ConsultRole>;

/** Only these see transcripts and emotion scores, and only they may start a recording or export one. */
export const CLINICIAN_CONSULT_ROLES: readonly ConsultRole[] = ['doctor', 'nurse'];
export function isClinicianConsultRole(role: ConsultRole): boolean {
  return CLINICIAN_CONSULT_ROLES.includes(role);
}

/** Rooms hold 2–6 people. */
export const CONSULT_MAX_PARTICIPANTS = 6;

export const ConsultId = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, '8–64 letters, digits, _ or -');

/**
 * A room token: issued by the hub to one person for one consultation, short
 * lived (minutes: enough to join and to rejoin after a drop), verified by the
 * media-server with its own key (MEDIA_TOKEN_SECRET), never accepted as a hub
 * token (it carries `aud: "media"`).
 */
export const RoomTokenClaims = z.object({
  aud: z.literal('media'),
  /** Stable per person: a rejoin with the same sub replaces the old connection. */
  sub: z.string().min(1).max(128),
  clinic: z.string().min(1).max(64),
  consult: ConsultId,
  part: ConsultRole,
  /** Shown to the other participants (they see each other on camera anyway); never logged, never on displays. */
  name: z.string().min(1).max(64),
  /** Days a recording of this consultation is kept after it stops: the page tells each participant before they consent. */
  recordingRetentionDays: z.number().positive().max(36_500).optional(),
});
export type RoomTokenClaims = z.infer<typeof RoomTokenClaims>;

export const CONSULT_LANGUAGES = ['ja', 'en'] as const;
export const ConsultLanguage = z.enum(CONSULT_LANGUAGES);
export type ConsultLanguage = z.infer<typeof ConsultLanguage>;

export const consultKeys = (clinic: string, consult: string) => {
  const base = `ch:{${clinic}}:consult:${consult}`;
  return {
    /**
     * Hash: status (waiting|live|ended), node (media node id), dept, ticket, language, createdAt, endedAt,
     * and the clinic's retention (RETENTION_META_FIELDS: retainAudioMs, retainConsultMs, retainRecordingMs, ai).
     */
    meta: base,
    /** Stream: the session record (ConsultRecordEntry), append-only. */
    record: `${base}:record`,
    /** Stream: decoded audio for the AI workers (AudioTapEntry), capped; deleted once drained, and expiring retainAudioMs after its last write. */
    audio: `${base}:audio`,
    /** Stream: AI results (final transcripts and emotion scores), clinician-only reads; one field per entry, AI_RESULT_FIELD. */
    ai: `${base}:ai`,
    /** Hash: the AI session's progress (per-participant stream positions, stress indices, stop/done flags); ai-workers only. */
    aiState: `${base}:ai-state`,
  };
};

/** The field of a `consultKeys(..).ai` stream entry: the AiResultMessage as JSON. */
export const AI_RESULT_FIELD = 'r';

/**
 * Sharded pub/sub channel (SPUBLISH, followed per clinic with SSUBSCRIBE) on
 * which the hub tells media-server nodes (and anyone else following a
 * clinic's consultations) what happened to a consultation:
 * ConsultControlMessage JSON. The meta hash's `status` says the same and is
 * what counts after a restart or a missed message. It lies in the clinic's
 * hash slot: on a Redis Cluster only the shard that owns the clinic carries it.
 */
export const CONSULT_CONTROL_CHANNEL_KIND = 'consult-control';
export const consultControlChannel = (clinic: string) => clinicChannel(clinic, CONSULT_CONTROL_CHANNEL_KIND);
/** `end`: status is now `ended`; close the room, stop recording and the audio tap. */
export interface ConsultControlMessage {
  consult: string;
  action: 'end';
  /** The consultation's ticket (opaque id, as in queue events). */
  ticket: string;
  at: number;
  /** W3C trace context of the action that ended it: the media-server closes the room (and stops its recording) in that trace. */
  traceparent?: string;
}

/** Sharded pub/sub channel (SPUBLISH / SSUBSCRIBE, the clinic's hash slot) on which AI results of a clinic's consultations are published for the hub to relay. */
export const CONSULT_AI_CHANNEL_KIND = 'consult-ai';
export const consultAiChannel = (clinic: string) => clinicChannel(clinic, CONSULT_AI_CHANNEL_KIND);

/**
 * Media-server nodes announce themselves: `media:node:<id>` is a hash
 * { url, rooms, participants, startedAt, draining } refreshed every
 * MEDIA_NODE_HEARTBEAT_MS with a PEXPIRE of MEDIA_NODE_TTL_MS; `media:nodes` is the set of ids.
 * The two lie in different hash slots (on a Redis Cluster maybe on different shards): a node writes
 * its hash, then its id, never in one transaction, and a reader takes an id only while its hash exists.
 * The hub places a new consultation on the live, not draining node with the fewest rooms.
 */
export const MEDIA_NODES_KEY = 'media:nodes';
export const mediaNodeKey = (nodeId: string) => `media:node:${nodeId}`;
export const MEDIA_NODE_HEARTBEAT_MS = 5_000;
export const MEDIA_NODE_TTL_MS = 15_000;

/** Entries of the session record stream. `at` is ms since the epoch; participant ids, never names. */
export const CONSULT_RECORD_TYPES = [
  'created',
  'admitted',
  'joined',
  'left',
  'consent-granted',
  'consent-withdrawn',
  'recording-started',
  'recording-stopped',
  'recording-finalised',
  'recording-purged',
  'transcript',
  'emotion',
  'ended',
] as const;
export type ConsultRecordType = (typeof CONSULT_RECORD_TYPES)[number];

/**
 * The audio tap: each participant's microphone, decoded to 16 kHz mono
 * signed 16-bit little-endian PCM, appended to `consultKeys(..).audio` as
 * stream entries with these fields (all strings except `pcm`, which is binary):
 *   p   participant id (the room token's sub)
 *   r   ConsultRole
 *   t   wall-clock ms of the first sample
 *   pcm AUDIO_TAP_CHUNK_MS of audio (or less at the end), s16le
 *   end "1" on the participant's last entry (left, muted for good, or room closed); no pcm
 * Gaps (packet loss, mute) are not filled: consumers use `t`.
 */
export const AUDIO_TAP_SAMPLE_RATE = 16_000;
export const AUDIO_TAP_CHUNK_MS = 100;
/** About ten minutes of audio for four speakers: enough for a worker that restarts to catch up. */
export const AUDIO_TAP_MAXLEN = 24_000;

/**
 * AI workers announce themselves like media nodes: `ai:worker:<id>` is a hash
 * { host, pid, startedAt, concurrency, sessions, recordings, stt, emotion,
 * beatAt, stopping } refreshed every AI_WORKER_HEARTBEAT_MS with a PEXPIRE of
 * AI_WORKER_TTL_MS; `ai:workers` is the set of ids (`clinic workers` reads both; written and
 * read as the media nodes' are: hash first, then id, an id counted only while its hash exists).
 */
export const AI_WORKERS_KEY = 'ai:workers';
export const aiWorkerKey = (workerId: string) => `ai:worker:${workerId}`;
export const AI_WORKER_HEARTBEAT_MS = 5_000;
export const AI_WORKER_TTL_MS = 15_000;

/**
 * A W3C trace context `traceparent` value (docs/protocol.md): version,
 * trace id, parent span id and flags, lower-case hex; later versions may
 * append fields.
 */
export const TRACEPARENT_PATTERN = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/**
 * What every job a service hands to a worker carries besides its own data
 * (the jobs below, and the hub's notification jobs): the `traceparent` of
 * the action that caused it, so that the worker's log lines continue that
 * trace. Absent on a job added by hand; one that is malformed is dropped
 * rather than failing the job (its worker starts a trace of its own).
 */
export const TracedJob = z.object({
  traceparent: z.string().max(256).regex(TRACEPARENT_PATTERN).optional().catch(undefined),
});
export type TracedJob = z.infer<typeof TracedJob>;

export const AiSessionJob = TracedJob.extend({
  clinic: z.string().min(1).max(64),
  consult: ConsultId,
  language: ConsultLanguage,
});
export type AiSessionJob = z.infer<typeof AiSessionJob>;

/** A consultation's AI session job id: the consultation's, so that it is added once (BullMQ ids may not contain ':'; clinic and consultation ids cannot contain '.'). */
export const aiSessionJobId = (job: Pick<AiSessionJob, 'clinic' | 'consult'>) => `${job.clinic}.${job.consult}`;

/** A `finalise` or `purge` job of JOB_QUEUES.recordings (media-server/src/recording/recording-jobs.ts). */
export const RecordingJob = TracedJob.extend({
  clinic: z.string().min(1).max(64),
  consult: ConsultId,
  recording: z.string().min(1).max(64),
  /** On a `purge` job made before its time by an admin (`POST …/recordings/:id/purge`): who, when and why. */
  purgeRequest: z.object({ by: z.string().max(200), at: z.number(), reason: z.string().max(500) }).optional(),
});
export type RecordingJob = z.infer<typeof RecordingJob>;
/** The one purge job of a recording: delayed until its retention ends, or brought forward by a purge request. */
export const recordingPurgeJobId = (job: Pick<RecordingJob, 'clinic' | 'recording'>) => `purge.${job.clinic}.${job.recording}`;

export const AiRecordingJob = RecordingJob.extend({
  language: ConsultLanguage,
});
export type AiRecordingJob = z.infer<typeof AiRecordingJob>;

const AiResultBase = z.object({
  consult: ConsultId,
  participant: z.string().min(1).max(128),
  role: ConsultRole,
  utterance: z.string().min(1).max(64),
  /** Wall-clock ms of the utterance's start and end (end so far, for partials). */
  startMs: z.number(),
  endMs: z.number(),
  engine: z.string().min(1).max(64),
});

export const AiTranscript = AiResultBase.extend({
  kind: z.enum(['partial', 'final']),
  text: z.string().max(4000),
  language: ConsultLanguage,
});
export type AiTranscript = z.infer<typeof AiTranscript>;

export const AiEmotion = AiResultBase.extend({
  /** Per-label probabilities, summing to 1, highest first. */
  labels: z.array(z.object({ label: z.string().min(1).max(32), p: z.number().min(0).max(1) })).min(1),
  /** 0..1, from the labels: how activated the speaker sounds. */
  arousal: z.number().min(0).max(1),
  /** 0..1, a smoothed index over this speaker's recent utterances. */
  stress: z.number().min(0).max(1),
});
export type AiEmotion = z.infer<typeof AiEmotion>;

/**
 * What the AI workers SPUBLISH on consultAiChannel(clinic) (JSON). Finals and
 * emotions are also XADDed to consultKeys(..).ai and the record; partials are
 * only published (they may be dropped under back-pressure, finals never).
 */
export type AiResultMessage = { type: 'transcript'; payload: AiTranscript } | { type: 'emotion'; payload: AiEmotion };
