import { randomBytes } from 'node:crypto';
import type { RedisClient } from '@clinic-hub/platform/redis';
import type { z } from 'zod';
import {
  CHAT_ATTACHMENT_TYPES,
  CHAT_MAX_TEXT_LENGTH,
  DEFAULT_RETENTION,
  chatKeepSeconds,
  messageSeqOf,
  threadKindOf,
  type ChatAttachment,
  type ChatHistoryResult,
  type ChatJoinResult,
  type ChatPayloads,
  type ChatReadResult,
  type ChatSendResult,
  type ChatThread,
  type ChatThreadKind,
  type ChatThreadSummary,
  fail,
  type Ack,
} from '@clinic-hub/protocol';
import { appendAudit } from '../audit/audit-log.js';
import { newOpaqueId } from '@clinic-hub/platform/ids';
import type { ReplicaAck } from '@clinic-hub/platform/redis';
import { AttachmentCipher, attachmentAdditionalData } from './attachment-cipher.js';
import { attachmentStorageKey, type AttachmentStorage } from './attachment-storage.js';
import { NO_CHAT_QUOTAS, type ChatQuotas } from './chat-quotas.js';
import { cleanFileName, sniffAttachmentType } from './attachment-type.js';
import { ChatStore, type ChatCaller, type StoredAttachment } from './chat-store.js';

type Input<E extends keyof typeof ChatPayloads> = z.output<(typeof ChatPayloads)[E]>;

/** A sent clientMessageId is remembered this long: a resend within it is the same message. */
const CLIENT_MESSAGE_ID_KEPT_SECONDS = 7 * 86400;
/** An upload not sent in a message within this time is deleted by Redis (and its file by the sweep). */
const PENDING_ATTACHMENT_SECONDS = 24 * 3600;
/** A file younger than this is never swept: its upload may not have written its metadata yet. */
const SWEEP_MIN_AGE_MS = 10 * 60_000;
/** Files a sweep looks at (every file older than ten minutes, up to this), and how many it checks per round trip. */
const SWEEP_MAX_FILES = 1_000_000;
const SWEEP_BATCH = 500;
/** Patient threads a clinician's thread list shows, most recently active first. */
const PATIENT_THREADS_LISTED = 200;

export interface ChatServiceOptions {
  /**
   * The active ticket with this id in the clinic's queue, or null: a patient
   * thread is created only for a ticket in the queue (its title is the
   * ticket's number). Given by the hub from the queue domain.
   */
  findTicket(clinic: string, ticketId: string): Promise<{ number: string } | null>;
  /** The AES-256-GCM key for attachments at rest; null turns attachments off. */
  attachmentKey: Buffer | null;
  attachmentMaxBytes: number;
  /** Where the attachments' encrypted bytes go; required with a key. */
  attachmentStorage?: AttachmentStorage;
  /** How long a sent attachment is kept, in seconds (the clinic's retention.chatAttachmentDays). */
  attachmentKeepSeconds?: (clinic: string) => number;
  /** How long a thread of this kind is kept after its last message, in seconds (chatKeepSeconds: the clinic's retention). */
  threadKeepSeconds?: (clinic: string, kind: ChatThreadKind) => number;
  /** Messages and attachment bytes per user, thread and clinic; none when absent. */
  quotas?: ChatQuotas;
  /** The wait for replicas before a message, a thread or a membership change is acknowledged (HUB_REDIS_ACK_REPLICAS). */
  ack?: ReplicaAck | undefined;
}

/**
 * The chat domain: threads, messages, read positions and attachments. Takes
 * plain data, returns plain data (`{ ok: true, … }` or `{ ok: false, error }`).
 * Who may read and write a thread is decided in the Redis scripts, atomically
 * with what they do; every read of a thread or an attachment is written to
 * the clinic's audit stream before the data is returned.
 */
export class ChatService {
  readonly store: ChatStore;
  private readonly cipher: AttachmentCipher | null;
  private readonly storage: AttachmentStorage | null;
  private readonly quotas: ChatQuotas;
  private readonly attachmentKeepSeconds: (clinic: string) => number;
  private readonly threadKeepSeconds: (clinic: string, kind: ChatThreadKind) => number;

  constructor(
    private readonly redis: RedisClient,
    private readonly options: ChatServiceOptions,
  ) {
    this.store = new ChatStore(redis, { ack: options.ack });
    this.cipher = options.attachmentKey ? new AttachmentCipher(options.attachmentKey) : null;
    this.storage = options.attachmentStorage ?? null;
    if (this.cipher && !this.storage) throw new Error('chat attachments need an attachment storage (HUB_ATTACHMENTS_DIR)');
    this.quotas = options.quotas ?? NO_CHAT_QUOTAS;
    this.attachmentKeepSeconds = options.attachmentKeepSeconds ?? (() => DEFAULT_RETENTION.chatAttachmentDays * 86_400);
    this.threadKeepSeconds = options.threadKeepSeconds ?? ((_clinic, kind) => chatKeepSeconds(DEFAULT_RETENTION, kind));
  }

  get attachmentsEnabled(): boolean {
    return this.cipher !== null;
  }

  get attachmentMaxBytes(): number {
    return this.options.attachmentMaxBytes;
  }

  listThreads(clinic: string, caller: ChatCaller): Promise<Ack<{ threads: ChatThreadSummary[] }>> {
    return this.store.listThreads(clinic, caller, PATIENT_THREADS_LISTED);
  }

  /**
   * A consult or staff thread with its members (the creator is always one).
   * Without an id one is made. Creating the same thread again is harmless
   * (`created: false`): a retry after a lost ack.
   */
  createThread(clinic: string, caller: ChatCaller, input: Input<'chat:create'>): Promise<Ack<{ thread: ChatThread; created: boolean }>> {
    const id = input.id ?? newOpaqueId(9);
    return this.store.createThread(clinic, caller, {
      threadId: `${input.kind}.${id}`,
      kind: input.kind,
      title: input.title,
      members: [...new Set(input.members)],
      keepSeconds: this.threadKeepSeconds(clinic, input.kind),
    });
  }

  updateMembers(clinic: string, caller: ChatCaller, input: Input<'chat:members'>): Promise<Ack<{ thread: ChatThread }>> {
    return this.store.updateMembers(clinic, caller, input.threadId, [...new Set(input.add)], [...new Set(input.remove)]);
  }

  /**
   * The thread if the caller may use it. A patient thread that does not exist
   * yet is created here, on first use, while its ticket is in the queue.
   */
  async open(clinic: string, caller: ChatCaller, threadId: string): Promise<Ack<{ thread: ChatThread }>> {
    const access = await this.store.threadAccess(clinic, caller, threadId);
    if (access.ok || access.error.code !== 'CHAT_THREAD_NOT_FOUND' || threadKindOf(threadId) !== 'patient') return access;
    const ticket = await this.options.findTicket(clinic, threadId.slice('patient.'.length));
    if (!ticket) return access;
    const created = await this.store.createThread(clinic, caller, { threadId, kind: 'patient', title: ticket.number, members: [], keepSeconds: this.threadKeepSeconds(clinic, 'patient') });
    return created.ok ? { ok: true, thread: created.thread } : created;
  }

  /**
   * Joining a thread: the caller's access is checked, `subscribe` is called
   * (the handler joins the socket to the thread's room, so nothing committed
   * from then on is missed), then the page is read: with `afterId`, what came
   * after it (the resume); without, or past a rewind (`rewound`:
   * ChatStore.markRewound), the latest messages. Audited.
   */
  async join(clinic: string, caller: ChatCaller, input: Input<'chat:join'>, subscribe: () => void = () => undefined): Promise<Ack<ChatJoinResult>> {
    const opened = await this.open(clinic, caller, input.threadId);
    if (!opened.ok) return opened;
    subscribe();
    const page = await this.store.readMessages(clinic, caller, {
      threadId: input.threadId,
      mode: input.afterId === undefined ? 'latest' : 'after',
      cursor: input.afterId === undefined ? 0 : messageSeqOf(input.afterId),
      cursorAt: input.afterAt,
      limit: input.limit,
      withReceipts: true,
    });
    if (page.ok) await this.audit(clinic, caller, 'chat.read', input.threadId);
    return page;
  }

  /** A page before or after a message (or the latest page). Audited. */
  async history(clinic: string, caller: ChatCaller, input: Input<'chat:history'>): Promise<Ack<ChatHistoryResult>> {
    const cursor = input.before ?? input.after;
    const page = await this.store.readMessages(clinic, caller, {
      threadId: input.threadId,
      mode: input.before !== undefined ? 'before' : input.after !== undefined ? 'after' : 'latest',
      cursor: cursor === undefined ? 0 : messageSeqOf(cursor),
      cursorAt: input.after !== undefined ? input.afterAt : undefined,
      limit: input.limit,
      withReceipts: false,
    });
    if (!page.ok) return page;
    await this.audit(clinic, caller, 'chat.read', input.threadId);
    return { ok: true, messages: page.messages, hasOlder: page.hasOlder, hasNewer: page.hasNewer, rewound: page.rewound };
  }

  /**
   * Validates and appends one message; the ack carries its stream id. The
   * same clientMessageId again returns the stored message (`duplicate: true`).
   */
  async send(clinic: string, caller: ChatCaller, input: Input<'chat:send'>): Promise<Ack<ChatSendResult>> {
    if (input.text.length > CHAT_MAX_TEXT_LENGTH) return fail('CHAT_MESSAGE_TOO_LONG', `${input.text.length} > ${CHAT_MAX_TEXT_LENGTH} characters`);
    const attachments = [...new Set(input.attachments)];
    if (input.text.trim() === '' && attachments.length === 0) return fail('CHAT_MESSAGE_EMPTY');
    const append = () =>
      this.store.appendMessage(clinic, caller, {
        threadId: input.threadId,
        clientMessageId: input.clientMessageId,
        text: input.text,
        attachments,
        dedupeSeconds: CLIENT_MESSAGE_ID_KEPT_SECONDS,
        quota: this.quotas.messagesPerMinute,
        attachmentKeepSeconds: this.attachmentKeepSeconds(clinic),
        threadKeepSeconds: this.threadKeepSeconds(clinic, threadKindOf(input.threadId) ?? 'patient'),
      });
    const sent = await append();
    // The first message of a patient is a first use of their thread too.
    if (sent.ok || sent.error.code !== 'CHAT_THREAD_NOT_FOUND' || threadKindOf(input.threadId) !== 'patient') return sent;
    const opened = await this.open(clinic, caller, input.threadId);
    return opened.ok ? append() : opened;
  }

  /**
   * Moves the caller's read position forward. A message the thread no longer holds (a failover lost it: past the
   * latest message, or `upToAt` not its `at`) records nothing and answers `rewound`: the client starts over.
   */
  markRead(clinic: string, caller: ChatCaller, input: Input<'chat:read'>): Promise<Ack<ChatReadResult>> {
    return this.store.markRead(clinic, caller, input.threadId, messageSeqOf(input.upToId), input.upToAt).then((result) =>
      result.ok ? { ok: true, receipt: result.receipt, rewound: result.rewound } : result,
    );
  }

  /**
   * Checks an upload (size, then its type by its first bytes, which must
   * match the declared type when one is given), takes its bytes from the
   * attachment quotas, and stores it encrypted in the attachment storage (its
   * metadata in Redis). It waits for a message of the uploader in that thread
   * to send it.
   */
  async uploadAttachment(
    clinic: string,
    caller: ChatCaller,
    input: { threadId: string; declaredType: string | null; name: string | null; bytes: Buffer },
  ): Promise<Ack<{ attachment: ChatAttachment & { threadId: string } }>> {
    if (!this.cipher) return fail('CHAT_ATTACHMENTS_DISABLED');
    if (input.bytes.length > this.options.attachmentMaxBytes) {
      return fail('CHAT_ATTACHMENT_TOO_LARGE', `${input.bytes.length} > ${this.options.attachmentMaxBytes} bytes`);
    }
    if (input.bytes.length === 0) return fail('INVALID_PAYLOAD', 'the body is empty');
    const declared = input.declaredType?.split(';')[0]!.trim().toLowerCase() || null;
    if (declared !== null && !(CHAT_ATTACHMENT_TYPES as readonly string[]).includes(declared)) {
      return fail('CHAT_ATTACHMENT_TYPE_NOT_ALLOWED', `declared ${declared.slice(0, 64)}`);
    }
    const type = sniffAttachmentType(input.bytes);
    if (!type) return fail('CHAT_ATTACHMENT_TYPE_NOT_ALLOWED', 'the content is not a PNG, JPEG, WebP or PDF file');
    if (declared !== null && declared !== type) return fail('CHAT_ATTACHMENT_TYPE_NOT_ALLOWED', `declared ${declared}, content is ${type}`);

    const opened = await this.open(clinic, caller, input.threadId);
    if (!opened.ok) return opened;
    const quota = await this.store.takeAttachmentQuota(clinic, caller, input.threadId, this.quotas.attachmentBytesPerDay, input.bytes.length);
    if (!quota.ok) return quota;
    const attachment: StoredAttachment = {
      id: randomBytes(16).toString('base64url'),
      threadId: input.threadId,
      uploader: caller.sub,
      type,
      size: input.bytes.length,
      name: cleanFileName(input.name, type),
      at: Date.now(),
      messageId: null,
    };
    const sealed = this.cipher.seal(input.bytes, attachmentAdditionalData(clinic, input.threadId, attachment.id));
    // The file first: metadata in Redis always names bytes that exist (a file without metadata is swept).
    const stored = await this.storageCall(() => this.storage!.put(attachmentStorageKey(clinic, attachment.id), sealed));
    if (!stored.ok) return stored;
    await this.store.saveAttachment(clinic, attachment, PENDING_ATTACHMENT_SECONDS);
    return { ok: true, attachment: { id: attachment.id, threadId: attachment.threadId, type, size: attachment.size, name: attachment.name } };
  }

  /** An attachment's bytes, for members of its thread only. Each read is audited before the bytes are returned. */
  async downloadAttachment(clinic: string, caller: ChatCaller, attachmentId: string): Promise<Ack<{ attachment: StoredAttachment; bytes: Buffer }>> {
    if (!this.cipher) return fail('CHAT_ATTACHMENTS_DISABLED');
    const attachment = await this.store.attachment(clinic, attachmentId);
    if (!attachment) return fail('CHAT_ATTACHMENT_NOT_FOUND');
    const access = await this.store.threadAccess(clinic, caller, attachment.threadId);
    if (!access.ok) return access.error.code === 'CHAT_THREAD_NOT_FOUND' ? fail('CHAT_ATTACHMENT_NOT_FOUND') : access;
    // Until it is sent, only its uploader may fetch it back.
    if (attachment.messageId === null && attachment.uploader !== caller.sub) return fail('CHAT_ATTACHMENT_NOT_FOUND');
    const read = await this.storageCall(() => this.storage!.get(attachmentStorageKey(clinic, attachmentId)));
    if (!read.ok) return read;
    const sealed = read.value ?? (await this.store.attachmentBlob(clinic, attachmentId));
    if (!sealed) return fail('CHAT_ATTACHMENT_NOT_FOUND');
    const bytes = this.cipher.open(sealed, attachmentAdditionalData(clinic, attachment.threadId, attachmentId));
    await this.audit(clinic, caller, 'chat.attachment.read', `${attachment.threadId}/${attachmentId}`);
    return { ok: true, attachment, bytes };
  }

  /**
   * Deletes the files of attachments whose metadata Redis no longer has (expired: the clinic's retention, or
   * an upload never sent), older than ten minutes. Every hub node may run it; returns how many went.
   */
  async sweepAttachmentFiles(now = Date.now()): Promise<number> {
    if (!this.storage) return 0;
    const byClinic = new Map<string, string[]>();
    for (const key of await this.storage.listOlderThan(now - SWEEP_MIN_AGE_MS, SWEEP_MAX_FILES)) {
      const [clinic, id] = key.split('/') as [string, string];
      const ids = byClinic.get(clinic);
      if (ids) ids.push(id);
      else byClinic.set(clinic, [id]);
    }
    let deleted = 0;
    // Whether each file's metadata is still there, asked in pipelined batches of one clinic (one Cluster slot) each.
    for (const [clinic, ids] of byClinic) {
      for (let i = 0; i < ids.length; i += SWEEP_BATCH) {
        const batch = ids.slice(i, i + SWEEP_BATCH);
        const exists = await this.store.attachmentsExist(clinic, batch);
        for (const [j, id] of batch.entries()) {
          if (exists[j]) continue;
          await this.storage.delete(attachmentStorageKey(clinic, id));
          deleted++;
        }
      }
    }
    return deleted;
  }

  /** A storage call whose failure (a full disk, an unreachable object store) is STORE_UNAVAILABLE, not a crash. */
  private async storageCall<T>(call: () => Promise<T>): Promise<Ack<{ value: T }>> {
    try {
      return { ok: true, value: await call() };
    } catch (error) {
      return fail('STORE_UNAVAILABLE', `attachment storage: ${(error as NodeJS.ErrnoException).code ?? 'failed'}`);
    }
  }

  private async audit(clinic: string, caller: ChatCaller, action: string, subject: string): Promise<void> {
    await appendAudit(this.redis, clinic, { actor: caller.sub, role: caller.role, action, subject, from: caller.address });
  }
}
