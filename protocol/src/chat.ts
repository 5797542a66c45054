import type { Ack } from './errors.js';
import type { ChatPayload } from './chat-payloads.js';
import type { DrainingNotice, SessionEnded } from './events.js';
import type { Role } from './roles.js';

/**
 * Socket.IO namespace of chat: a patient with the clinic's staff, the chat
 * beside a consultation, staff-only channels. docs/protocol.md ("Chat")
 * describes the events, the membership rules and the resume rule. The
 * payload schemas are in chat-payloads.ts: this file has no zod in it, so
 * browser pages can import it without bundling the schemas.
 */
export const CHAT_NAMESPACE = '/chat';

/** Roles that may connect to the chat namespace. Displays and services may not. */
export const CHAT_ROLES: readonly Role[] = ['admin', 'staff', 'doctor', 'patient'];

export const CHAT_THREAD_KINDS = ['patient', 'consult', 'staff'] as const;
export type ChatThreadKind = (typeof CHAT_THREAD_KINDS)[number];

/** Longest message text, in UTF-16 code units (what JavaScript's `length` counts). */
export const CHAT_MAX_TEXT_LENGTH = 2000;
export const CHAT_MAX_ATTACHMENTS_PER_MESSAGE = 5;
/** Members named in one `chat:create` or `chat:members`; a thread may grow past it in several steps. */
export const CHAT_MAX_MEMBERS_PER_REQUEST = 1000;
export const CHAT_DEFAULT_PAGE = 50;
export const CHAT_MAX_PAGE = 200;

/** Attachment types the hub accepts, recognised by their first bytes, not by what the client says. */
export const CHAT_ATTACHMENT_TYPES = ['image/png', 'image/jpeg', 'image/webp', 'application/pdf'] as const;
export type ChatAttachmentType = (typeof CHAT_ATTACHMENT_TYPES)[number];
/** The hub's default upload limit (HUB_ATTACHMENT_MAX_BYTES). */
export const CHAT_DEFAULT_ATTACHMENT_MAX_BYTES = 5 * 1024 * 1024;
/** `POST {path}?thread=ID` uploads; `GET {path}/ID` downloads. Bearer token in `Authorization`. */
export const CHAT_ATTACHMENTS_PATH = '/api/chat/attachments';

/** A typing indicator not renewed within this time is over: clients renew it every few seconds while typing. */
export const CHAT_TYPING_TTL_MS = 6000;
/** `chat:typing { typing: true }` more often than this per thread gets RATE_LIMITED. */
export const CHAT_TYPING_MIN_INTERVAL_MS = 1000;

export const PRESENCE_STATUSES = ['online', 'busy', 'away'] as const;
export type PresenceStatus = (typeof PRESENCE_STATUSES)[number];

/** `patient.<ticketId>`, `consult.<id>`, `staff.<id>`: the kind is part of the id. */
export const THREAD_ID_PATTERN = /^(patient|consult|staff)\.([A-Za-z0-9_-]{1,64})$/;
/**
 * A message id is its Redis Stream id, `<seq>-0`; seq counts the thread's
 * messages from 1 without gaps. `0-0` names the position before the first
 * message (a client that joined an empty thread resumes after it).
 */
export const MESSAGE_ID_PATTERN = /^(0|[1-9]\d{0,14})-0$/;

export function threadKindOf(threadId: string): ChatThreadKind | null {
  return (THREAD_ID_PATTERN.exec(threadId)?.[1] as ChatThreadKind | undefined) ?? null;
}

/** The thread of one patient (ticket) with the clinic's staff. */
export function patientThreadId(ticketId: string): string {
  return `patient.${ticketId}`;
}

export function messageSeqOf(messageId: string): number {
  return Number(messageId.slice(0, messageId.indexOf('-')));
}

export function messageIdOf(seq: number): string {
  return `${seq}-0`;
}

export interface ChatAttachment {
  id: string;
  type: ChatAttachmentType;
  size: number;
  /** The file name given at upload (cleaned); for people, never a path. */
  name: string;
}

export interface ChatMessage {
  /** Stream id `<seq>-0`: what the sender's ack returns and what a resume names. */
  id: string;
  seq: number;
  threadId: string;
  /** Token sub of the sender. */
  sender: string;
  senderRole: Role;
  text: string;
  attachments: ChatAttachment[];
  clientMessageId: string;
  /** Server time (Redis clock), ms since the epoch. */
  at: number;
}

export interface ChatThread {
  id: string;
  kind: ChatThreadKind;
  /** Patient threads: the ticket number (`A-012`), never a name. */
  title: string;
  /** Patient threads: the ticket id. */
  ticket: string | null;
  createdAt: number;
  createdBy: string;
  /** Seq of the latest message (0: none yet). */
  lastSeq: number;
  lastAt: number | null;
  /** Consult and staff threads; null for patient threads, whose readers follow from roles. */
  memberCount: number | null;
}

export interface ChatThreadSummary extends ChatThread {
  /** The caller's own read position (0: nothing read). */
  readSeq: number;
}

export interface ChatReceipt {
  threadId: string;
  member: string;
  role: Role;
  /** The member has read every message up to and including this one. */
  readSeq: number;
  readId: string;
  at: number;
}

export interface ChatTyping {
  threadId: string;
  member: string;
  role: Role;
  typing: boolean;
  at: number;
}

/** A clinician's availability, as every chat client of the clinic (patients too) sees it. */
export interface StaffPresence {
  member: string;
  role: Role;
  /** `offline` once the last of the member's chat sockets, on any hub node, has gone. */
  status: PresenceStatus | 'offline';
  since: number;
}

/** A message in a thread the receiver may read but has not joined: enough to mark it unread. */
export interface ChatActivity {
  threadId: string;
  kind: ChatThreadKind;
  seq: number;
  sender: string;
  at: number;
}

export interface ChatJoinResult {
  thread: ChatThread;
  /**
   * With `afterId`: the messages after it, oldest first (at most `limit`; `hasNewer` says more follow).
   * Without: the latest `limit` messages, oldest first.
   */
  messages: ChatMessage[];
  hasOlder: boolean;
  hasNewer: boolean;
  /** Every member's read position. */
  receipts: ChatReceipt[];
  /**
   * True when `afterId` names a message the thread no longer holds: at or past one a Redis failover lost after it
   * had been sent live (its seq was given to another message), past the thread's latest message, or with
   * `afterAt` not the `at` of the thread's message with that id. The messages are then the latest page, as
   * without `afterId`, and the client starts over from them (docs/protocol.md, "The chat resume rule").
   */
  rewound: boolean;
}

export interface ChatHistoryResult {
  messages: ChatMessage[];
  hasOlder: boolean;
  hasNewer: boolean;
  /** As in ChatJoinResult, for `after`: the messages are the latest page, and the client starts over from them. */
  rewound: boolean;
}

export interface ChatReadResult {
  /** The caller's read position after the request (unchanged when `rewound`). */
  receipt: ChatReceipt;
  /**
   * True when `upToId` names a message the thread no longer holds (past its latest message, or with `upToAt` not
   * that message's `at`): a failover lost what the client read. Nothing is recorded; the client starts over (resume
   * rule 5) and marks read again from what it then shows.
   */
  rewound: boolean;
}

export interface ChatSendResult {
  message: ChatMessage;
  /** True when this clientMessageId had been stored already: the message is the stored one, not a second. */
  duplicate: boolean;
}

type AckFn<T extends object = object> = (ack: Ack<T>) => void;

export interface ChatClientToServer {
  'chat:threads': (payload: ChatPayload<'chat:threads'>, ack: AckFn<{ threads: ChatThreadSummary[] }>) => void;
  'chat:create': (payload: ChatPayload<'chat:create'>, ack: AckFn<{ thread: ChatThread; created: boolean }>) => void;
  'chat:members': (payload: ChatPayload<'chat:members'>, ack: AckFn<{ thread: ChatThread }>) => void;
  'chat:join': (payload: ChatPayload<'chat:join'>, ack: AckFn<ChatJoinResult>) => void;
  'chat:leave': (payload: ChatPayload<'chat:leave'>, ack: AckFn) => void;
  'chat:history': (payload: ChatPayload<'chat:history'>, ack: AckFn<ChatHistoryResult>) => void;
  'chat:send': (payload: ChatPayload<'chat:send'>, ack: AckFn<ChatSendResult>) => void;
  'chat:read': (payload: ChatPayload<'chat:read'>, ack: AckFn<ChatReadResult>) => void;
  'chat:typing': (payload: ChatPayload<'chat:typing'>, ack: AckFn) => void;
  'chat:set-presence': (payload: ChatPayload<'chat:set-presence'>, ack: AckFn<{ presence: StaffPresence }>) => void;
  'chat:staff-presence': (payload: ChatPayload<'chat:staff-presence'>, ack: AckFn<{ staff: StaffPresence[] }>) => void;
  'auth:refresh': (payload: ChatPayload<'auth:refresh'>, ack: AckFn<{ token: string; expiresAt: number }>) => void;
}

export interface ChatServerToClient {
  /** A new message in a joined thread, in seq order per thread (see the resume rule). */
  'chat:message': (message: ChatMessage) => void;
  'chat:receipt': (receipt: ChatReceipt) => void;
  /** Ephemeral: never stored, not replayed. */
  'chat:typing': (typing: ChatTyping) => void;
  'chat:presence': (presence: StaffPresence) => void;
  /** A thread the receiver may now read was created, or its members changed. */
  'chat:thread': (thread: ChatThread) => void;
  /** The receiver was removed from this thread (and left its room). */
  'chat:thread-removed': (removed: { threadId: string }) => void;
  'chat:activity': (activity: ChatActivity) => void;
  'hub:error': (error: { code: string; message: string; event?: string; detail?: string }) => void;
  /** This hub node is shutting down: see DrainingNotice. */
  'hub:draining': (notice: DrainingNotice) => void;
  /** The token's session is over; the socket is disconnected next: see SessionEnded. */
  'hub:session-ended': (ended: SessionEnded) => void;
}

const CLINICIANS: readonly Role[] = ['admin', 'staff', 'doctor'];

/** Who may send each event. Which threads they may read and write is decided per thread (docs/protocol.md). */
export const CHAT_EVENT_ROLES: Record<keyof ChatClientToServer, readonly Role[]> = {
  'chat:threads': CHAT_ROLES,
  'chat:create': CLINICIANS,
  'chat:members': CLINICIANS,
  'chat:join': CHAT_ROLES,
  'chat:leave': CHAT_ROLES,
  'chat:history': CHAT_ROLES,
  'chat:send': CHAT_ROLES,
  'chat:read': CHAT_ROLES,
  'chat:typing': CHAT_ROLES,
  'chat:set-presence': CLINICIANS,
  'chat:staff-presence': CHAT_ROLES,
  'auth:refresh': CHAT_ROLES,
};

/**
 * The membership rule, as clients can know it from a thread and their own
 * token (the hub applies the same rule in its Redis scripts, with the member
 * lists it holds): patient threads are read and written by that ticket's
 * patient and by every clinician of the clinic; consult threads by their
 * members; staff threads by their members who are clinicians.
 */
export function mayUseThread(
  caller: { sub: string; role: Role; ticket?: string | null },
  thread: { id: string; kind: ChatThreadKind },
  isMember: boolean,
): boolean {
  if (!CHAT_ROLES.includes(caller.role)) return false;
  if (thread.kind === 'patient') {
    return CLINICIANS.includes(caller.role) || (caller.role === 'patient' && !!caller.ticket && thread.id === patientThreadId(caller.ticket));
  }
  if (thread.kind === 'staff' && !CLINICIANS.includes(caller.role)) return false;
  return isMember;
}
