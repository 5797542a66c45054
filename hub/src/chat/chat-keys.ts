import { clinicChannel, type ChatMessage, type ChatReceipt, type ChatThread, type ChatThreadKind, type StaffPresence } from '@clinic-hub/protocol';

/**
 * Where a clinic's chat lives in Redis. Every key carries the `{clinic}` hash
 * tag, so one clinic's chat (and its queue) sits in one Redis Cluster slot
 * and a script may touch any of it.
 */
export const chatKeys = (clinic: string) => {
  const prefix = `ch:{${clinic}}:chat:`;
  const thread = (id: string) => `${prefix}t:${id}`;
  return {
    prefix,
    /** Pub/sub channel of every chat change of the clinic (not a key). */
    channel: clinicChannel(clinic, CHAT_CHANNEL_KIND),
    /** Hash: kind, title, ticket, createdAt, createdBy, seq, lastAt. */
    thread,
    /** Set of member subs (consult and staff threads). */
    members: (id: string) => `${thread(id)}:members`,
    /** Stream: entry id `<seq>-0`, field `m` = ChatMessage JSON. */
    messages: (id: string) => `${thread(id)}:messages`,
    /** Hash: member sub → ChatReceipt JSON. */
    reads: (id: string) => `${thread(id)}:reads`,
    /** String, for an hour: the lowest seq of the thread a failover lost after it was sent live (ChatStore.markRewound). */
    rewound: (id: string) => `${thread(id)}:rewound`,
    /** String: the message a sender sent with a clientMessageId (append-message answers a resend with it). */
    sentMessage: (id: string, sub: string, clientMessageId: string) => `${thread(id)}:cm:${sub}:${clientMessageId}`,
    /** Sorted set: patient thread ids by latest activity. */
    patientThreads: `${prefix}threads:patient`,
    /** Set: the consult and staff threads one user belongs to. */
    userThreads: (sub: string) => `${prefix}user:${sub}`,
    /** Hash: thread, uploader, type, size, name, at, message (once sent). */
    attachment: (id: string) => `${prefix}att:${id}`,
    /** String: the attachment's bytes, encrypted, as hubs stored them before attachment files (AttachmentStorage); read until they expire. */
    attachmentBlob: (id: string) => `${prefix}att:${id}:blob`,
    /** String: a fixed-window quota counter, `<window>:<count>` (lib.lua, takeQuota); `id` is the user's sub, the thread's id, or '' for the clinic. */
    quota: (what: 'msg' | 'bytes', scope: 'user' | 'thread' | 'clinic', id: string) => `${prefix}quota:${what}:${scope}:${id}`,
    /** Hash: member sub → StaffPresence JSON, for clinicians with at least one chat socket. */
    presence: `${prefix}presence`,
    /** Hash: socket id → hub node id, one per clinician. */
    presenceConns: (member: string) => `${prefix}presence:conns:${member}`,
    /** Hash: hub node id → last heartbeat (ms). */
    presenceNodes: `${prefix}presence:nodes`,
    /** Counter written before the replica wait of a replayed change (ReplicaAck): a replica that has it has the first one too. */
    ackFence: `${prefix}ack-fence`,
  };
};

/** The kind of the chat channels (`ch:{clinic}:chat`): SSUBSCRIBEd per clinic, the scripts SPUBLISH (sharded pub/sub). */
export const CHAT_CHANNEL_KIND = 'chat';

/** What the chat scripts publish on a clinic's channel, in commit order. */
export type ChatLiveEvent =
  | { t: 'message'; kind: ChatThreadKind; message: ChatMessage }
  | { t: 'receipt'; receipt: ChatReceipt }
  | { t: 'presence'; presence: StaffPresence }
  | { t: 'thread'; thread: ChatThread; added: string[]; removed: string[] }
  /** A hub node found that a failover lost the thread's messages from `fromSeq` on (ChatStore.markRewound). */
  | { t: 'rewound'; threadId: string; fromSeq: number };

/** Socket.IO rooms of the chat namespace (each node emits to its own sockets in them). */
export const chatRooms = {
  /** Every chat socket of the clinic: staff presence. */
  clinic: (clinic: string) => `clinic:${clinic}`,
  /** Clinician sockets: activity in any patient thread of the clinic. */
  clinicians: (clinic: string) => `clinicians:${clinic}`,
  /** Every socket of one user (token sub). */
  user: (clinic: string, sub: string) => `user:${clinic}:${sub}`,
  /** Every socket of one patient (ticket claim). */
  ticket: (clinic: string, ticketId: string) => `ticket:${clinic}:${ticketId}`,
  /** Sockets that joined the thread: its messages, receipts and typing. */
  thread: (clinic: string, threadId: string) => `thread:${clinic}:${threadId}`,
};

export function parseThreadRoom(room: string): { clinic: string; threadId: string } | null {
  const match = /^thread:([^:]+):(.+)$/.exec(room);
  return match ? { clinic: match[1]!, threadId: match[2]! } : null;
}
