import { z } from 'zod';
import type { ConsultRole } from './consult.js';

/**
 * Consultation recordings as the hub's API shows them
 * (`GET /api/clinics/:clinic/recordings`, `clinic recordings`): ids, roles,
 * times, sizes and checksums; never a name.
 */

/** recording: files are being written; stopped: closed and encrypted, finalise pending; final: checksums verified; corrupt: a file failed verification. */
export const RECORDING_STATUSES = ['recording', 'stopped', 'final', 'corrupt'] as const;
export type RecordingStatusName = (typeof RECORDING_STATUSES)[number];

/** Why a recording stopped: the room's reasons, or `interrupted` when the media-server stopped without closing it. */
export type RecordingStopReason = 'requested' | 'consent-withdrawn' | 'participant-without-consent' | 'room-closed' | 'draining' | 'interrupted' | 'media-worker-died';

/**
 * One encrypted file: one participant's camera + microphone (`av`) or screen
 * share (`screen`), one segment (a new segment starts when the tracks change
 * or the segment reaches its maximum length).
 */
export interface RecordingFile {
  name: string;
  participant: string;
  part: ConsultRole;
  kind: 'av' | 'screen';
  segment: number;
  /** `video/VP8`, `audio/opus`. */
  codecs: string[];
  startedAt: number;
  stoppedAt: number;
  /** Size and SHA-256 (hex) of the encrypted file as stored. */
  bytes: number;
  sha256: string;
  /** Size and SHA-256 (hex) of the WebM inside. */
  plainBytes: number;
  plainSha256: string;
  /** Which RECORDING_KEY encrypted it (16 hex digits derived from the key; not the key). */
  keyId: string;
}

/** An entry copied from the session record (consent-granted / consent-withdrawn), as it was there. */
export interface RecordingConsentEvent {
  /** Its id in the session record stream. */
  id: string;
  type: string;
  at: number;
  /** Every field of the entry (participant id, never a name). */
  fields: Record<string, string>;
}

export interface RecordingMeta {
  id: string;
  clinic: string;
  consult: string;
  status: RecordingStatusName;
  /** The media-server node that recorded it. */
  node: string;
  startedAt: number;
  stoppedAt: number | null;
  stopReason: RecordingStopReason | null;
  participants: { id: string; part: ConsultRole }[];
  files: RecordingFile[];
  consent: RecordingConsentEvent[];
  finalisedAt: number | null;
  /** When the retention policy deletes it (ms since the epoch), once stopped. */
  purgeAt: number | null;
}

export interface RecordingList {
  clinic: string;
  recordings: RecordingMeta[];
}

/** `POST /api/clinics/:id/recordings/:recording/purge`: why the recording is purged before its time (audited; sent in recording.purged). */
export const RecordingPurgeRequest = z.object({ reason: z.string().trim().min(3).max(500) }).strict();
export type RecordingPurgeRequest = z.infer<typeof RecordingPurgeRequest>;

/** `POST …/recordings/:recording/purge` answers: the purge is queued to the recordings worker (recording.purged follows when it is done). */
export interface RecordingPurgeResult {
  recording: string;
  queued: true;
}
