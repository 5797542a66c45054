import type { RedisClient } from '@clinic-hub/platform/redis';
import {
  isErrorCode,
  type ChatAttachmentType,
  type ChatHistoryResult,
  type ChatJoinResult,
  type ChatMessage,
  type ChatReceipt,
  type ChatSendResult,
  type ChatThread,
  type ChatThreadKind,
  type ChatThreadSummary,
  type Role,
  type StaffPresence,
  fail,
  type Ack,
} from '@clinic-hub/protocol';
import { isRedisUnavailable, type ReplicaAck } from '@clinic-hub/platform/redis';
import { defineScripts, type ScriptRunner } from '@clinic-hub/platform/redis-scripts';
import { chatKeys, type ChatLiveEvent } from './chat-keys.js';
import { ATTACHMENT_QUOTA_WINDOW_SECONDS, quotaArgument, type QuotaLimits } from './chat-quotas.js';



/** Who is asking: from their token, and where from (for the audit stream). */
export interface ChatCaller {
  sub: string;
  role: Role;
  /** Patient tokens: the ticket they may follow. */
  ticket: string | null;
  address: string;
}

/** An attachment as stored beside its bytes. */
export interface StoredAttachment {
  id: string;
  threadId: string;
  uploader: string;
  type: ChatAttachmentType;
  size: number;
  name: string;
  at: number;
  /** The message that sent it; null while it waits to be sent. */
  messageId: string | null;
}

/**
 * How long a rewind is remembered (markRewound), as the queue's: the readers
 * that showed a lost message are told at once (their hub node closes their
 * connections) and resume within seconds.
 */
const REWOUND_KEPT_SECONDS = 60 * 60;

const SCRIPT_NAMES = [
  'thread-access',
  'create-thread',
  'update-members',
  'append-message',
  'read-messages',
  'mark-read',
  'thread-summary',
  'take-quota',
  'presence-set',
  'presence-drop',
  'presence-heartbeat',
  'presence-sweep-member',
] as const;
type ScriptName = (typeof SCRIPT_NAMES)[number];

/** The roles that see the clinic's patient threads (lib.lua, CLINICIAN). */
const CLINICIANS: ReadonlySet<string> = new Set(['admin', 'staff', 'doctor']);

type ScriptReply = { ok: true } | { ok: false; code: string; detail?: string };

/**
 * Chat in Redis: every change is one Lua script (`scripts/<name>-<keys>.lua`, thread
 * scripts include `lib.lua`) that checks the membership rule, writes,
 * and publishes on the clinic's chat channel, atomically. Replies are plain
 * data; Redis being unreachable is STORE_UNAVAILABLE.
 */
export class ChatStore {
  private readonly scripts: Record<ScriptName, ScriptRunner>;
  private readonly ack: ReplicaAck | null;

  /**
   * With `ack` (HUB_REDIS_ACK_REPLICAS), a new message, a new thread and a
   * membership change are acknowledged only once replicas hold them; the
   * scripts then run on the ack's own connection (README, "Scaling").
   */
  constructor(
    readonly redis: RedisClient,
    options: { ack?: ReplicaAck | undefined } = {},
  ) {
    this.ack = options.ack?.enabled ? options.ack : null;
    this.scripts = defineScripts(this.ack?.connection ?? redis, new URL('./scripts/', import.meta.url), 'clinicChat', SCRIPT_NAMES);
  }

  threadAccess(clinic: string, caller: ChatCaller, threadId: string): Promise<Ack<{ thread: ChatThread }>> {
    return this.runThread(clinic, caller, threadId, 'thread-access', []);
  }

  async createThread(
    clinic: string,
    caller: ChatCaller,
    input: { threadId: string; kind: ChatThreadKind; title: string; members: string[]; keepSeconds: number },
  ): Promise<Ack<{ thread: ChatThread; created: boolean }>> {
    return this.replicated(
      clinic,
      () =>
        this.runThread<{ thread: ChatThread; created: boolean }>(
          clinic,
          caller,
          input.threadId,
          'create-thread',
          [input.kind, input.title, JSON.stringify(input.members), Math.max(1, Math.round(input.keepSeconds))],
          // Each member's thread list, in the order of `members`, then the creator's.
          (keys) => [keys.patientThreads, ...[...input.members, caller.sub].map((sub) => keys.userThreads(sub))],
        ),
      (r) => !r.created,
    );
  }

  async updateMembers(clinic: string, caller: ChatCaller, threadId: string, add: string[], remove: string[]): Promise<Ack<{ thread: ChatThread }>> {
    // The same change again writes nothing: always fenced.
    return this.replicated(
      clinic,
      () =>
        this.runThread<{ thread: ChatThread }>(clinic, caller, threadId, 'update-members', [JSON.stringify(add), JSON.stringify(remove)], (keys) =>
          [...add, ...remove].map((sub) => keys.userThreads(sub)),
        ),
      () => true,
    );
  }

  async appendMessage(
    clinic: string,
    caller: ChatCaller,
    input: {
      threadId: string;
      clientMessageId: string;
      text: string;
      attachments: string[];
      dedupeSeconds: number;
      /** Messages per minute per caller, thread and clinic (0: none). */
      quota: QuotaLimits;
      /** How long a sent attachment is kept. */
      attachmentKeepSeconds: number;
      /** How long the thread is kept after its last message (its kind's retention). */
      threadKeepSeconds: number;
    },
  ): Promise<Ack<ChatSendResult>> {
    const append = () =>
      this.runThread<ChatSendResult>(clinic, caller, input.threadId, 'append-message', [
        input.clientMessageId,
        input.text,
        JSON.stringify(input.attachments),
        input.dedupeSeconds,
        quotaArgument(input.quota),
        Math.max(1, Math.round(input.attachmentKeepSeconds)),
        Math.max(1, Math.round(input.threadKeepSeconds)),
      ], (keys) => [
        ...quotaKeys(keys, 'msg', caller, input.threadId),
        keys.sentMessage(input.threadId, caller.sub, input.clientMessageId),
        keys.messages(input.threadId),
        keys.reads(input.threadId),
        keys.patientThreads,
        ...input.attachments.flatMap((id) => [keys.attachment(id), keys.attachmentBlob(id)]),
      ]);
    return this.replicated(clinic, append, (r) => r.duplicate);
  }

  /** Takes `bytes` from the caller's, the thread's and the clinic's attachment quotas, or refuses (CHAT_QUOTA_EXCEEDED) and takes nothing. */
  takeAttachmentQuota(clinic: string, caller: ChatCaller, threadId: string, limits: QuotaLimits, bytes: number): Promise<Ack<object>> {
    return this.runThread(clinic, caller, threadId, 'take-quota', [quotaArgument(limits), ATTACHMENT_QUOTA_WINDOW_SECONDS, bytes], (keys) =>
      quotaKeys(keys, 'bytes', caller, threadId),
    );
  }

  readMessages(
    clinic: string,
    caller: ChatCaller,
    input: { threadId: string; mode: 'latest' | 'after' | 'before'; cursor: number; cursorAt?: number | undefined; limit: number; withReceipts: boolean },
  ): Promise<Ack<ChatJoinResult>> {
    const args = [input.mode, input.cursor, input.limit, input.withReceipts ? '1' : '0', input.cursorAt ?? ''];
    return this.runThread(clinic, caller, input.threadId, 'read-messages', args, (keys) => [
      keys.messages(input.threadId),
      keys.reads(input.threadId),
      keys.rewound(input.threadId),
    ]);
  }

  /**
   * Says that the thread's messages from `fromSeq` on were lost in a failover
   * after they had been sent live (and their seqs are given again): a reader
   * resuming at or past it is answered with the latest page and `rewound`,
   * for an hour; the lowest seq marked stands. Every hub node is told (a
   * `rewound` event on the clinic's channel), and moves the thread's readers
   * it holds, which may have the lost messages without the node knowing
   * (read through `chat:history`, or before it held the thread).
   */
  async markRewound(clinic: string, threadId: string, fromSeq: number): Promise<void> {
    const keys = chatKeys(clinic);
    const marked = await this.redis.get(keys.rewound(threadId));
    if (marked === null || Number(marked) > fromSeq) await this.redis.set(keys.rewound(threadId), fromSeq, 'EX', REWOUND_KEPT_SECONDS);
    const event: ChatLiveEvent = { t: 'rewound', threadId, fromSeq };
    await this.redis.spublish(keys.channel, JSON.stringify(event));
  }

  /** The seq of the thread's latest message (0 before the first, or when the thread is gone). */
  async lastSeq(clinic: string, threadId: string): Promise<number> {
    return Number((await this.redis.hget(chatKeys(clinic).thread(threadId), 'seq')) ?? 0);
  }

  /**
   * Moves the caller's read position to `seq`; `at`: the `at` of that message as the caller holds it. A seq the
   * thread no longer holds (past its latest message, or another message's now) records nothing: `rewound`.
   */
  markRead(clinic: string, caller: ChatCaller, threadId: string, seq: number, at?: number): Promise<Ack<{ receipt: ChatReceipt; changed: boolean; rewound: boolean }>> {
    return this.runThread(clinic, caller, threadId, 'mark-read', [seq, at ?? ''], (keys) => [keys.reads(threadId), keys.messages(threadId)]);
  }

  /**
   * The threads the caller may read, with their read position: the candidates are read first (the most recently
   * active patient threads for a clinician, a patient's own, the caller's consult and staff threads), then each
   * thread is looked at by a script that declares its keys (README, "Moving slots").
   */
  async listThreads(clinic: string, caller: ChatCaller, patientThreads: number): Promise<Ack<{ threads: ChatThreadSummary[] }>> {
    const keys = chatKeys(clinic);
    const ids: string[] = [];
    try {
      const own = caller.role === 'patient' && caller.ticket ? [`patient.${caller.ticket}`] : [];
      const [recent, mine] = await Promise.all([
        CLINICIANS.has(caller.role) ? this.redis.zrevrange(keys.patientThreads, 0, patientThreads - 1) : Promise.resolve(own),
        this.redis.smembers(keys.userThreads(caller.sub)),
      ]);
      for (const id of [...recent, ...mine]) if (!ids.includes(id)) ids.push(id);
    } catch (error) {
      if (isRedisUnavailable(error)) return fail('STORE_UNAVAILABLE');
      throw error;
    }
    const replies = await Promise.all(
      ids.map((id) => this.runThread<{ thread: ChatThreadSummary | null }>(clinic, caller, id, 'thread-summary', [], (k) => [k.reads(id), k.userThreads(caller.sub)])),
    );
    const threads: ChatThreadSummary[] = [];
    for (const reply of replies) {
      if (!reply.ok) return reply;
      if (reply.thread) threads.push(reply.thread);
    }
    return { ok: true, threads };
  }

  /** Messages with seq > afterSeq, oldest first, without a membership check: for the fan-out's own catch-up. */
  async messagesAfter(clinic: string, threadId: string, afterSeq: number, count: number): Promise<ChatMessage[]> {
    const entries = await this.redis.xrange(chatKeys(clinic).messages(threadId), `${afterSeq + 1}-0`, '+', 'COUNT', count);
    return entries.map(([, fields]) => JSON.parse(fields[1]!) as ChatMessage);
  }

  async receipts(clinic: string, threadId: string): Promise<ChatReceipt[]> {
    return (await this.redis.hvals(chatKeys(clinic).reads(threadId))).map((raw) => JSON.parse(raw) as ChatReceipt);
  }

  members(clinic: string, threadId: string): Promise<string[]> {
    return this.redis.smembers(chatKeys(clinic).members(threadId));
  }

  async presenceSet(
    clinic: string,
    member: { sub: string; role: Role },
    socketId: string,
    nodeId: string,
    status: string,
  ): Promise<Ack<{ presence: StaffPresence }>> {
    const keys = chatKeys(clinic);
    return this.run('presence-set', [keys.presence, keys.presenceConns(member.sub), keys.presenceNodes], [
      member.sub,
      member.role,
      socketId,
      nodeId,
      status,
      keys.channel,
    ]);
  }

  async presenceDrop(clinic: string, member: string, socketId: string): Promise<void> {
    const keys = chatKeys(clinic);
    await this.run('presence-drop', [keys.presence, keys.presenceConns(member)], [member, socketId, keys.channel]);
  }

  /**
   * Heartbeat of this node and clean-up after nodes that died; returns how many members went offline. Two steps,
   * each declaring its keys (README, "Moving slots"): the heartbeat answers the members present, then each member's
   * sockets are checked with that member's key. A member who came meanwhile is checked at the next sweep.
   */
  async presenceSweep(clinic: string, nodeId: string, staleMs: number, forgetSelf: boolean): Promise<number> {
    const keys = chatKeys(clinic);
    const members = await this.scripts['presence-heartbeat']<string[]>([keys.presence, keys.presenceNodes], [nodeId, staleMs]);
    let offline = 0;
    for (const member of members) {
      offline += await this.scripts['presence-sweep-member']<number>(
        [keys.presence, keys.presenceNodes, keys.presenceConns(member)],
        [member, nodeId, staleMs, forgetSelf ? '1' : '0', keys.channel],
      );
    }
    return offline;
  }

  async presenceList(clinic: string): Promise<StaffPresence[]> {
    return (await this.redis.hvals(chatKeys(clinic).presence)).map((raw) => JSON.parse(raw) as StaffPresence);
  }

  /**
   * Stores the metadata of an upload that waits to be sent (its bytes are in the attachment storage): it
   * expires after `pendingSeconds` unless a message takes it.
   */
  async saveAttachment(clinic: string, attachment: StoredAttachment, pendingSeconds: number): Promise<void> {
    const keys = chatKeys(clinic);
    const replies = await this.redis
      .multi()
      .hset(keys.attachment(attachment.id), {
        thread: attachment.threadId,
        uploader: attachment.uploader,
        type: attachment.type,
        size: attachment.size,
        name: attachment.name,
        at: attachment.at,
      })
      .expire(keys.attachment(attachment.id), pendingSeconds)
      .exec();
    for (const [error] of replies ?? []) if (error) throw error;
  }

  async attachment(clinic: string, id: string): Promise<StoredAttachment | null> {
    const fields = await this.redis.hgetall(chatKeys(clinic).attachment(id));
    if (!fields.thread) return null;
    return {
      id,
      threadId: fields.thread,
      uploader: fields.uploader ?? '',
      type: fields.type as ChatAttachmentType,
      size: Number(fields.size),
      name: fields.name ?? '',
      at: Number(fields.at),
      messageId: fields.message ?? null,
    };
  }

  /** For each attachment id of the clinic, whether its metadata is still there (sent and within retention, or waiting to be sent). */
  async attachmentsExist(clinic: string, ids: string[]): Promise<boolean[]> {
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.exists(chatKeys(clinic).attachment(id));
    const replies = (await pipeline.exec()) ?? [];
    return replies.map(([error, count]) => {
      if (error) throw error;
      return count === 1;
    });
  }

  /** The bytes of an attachment stored in Redis by a hub of before attachment files; null for every newer one. */
  attachmentBlob(clinic: string, id: string): Promise<Buffer | null> {
    return this.redis.getBuffer(chatKeys(clinic).attachmentBlob(id));
  }

  /**
   * The reply once enough replicas hold the change, else STORE_UNAVAILABLE
   * (the change is made; the retry with the same id returns it as a
   * duplicate). A replay, made earlier perhaps through another node, is
   * fenced first.
   */
  private async replicated<T extends object>(clinic: string, change: () => Promise<Ack<T>>, isReplay: (reply: T) => boolean): Promise<Ack<T>> {
    if (!this.ack) return change();
    // Every key of a clinic's chat shares its slot: the fence names the shard (Redis Cluster) the change goes through.
    const key = chatKeys(clinic).ackFence;
    let ranOn;
    try {
      ranOn = await this.ack.shardOf(key);
    } catch (error) {
      if (isRedisUnavailable(error)) return fail('STORE_UNAVAILABLE');
      throw error;
    }
    const reply = await change();
    if (!reply.ok) return reply;
    try {
      if (await this.ack.confirm({ key, ranOn, ...(isReplay(reply) && { fenceKey: key }) })) return reply;
    } catch (error) {
      if (isRedisUnavailable(error)) return fail('STORE_UNAVAILABLE');
      throw error;
    }
    return fail('STORE_UNAVAILABLE', 'no replica confirmed the change in time (HUB_REDIS_ACK_REPLICAS)');
  }

  /** A thread script: the thread's hash and members set, then the script's own keys of the thread (`more`). */
  private runThread<T extends object>(
    clinic: string,
    caller: ChatCaller,
    threadId: string,
    script: ScriptName,
    args: (string | number)[],
    more: (keys: ReturnType<typeof chatKeys>) => string[] = () => [],
  ): Promise<Ack<T>> {
    const keys = chatKeys(clinic);
    return this.run(script, [keys.thread(threadId), keys.members(threadId), ...more(keys)], [
      keys.prefix,
      threadId,
      caller.sub,
      caller.role,
      caller.ticket ?? '',
      keys.channel,
      ...args,
    ]);
  }

  private async run<T extends object>(script: ScriptName, keys: string[], args: (string | number)[]): Promise<Ack<T>> {
    let raw: string;
    try {
      raw = await this.scripts[script](keys, args);
    } catch (error) {
      if (isRedisUnavailable(error)) return fail('STORE_UNAVAILABLE');
      throw error;
    }
    const reply = JSON.parse(raw) as ScriptReply & T;
    if (!reply.ok) return fail(isErrorCode(reply.code) ? reply.code : 'INTERNAL', reply.detail ?? (isErrorCode(reply.code) ? undefined : reply.code));
    return reply as Ack<T>;
  }
}

/** The quota counters a script takes from, in the order of its limits: the caller's, the thread's, the clinic's. */
function quotaKeys(keys: ReturnType<typeof chatKeys>, what: 'msg' | 'bytes', caller: ChatCaller, threadId: string): string[] {
  return [keys.quota(what, 'user', caller.sub), keys.quota(what, 'thread', threadId), keys.quota(what, 'clinic', '')];
}
