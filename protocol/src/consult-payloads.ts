import { z } from 'zod';
import { ConsultId, ConsultLanguage } from './consult.js';
import { CONSULT_INVITE_PARTS } from './consult-events.js';

const RequestId = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, '8–64 of A-Z a-z 0-9 _ -');
const TicketId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'a ticket id');
const DeptId = z.string().min(1).max(32);
const RoomId = z.string().min(1).max(32);
/** A stream id of the consultation's AI stream (`<ms>-<n>`). */
const StreamId = z.string().regex(/^\d{1,15}-\d{1,10}$/, 'a stream id, <ms>-<n>');
// What the others in the room see beside the camera picture; no control characters.
const DisplayName = z
  .string()
  .trim()
  .min(1)
  .max(64)
  .refine((name) => !/[\u0000-\u001F\u007F]/.test(name), 'control characters');

/** A consultation named by its id or by its ticket: exactly one of the two. */
const Which = { consult: ConsultId.optional(), ticketId: TicketId.optional() };
const oneOf = (which: { consult?: string | undefined; ticketId?: string | undefined }) => (which.consult === undefined) !== (which.ticketId === undefined);
const ONE_OF = { message: 'give consult or ticketId, one of them', path: ['consult'] };

export const AI_HISTORY_DEFAULT_PAGE = 200;
export const AI_HISTORY_MAX_PAGE = 1000;

/** Payloads of client → server consult events. */
export const ConsultPayloads = {
  'consult:admit': z.object({
    /** An online department. */
    dept: DeptId,
    /** The admitting doctor's room in it: the call goes there, as with queue:call-next. */
    room: RoomId,
    /** A waiting ticket of the department to admit; without it, the next in line. */
    ticketId: TicketId.optional(),
    /** What the AI transcribes in; the clinic's `ai.language` by default. */
    language: ConsultLanguage.optional(),
    /** The admitting clinician's name in the room. */
    name: DisplayName.optional(),
    requestId: RequestId.optional(),
  }),
  /** A patient names nothing (their ticket's consultation) or their own; clinicians name one. */
  'consult:join': z
    .object({ ...Which, name: DisplayName.optional() })
    .refine((q) => q.consult === undefined || q.ticketId === undefined, ONE_OF),
  'consult:invite': z.object({ ...Which, part: z.enum(CONSULT_INVITE_PARTS), name: DisplayName.optional() }).refine(oneOf, ONE_OF),
  'consult:end': z.object(Which).refine(oneOf, ONE_OF),
  'consult:subscribe': z.object({ consult: ConsultId }),
  'consult:unsubscribe': z.object({ consult: ConsultId }),
  'consult:ai-status': z.object({ consult: ConsultId }),
  'consult:ai-history': z.object({
    consult: ConsultId,
    /** Entries after this stream id; from the first without it. */
    after: StreamId.optional(),
    limit: z.number().int().min(1).max(AI_HISTORY_MAX_PAGE).default(AI_HISTORY_DEFAULT_PAGE),
  }),
  'auth:refresh': z.object({}).strict(),
} as const;

export type ConsultClientEvent = keyof typeof ConsultPayloads;
export type ConsultPayload<E extends ConsultClientEvent> = z.input<(typeof ConsultPayloads)[E]>;
