import { z } from 'zod';
import type { ChatThreadKind } from './chat.js';

/**
 * How long a clinic keeps what its video consultations leave behind
 * (docs/consultations.md, "Retention"). Every piece of patient data a
 * consultation produces has one of these periods:
 *
 * - `liveAudioMinutes`: the decoded audio stream the media-server writes for
 *   the AI workers (`consultKeys(..).audio`). It is deleted as soon as it is
 *   no longer needed — when the AI session has read it to the end, or when
 *   the consultation ends if no AI session follows it (a clinic without AI
 *   gets none at all) — and in any case expires this long after its last
 *   write (workers down, a session that never ran).
 * - `consultationDays`: the consultation's meta hash, its session record
 *   (joins, consents, the transcript and emotion entries), the live AI
 *   results (`…:ai`) and the AI session's state, counted from the end of the
 *   consultation.
 * - `recordingDays`: each recording's encrypted files, its metadata and the
 *   transcript of the whole recording, counted from when the recording stops;
 *   the recording's purge deletes all of them together.
 * - `chatAttachmentDays`: a chat attachment once sent in a message (its
 *   metadata in Redis and its encrypted file), counted from the message; an
 *   upload never sent goes after a day.
 * - `patientChatDays`: a patient's chat thread with the clinic (its
 *   messages, read positions and the thread itself), counted from its last
 *   message. A consultation's chat thread is kept `consultationDays` from its
 *   last message, as the consultation's other records are.
 * - `staffChatDays`: a staff thread (clinicians among themselves, who may
 *   write about patients), counted from its last message.
 *
 * Decimals are allowed (0.5 days is 12 hours).
 */
export const ClinicRetentionConfig = z.object({
  liveAudioMinutes: z.number().positive().max(24 * 60).default(15),
  consultationDays: z.number().positive().max(3650).default(30),
  recordingDays: z.number().positive().max(3650).default(30),
  chatAttachmentDays: z.number().positive().max(3650).default(30),
  patientChatDays: z.number().positive().max(3650).default(30),
  staffChatDays: z.number().positive().max(3650).default(90),
});
export type ClinicRetentionConfig = z.infer<typeof ClinicRetentionConfig>;

export const DEFAULT_RETENTION: ClinicRetentionConfig = ClinicRetentionConfig.parse({});

/** How long a chat thread of this kind is kept after its last message, in seconds. */
export function chatKeepSeconds(config: ClinicRetentionConfig, kind: ChatThreadKind): number {
  const days = kind === 'patient' ? config.patientChatDays : kind === 'consult' ? config.consultationDays : config.staffChatDays;
  return Math.round(days * 86_400);
}

/** The periods in milliseconds, as the hub writes them into each consultation's meta hash. */
export interface RetentionMs {
  audioMs: number;
  consultMs: number;
  recordingMs: number;
}

export function retentionMs(config: ClinicRetentionConfig): RetentionMs {
  return {
    audioMs: Math.round(config.liveAudioMinutes * 60_000),
    consultMs: Math.round(config.consultationDays * 86_400_000),
    recordingMs: Math.round(config.recordingDays * 86_400_000),
  };
}

/**
 * Fields of the consultation's meta hash (`consultKeys(..).meta`) written at
 * admission from the clinic's configuration, so that the media-server and the
 * AI workers, which do not read clinic files, apply the clinic's periods:
 * each a whole number of milliseconds; `ai` is "1" when an AI session follows
 * the consultation, else "0".
 */
export const RETENTION_META_FIELDS = { audioMs: 'retainAudioMs', consultMs: 'retainConsultMs', recordingMs: 'retainRecordingMs', ai: 'ai' } as const;

/** A period from the meta hash's value, or `fallback` when it is missing or not a positive whole number. */
export function retentionField(value: string | null | undefined, fallback: number): number {
  const n = Number(value);
  return value !== null && value !== undefined && value !== '' && Number.isSafeInteger(n) && n > 0 ? n : fallback;
}
