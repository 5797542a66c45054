import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
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
import { isRedisUnavailable } from '@clinic-hub/platform/redis';
import { chatKeys } from './chat-keys.js';



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

const THREAD_SCRIPTS = ['thread-access', 'create-thread', 'update-members', 'append-message', 'read-messages', 'mark-read', 'list-threads'] as const;
const PRESENCE_SCRIPTS = { 'presence-set': 3, 'presence-drop': 2, 'presence-sweep': 2 } as const;
type ScriptName = (typeof THREAD_SCRIPTS)[number] | keyof typeof PRESENCE_SCRIPTS;

function loadScript(name: string): string {
  return readFileSync(new URL(`./scripts/${name}.lua`, import.meta.url), 'utf8');
}

type ScriptReply = { ok: true } | { ok: false; code: string; detail?: string };

/**
 * Chat in Redis: every change is one Lua script (`scripts/*.lua`, thread
 * scripts with `lib.lua` in front) that checks the membership rule, writes,
 * and publishes on the clinic's chat channel, atomically. Replies are plain
 * data; Redis being unreachable is STORE_UNAVAILABLE.
 */
export class ChatStore {
  private readonly commands = new Map<ScriptName, string>();

  constructor(readonly redis: Redis) {
    const lib = loadScript('lib');
    for (const name of THREAD_SCRIPTS) this.define(name, 2, `${lib}\n${loadScript(name)}`);
    for (const [name, keys] of Object.entries(PRESENCE_SCRIPTS)) this.define(name as ScriptName, keys, loadScript(name));
  }

  threadAccess(clinic: string, caller: ChatCaller, threadId: string): Promise<Ack<{ thread: ChatThread }>> {
    return this.runThread(clinic, caller, threadId, 'thread-access', []);
  }

  createThread(
    clinic: string,
    caller: ChatCaller,
    input: { threadId: string; kind: ChatThreadKind; title: string; members: string[] },
  ): Promise<Ack<{ thread: ChatThread; created: boolean }>> {
    return this.runThread(clinic, caller, input.threadId, 'create-thread', [input.kind, input.title, JSON.stringify(input.members)]);
  }

  updateMembers(clinic: string, caller: ChatCaller, threadId: string, add: string[], remove: string[]): Promise<Ack<{ thread: ChatThread }>> {
    return this.runThread(clinic, caller, threadId, 'update-members', [JSON.stringify(add), JSON.stringify(remove)]);
  }

  appendMessage(
    clinic: string,
    caller: ChatCaller,
    input: { threadId: string; clientMessageId: string; text: string; attachments: string[]; dedupeSeconds: number },
  ): Promise<Ack<ChatSendResult>> {
    return this.runThread(clinic, caller, input.threadId, 'append-message', [
      input.clientMessageId,
      input.text,
      JSON.stringify(input.attachments),
      input.dedupeSeconds,
    ]);
  }

  readMessages(
    clinic: string,
    caller: ChatCaller,
    input: { threadId: string; mode: 'latest' | 'after' | 'before'; cursor: number; limit: number; withReceipts: boolean },
  ): Promise<Ack<ChatJoinResult>> {
    return this.runThread(clinic, caller, input.threadId, 'read-messages', [input.mode, input.cursor, input.limit, input.withReceipts ? '1' : '0']);
  }

  markRead(clinic: string, caller: ChatCaller, threadId: string, seq: number): Promise<Ack<{ receipt: ChatReceipt; changed: boolean }>> {
    return this.runThread(clinic, caller, threadId, 'mark-read', [seq]);
  }

  async listThreads(clinic: string, caller: ChatCaller, patientThreads: number): Promise<Ack<{ threads: ChatThreadSummary[] }>> {
    const keys = chatKeys(clinic);
    return this.run('list-threads', [keys.patientThreads, keys.userThreads(caller.sub)], [
      keys.prefix,
      '',
      caller.sub,
      caller.role,
      caller.ticket ?? '',
      keys.channel,
      patientThreads,
    ]);
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

  /** Heartbeat of this node and clean-up after nodes that died; returns how many members went offline. */
  async presenceSweep(clinic: string, nodeId: string, staleMs: number, forgetSelf: boolean): Promise<number> {
    const keys = chatKeys(clinic);
    const command = this.commands.get('presence-sweep')!;
    return (this.redis as unknown as Record<string, (...a: (string | number)[]) => Promise<number>>)[command]!(
      keys.presence,
      keys.presenceNodes,
      keys.prefix,
      nodeId,
      staleMs,
      forgetSelf ? '1' : '0',
      keys.channel,
    );
  }

  async presenceList(clinic: string): Promise<StaffPresence[]> {
    return (await this.redis.hvals(chatKeys(clinic).presence)).map((raw) => JSON.parse(raw) as StaffPresence);
  }

  /** Stores an upload that waits to be sent: it expires after `pendingSeconds` unless a message takes it. */
  async saveAttachment(clinic: string, attachment: StoredAttachment, sealed: Buffer, pendingSeconds: number): Promise<void> {
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
      .set(keys.attachmentBlob(attachment.id), sealed, 'EX', pendingSeconds)
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

  attachmentBlob(clinic: string, id: string): Promise<Buffer | null> {
    return this.redis.getBuffer(chatKeys(clinic).attachmentBlob(id));
  }

  private define(name: ScriptName, numberOfKeys: number, lua: string): void {
    const command = `clinicChat_${name.replaceAll('-', '_')}`;
    this.redis.defineCommand(command, { numberOfKeys, lua });
    this.commands.set(name, command);
  }

  private runThread<T extends object>(clinic: string, caller: ChatCaller, threadId: string, script: ScriptName, args: (string | number)[]): Promise<Ack<T>> {
    const keys = chatKeys(clinic);
    return this.run(script, [keys.thread(threadId), keys.members(threadId)], [
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
    const command = this.commands.get(script)!;
    let raw: string;
    try {
      raw = await (this.redis as unknown as Record<string, (...a: (string | number)[]) => Promise<string>>)[command]!(...keys, ...args);
    } catch (error) {
      if (isRedisUnavailable(error)) return fail('STORE_UNAVAILABLE');
      throw error;
    }
    const reply = JSON.parse(raw) as ScriptReply & T;
    if (!reply.ok) return fail(isErrorCode(reply.code) ? reply.code : 'INTERNAL', reply.detail ?? (isErrorCode(reply.code) ? undefined : reply.code));
    return reply as Ack<T>;
  }
}
