import type { AiEmotion, AiResultMessage, AiTranscript, ConsultLanguage, ConsultRole } from './consult.js';
import type { ConsultPayload } from './consult-payloads.js';
import type { Ack } from './errors.js';
import type { DrainingNotice, SessionEnded } from './events.js';
import { CONSULT_CLIENT_EVENTS, CONSULT_SERVER_EVENTS, NAMESPACES } from './event-names.js';
import type { QueueEvent } from './queue.js';
import type { Role } from './roles.js';

/**
 * Socket.IO namespace of video consultations on the hub: a doctor admits a
 * patient of an online department, participants get short-lived room tokens
 * for the media-server, clinicians follow the AI's transcripts and emotion
 * scores. docs/consultations.md ("Admission") describes the flow; the payload
 * schemas are in consult-payloads.ts (this file has no zod in it, so browser
 * pages can import it without bundling the schemas).
 */
export const CONSULT_NAMESPACE = NAMESPACES.consult;

/** Hub roles that may connect to `/consult`. Displays and services may not: they see nothing of consultations. */
export const CONSULT_HUB_ROLES: readonly Role[] = ['admin', 'staff', 'doctor', 'patient'];
const CLINICIANS: readonly Role[] = ['admin', 'staff', 'doctor'];

/** What a hub role becomes in the room when it joins: doctors (and admins) as `doctor`, staff as `nurse`, a patient as `patient`. */
export function consultRoleOf(role: Role): ConsultRole | null {
  if (role === 'doctor' || role === 'admin') return 'doctor';
  if (role === 'staff') return 'nurse';
  if (role === 'patient') return 'patient';
  return null;
}

/** Parts a clinician can invite someone without a hub account to: they get a link, not a login. */
export const CONSULT_INVITE_PARTS = ['interpreter', 'family'] as const satisfies readonly ConsultRole[];
export type ConsultInvitePart = (typeof CONSULT_INVITE_PARTS)[number];

/** The consultation page; its fragment carries `media` (the media-server's URL) and `token` (a room token). */
export const CONSULT_PAGE_PATH = '/consult';

/** `/consult#media=…&token=…`: what the page opens with (the fragment never reaches a server or a Referer). */
export function consultPagePath(pass: { mediaUrl: string; token: string }): string {
  return `${CONSULT_PAGE_PATH}#${new URLSearchParams({ media: pass.mediaUrl, token: pass.token }).toString()}`;
}

export const CONSULT_STATUSES = ['waiting', 'live', 'ended'] as const;
/** `waiting`: admitted, nobody in the room yet; `live`: the media-server has people in it; `ended`: over for good. */
export type ConsultStatus = (typeof CONSULT_STATUSES)[number];

/** A consultation as clinicians and its own patient see it: ids and times, never a name. */
export interface Consultation {
  id: string;
  dept: string;
  /** The ticket admitted (opaque id) and its number as screens show it (`W-004`). */
  ticket: string;
  number: string;
  /** The department's room (the doctor's virtual consulting room) the ticket was called to. */
  room: string;
  status: ConsultStatus;
  /** Media-server node hosting the room. */
  node: string;
  language: ConsultLanguage;
  createdAt: number;
  endedAt: number | null;
}

/** A line of `GET /api/clinics/:clinic/consultations`. */
export interface ConsultListing extends Consultation {
  /** People in the room, as the media-server reports it; null when it has not. */
  participants: number | null;
}

/** A media-server node as the hub sees it in `media:node:<id>` (consult.ts). */
export interface MediaNodeInfo {
  id: string;
  url: string;
  rooms: number;
  participants: number;
  startedAt: number;
  draining: boolean;
}

/** One person's way into one consultation's room. */
export interface RoomPass {
  consult: string;
  part: ConsultRole;
  /** The room token's subject: stable per person, so a rejoin replaces their old connection. */
  sub: string;
  /** The room token (aud "media"), for the media-server only; short-lived: ask `consult:join` for a fresh one. */
  token: string;
  /** ms since the epoch. */
  expiresAt: number;
  /** The media-server node's URL (signalling at `<mediaUrl>/signal`). */
  mediaUrl: string;
  /** The consultation page opened with this pass, absolute (`<hub>/consult#media=…&token=…`). */
  pageUrl: string;
}

export interface AdmitResult {
  consultation: Consultation;
  /** The admitting clinician's own pass. */
  pass: RoomPass;
  /** The queue's call of the ticket (what displays show: the number and the room). */
  event: QueueEvent;
  /** True when this requestId had been seen: the first admission is returned, nothing new was done. */
  replayed: boolean;
}

export interface EndResult {
  consultation: Consultation;
  /** The ticket's `ticket.done`, when this end finished it (null when it had already left the queue). */
  event: QueueEvent | null;
  /** True when the consultation had already ended: nothing new was done. */
  alreadyEnded: boolean;
}

/** One entry of a consultation's AI stream, with its stream id (resume after it with `after`). */
export type AiHistoryEntry = AiResultMessage & { id: string };

/**
 * Whether a consultation's AI panel can expect anything: the clinic's live
 * transcripts setting (`ai.enabled`) and how many AI workers have a live
 * heartbeat now (stopping ones not counted).
 */
export interface ConsultAiStatus {
  liveTranscripts: boolean;
  workers: number;
  /** ms since the epoch. */
  checkedAt: number;
}

export interface AiHistoryResult {
  results: AiHistoryEntry[];
  /** More entries follow the last one: ask again with `after` = its id. */
  hasMore: boolean;
}

/** To the patient's ticket page: the doctor admitted them; join with the pass (or ask `consult:join` for a fresh one). */
export interface ConsultAdmitted {
  consultation: Consultation;
  pass: RoomPass;
}

export interface ConsultEnded {
  consult: string;
  ticket: string;
  at: number;
}

type AckFn<T extends object = object> = (ack: Ack<T>) => void;

export interface ConsultClientToServer {
  [CONSULT_CLIENT_EVENTS.admit]: (payload: ConsultPayload<'consult:admit'>, ack: AckFn<AdmitResult>) => void;
  [CONSULT_CLIENT_EVENTS.join]: (payload: ConsultPayload<'consult:join'>, ack: AckFn<{ consultation: Consultation; pass: RoomPass }>) => void;
  [CONSULT_CLIENT_EVENTS.invite]: (payload: ConsultPayload<'consult:invite'>, ack: AckFn<{ consultation: Consultation; pass: RoomPass }>) => void;
  [CONSULT_CLIENT_EVENTS.end]: (payload: ConsultPayload<'consult:end'>, ack: AckFn<EndResult>) => void;
  [CONSULT_CLIENT_EVENTS.subscribe]: (payload: ConsultPayload<'consult:subscribe'>, ack: AckFn<{ consultation: Consultation }>) => void;
  [CONSULT_CLIENT_EVENTS.unsubscribe]: (payload: ConsultPayload<'consult:unsubscribe'>, ack: AckFn) => void;
  [CONSULT_CLIENT_EVENTS.aiHistory]: (payload: ConsultPayload<'consult:ai-history'>, ack: AckFn<AiHistoryResult>) => void;
  [CONSULT_CLIENT_EVENTS.aiStatus]: (payload: ConsultPayload<'consult:ai-status'>, ack: AckFn<{ ai: ConsultAiStatus }>) => void;
  [CONSULT_CLIENT_EVENTS.authRefresh]: (payload: ConsultPayload<'auth:refresh'>, ack: AckFn<{ token: string; expiresAt: number }>) => void;
}

export interface ConsultServerToClient {
  [CONSULT_SERVER_EVENTS.admitted]: (admitted: ConsultAdmitted) => void;
  [CONSULT_SERVER_EVENTS.ended]: (ended: ConsultEnded) => void;
  /** Clinicians subscribed to the consultation (`consult:subscribe`) only. Partials are replaced by later partials and the final of the same utterance. */
  [CONSULT_SERVER_EVENTS.transcript]: (transcript: AiTranscript) => void;
  [CONSULT_SERVER_EVENTS.emotion]: (emotion: AiEmotion) => void;
  [CONSULT_SERVER_EVENTS.hubError]: (error: { code: string; message: string; event?: string; detail?: string }) => void;
  [CONSULT_SERVER_EVENTS.hubDraining]: (notice: DrainingNotice) => void;
  [CONSULT_SERVER_EVENTS.sessionEnded]: (ended: SessionEnded) => void;
}

/** Who may send each event; which consultation they may act on is decided per consultation (a patient: their own ticket's). */
export const CONSULT_EVENT_ROLES: Record<keyof ConsultClientToServer, readonly Role[]> = {
  'consult:admit': CLINICIANS,
  'consult:join': CONSULT_HUB_ROLES,
  'consult:invite': CLINICIANS,
  'consult:end': CLINICIANS,
  'consult:subscribe': CLINICIANS,
  'consult:unsubscribe': CLINICIANS,
  'consult:ai-history': CLINICIANS,
  'consult:ai-status': CLINICIANS,
  'auth:refresh': CONSULT_HUB_ROLES,
};
