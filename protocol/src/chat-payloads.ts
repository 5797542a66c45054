import { z } from 'zod';
import { CHAT_MAX_ATTACHMENTS_PER_MESSAGE, CHAT_MAX_MEMBERS_PER_REQUEST, CHAT_DEFAULT_PAGE, CHAT_MAX_PAGE, MESSAGE_ID_PATTERN, PRESENCE_STATUSES, THREAD_ID_PATTERN } from './chat.js';

export const ThreadId = z.string().regex(THREAD_ID_PATTERN, 'patient.<ticketId>, consult.<id> or staff.<id>');
export const MessageId = z.string().regex(MESSAGE_ID_PATTERN, 'a message id, <seq>-0');
/** Chosen by the sender, fresh per message, reused only to resend the same message. */
export const ClientMessageId = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, '8–64 of A-Z a-z 0-9 _ -');
export const AttachmentId = z.string().regex(/^[A-Za-z0-9_-]{16,32}$/, 'an attachment id');
/** A hub user id: the `sub` of their token. */
export const MemberId = z.string().regex(/^[A-Za-z0-9_:.@-]{1,128}$/, 'a hub user id (token sub)');

/**
 * The `at` of the message a cursor names: with it the hub checks that the message the client holds is still the
 * thread's (a Redis failover may have lost it and given its seq to another message: docs/protocol.md, "The chat
 * resume rule").
 */
const MessageAt = z.number().int().nonnegative();
const Limit = z.number().int().min(1).max(CHAT_MAX_PAGE).default(CHAT_DEFAULT_PAGE);
const MemberList = z.array(MemberId).max(CHAT_MAX_MEMBERS_PER_REQUEST);
// Line breaks and tabs are text; other control characters are not.
const CONTROL_CHARACTERS = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/;

/** Payloads of client → server chat events. */
export const ChatPayloads = {
  'chat:threads': z.object({}).strict(),
  'chat:create': z.object({
    kind: z.enum(['consult', 'staff']),
    /** Optional: the consultation's or channel's id (letters, digits, _ -); one is made when absent. */
    id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).optional(),
    title: z.string().trim().min(1).max(100),
    /** The creator is always a member too. */
    members: MemberList.default([]),
  }),
  'chat:members': z.object({ threadId: ThreadId, add: MemberList.default([]), remove: MemberList.default([]) }),
  'chat:join': z.object({ threadId: ThreadId, afterId: MessageId.optional(), afterAt: MessageAt.optional(), limit: Limit }),
  'chat:leave': z.object({ threadId: ThreadId }),
  'chat:history': z
    .object({ threadId: ThreadId, before: MessageId.optional(), after: MessageId.optional(), afterAt: MessageAt.optional(), limit: Limit })
    .refine((q) => q.before === undefined || q.after === undefined, { message: 'give before or after, not both', path: ['before'] }),
  'chat:send': z.object({
    threadId: ThreadId,
    clientMessageId: ClientMessageId,
    // The length limit is a domain rule with its own code (CHAT_MESSAGE_TOO_LONG); the event guard bounds the bytes.
    text: z.string().refine((t) => !CONTROL_CHARACTERS.test(t), 'control characters other than line breaks and tabs').default(''),
    attachments: z.array(AttachmentId).max(CHAT_MAX_ATTACHMENTS_PER_MESSAGE).default([]),
  }),
  'chat:read': z.object({ threadId: ThreadId, upToId: MessageId, upToAt: MessageAt.optional() }),
  'chat:typing': z.object({ threadId: ThreadId, typing: z.boolean() }),
  'chat:set-presence': z.object({ status: z.enum(PRESENCE_STATUSES) }),
  'chat:staff-presence': z.object({}).strict(),
  'auth:refresh': z.object({}).strict(),
} as const;

export type ChatClientEvent = keyof typeof ChatPayloads;
export type ChatPayload<E extends ChatClientEvent> = z.input<(typeof ChatPayloads)[E]>;
