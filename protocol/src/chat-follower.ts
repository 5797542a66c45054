import { messageIdOf, type ChatHistoryResult, type ChatJoinResult, type ChatMessage, type ChatReceipt, type ChatThread } from './chat.js';

export interface ChatFollowerOptions {
  /**
   * Sends `chat:join` with `afterId` (null: the latest page) and `afterAt` when given (the `at` of the message
   * `afterId` names, as this client holds it). Rejects on an error ack or a timeout.
   */
  join(afterId: string | null, afterAt?: number): Promise<ChatJoinResult>;
  /** Sends `chat:history` (with `after`, `afterAt` as for a join). Rejects on an error ack or a timeout. */
  history(query: { after: string; afterAt?: number } | { before: string }): Promise<ChatHistoryResult>;
  /** Each new message once, in seq order, whether it came live or from a resume: never twice for one seq. */
  onMessage?(message: ChatMessage): void;
  /** A page of older messages was put in front of `messages`. */
  onOlder?(messages: ChatMessage[]): void;
  /**
   * The thread was reset: a failover lost messages this client had (`rewound`), or the hub's history is behind
   * this client (Redis lost it); `messages` starts again from the latest page.
   */
  onReset?(): void;
  onReceipt?(receipt: ChatReceipt): void;
  /** After every change of state. */
  onChange?(): void;
  onSyncError?(error: unknown): void;
}

/**
 * The client side of the chat resume rule (docs/protocol.md, "Chat"): one
 * thread kept in step with the hub. Messages are numbered per thread without
 * gaps, so a live `chat:message` that does not follow the last one applied
 * shows that something was missed; the follower then asks for what came
 * after its last id. On every (re)connect it joins again with its last id and
 * gets exactly what it missed, page after page; an answer that says the
 * thread was rewound (a failover lost messages it had) makes it start over
 * from the latest page. Web pages and tests use it.
 */
export class ChatFollower {
  thread: ChatThread | null = null;
  /** Seq of the last message applied (0: the thread was empty); null before the first join. */
  lastSeq: number | null = null;
  /** Every message known, oldest first, without gaps from the first one loaded to `lastSeq`. */
  readonly messages: ChatMessage[] = [];
  hasOlder = false;
  /** Read position of each member. */
  readonly receipts = new Map<string, ChatReceipt>();

  private readonly pending = new Map<number, ChatMessage>();
  private syncing: Promise<void> | null = null;
  private joinRequested = false;
  private startOverRequested = false;
  private gapRequested = false;
  private gapPersisted = false;
  private loadingOlder: Promise<boolean> | null = null;

  constructor(private readonly options: ChatFollowerOptions) {}

  /** What a resume names: the id of the last message applied (`0-0` for a thread that was empty). */
  get lastId(): string | null {
    return this.lastSeq === null ? null : messageIdOf(this.lastSeq);
  }

  /**
   * The `at` of the last message applied, when this client holds it (not after joining an empty thread): sent with
   * each resume so the hub can tell whether that message is still the thread's.
   */
  get lastAt(): number | undefined {
    const last = this.messages.at(-1);
    return last && last.seq === this.lastSeq ? last.at : undefined;
  }

  /**
   * The hub said a message this client holds is gone (a `chat:read` answered `rewound`: a failover lost it):
   * starts again from the latest page, as a resume answered `rewound` does (resume rule 5).
   */
  startOver(): Promise<void> {
    this.startOverRequested = true;
    this.joinRequested = true;
    return this.ensureSyncing();
  }

  /** Call on every (re)connect: joins the thread again and fetches what was missed since the last message. */
  resync(): Promise<void> {
    this.joinRequested = true;
    return this.ensureSyncing();
  }

  /** Feed every live `chat:message` of this thread here. */
  handleMessage(message: ChatMessage): void {
    if (this.thread && message.threadId !== this.thread.id) return;
    // Kept whatever its seq while a request is in flight: its answer may start the thread over (rewound).
    if (!this.syncing && this.lastSeq !== null && message.seq <= this.lastSeq) return;
    if (this.syncing || this.lastSeq === null || message.seq !== this.lastSeq + 1) {
      this.pending.set(message.seq, message);
      if (!this.syncing && this.lastSeq !== null) {
        this.gapRequested = true;
        void this.ensureSyncing().catch(() => undefined);
      }
      return;
    }
    this.apply(message);
    this.options.onChange?.();
  }

  /** Feed every live `chat:receipt` of this thread here: positions only move forward. */
  handleReceipt(receipt: ChatReceipt): void {
    if (this.thread && receipt.threadId !== this.thread.id) return;
    const known = this.receipts.get(receipt.member);
    if (known && known.readSeq >= receipt.readSeq) return;
    this.receipts.set(receipt.member, receipt);
    this.options.onReceipt?.(receipt);
    this.options.onChange?.();
  }

  /** Loads the page before the oldest message known. Resolves false when there is nothing older. */
  loadOlder(): Promise<boolean> {
    const oldest = this.messages[0];
    if (!this.hasOlder || !oldest) return Promise.resolve(false);
    this.loadingOlder ??= this.options
      .history({ before: oldest.id })
      .then((page) => {
        const older = page.messages.filter((m) => m.seq < (this.messages[0]?.seq ?? Infinity));
        this.messages.unshift(...older);
        this.hasOlder = page.hasOlder;
        if (older.length > 0) this.options.onOlder?.(older);
        this.options.onChange?.();
        return older.length > 0;
      })
      .finally(() => {
        this.loadingOlder = null;
      });
    return this.loadingOlder;
  }

  /** Highest seq another member (not `self`) has read; 0 when nobody has. */
  readByOthers(self: string): number {
    let max = 0;
    for (const receipt of this.receipts.values()) if (receipt.member !== self && receipt.readSeq > max) max = receipt.readSeq;
    return max;
  }

  private ensureSyncing(): Promise<void> {
    this.syncing ??= this.runSyncLoop().finally(() => {
      this.syncing = null;
    });
    return this.syncing;
  }

  private async runSyncLoop(): Promise<void> {
    let gapRounds = 0;
    while (this.joinRequested || this.gapRequested) {
      if (this.gapPersisted) {
        // The hub had nothing to fill the gap with yet: ask again, but not in a tight loop.
        await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** gapRounds++, 5000)));
      } else {
        gapRounds = 0;
      }
      this.gapPersisted = false;
      try {
        let hasNewer: boolean;
        if (this.joinRequested || this.lastSeq === null) {
          this.joinRequested = false;
          this.gapRequested = false;
          if (this.startOverRequested) {
            this.startOverRequested = false;
            this.reset();
          }
          hasNewer = await this.join();
        } else {
          // A live message came after a gap: ask for what follows the last one applied.
          this.gapRequested = false;
          hasNewer = true;
        }
        while (hasNewer && this.lastSeq !== null) {
          const at = this.lastAt;
          const page = await this.options.history({ after: messageIdOf(this.lastSeq), ...(at !== undefined && { afterAt: at }) });
          if (page.rewound) {
            // This client has messages a failover lost: start again from the latest page, which a join brings.
            this.reset();
            hasNewer = await this.join();
            continue;
          }
          this.applyAll(page.messages);
          hasNewer = page.hasNewer && page.messages.length > 0;
        }
      } catch (error) {
        this.options.onSyncError?.(error);
        throw error;
      }
      this.drainPending();
      this.options.onChange?.();
    }
  }

  /** Joins with the last id; resolves true when more messages follow the page it got. */
  private async join(): Promise<boolean> {
    // What came live before this join is in the pages it gets (or was lost with a failover); what comes during it is kept.
    this.pending.clear();
    const result = await this.options.join(this.lastId, this.lastAt);
    if (result.rewound || (this.lastSeq !== null && result.thread.lastSeq < this.lastSeq)) {
      // The hub's thread is not what this client has: a failover lost messages it has (rewound: the answer is the
      // latest page), or the hub's history is behind it (its Redis lost data). Start again from what the hub has.
      // (A hub that checks afterAt answers rewound for both; the lastSeq test is for hubs that do not.)
      this.reset();
      this.takeLatest(result.rewound ? result : await this.options.join(null));
      return false;
    }
    if (this.lastSeq === null) {
      this.takeLatest(result);
      return false;
    }
    this.thread = { ...result.thread, lastSeq: Math.max(result.thread.lastSeq, this.lastSeq) };
    for (const receipt of result.receipts) this.handleReceiptQuietly(receipt);
    this.applyAll(result.messages);
    return result.hasNewer && result.messages.length > 0;
  }

  /** Forgets the thread's messages and read positions before the latest page is taken (messages kept: join). */
  private reset(): void {
    this.messages.length = 0;
    this.receipts.clear();
    this.lastSeq = null;
    this.options.onReset?.();
  }

  private takeLatest(result: ChatJoinResult): void {
    this.thread = result.thread;
    this.messages.length = 0;
    this.hasOlder = result.hasOlder;
    for (const receipt of result.receipts) this.handleReceiptQuietly(receipt);
    const first = result.messages[0];
    this.lastSeq = first ? first.seq - 1 : result.thread.lastSeq;
    this.applyAll(result.messages);
  }

  private handleReceiptQuietly(receipt: ChatReceipt): void {
    const known = this.receipts.get(receipt.member);
    if (!known || known.readSeq < receipt.readSeq) this.receipts.set(receipt.member, receipt);
  }

  private applyAll(messages: ChatMessage[]): void {
    for (const message of messages) if (this.lastSeq !== null && message.seq === this.lastSeq + 1) this.apply(message);
  }

  private drainPending(): void {
    const seqs = [...this.pending.keys()].sort((a, b) => a - b);
    for (const seq of seqs) {
      const message = this.pending.get(seq)!;
      this.pending.delete(seq);
      if (this.lastSeq !== null && seq <= this.lastSeq) continue;
      if (this.lastSeq !== null && seq === this.lastSeq + 1) {
        this.apply(message);
        continue;
      }
      // Still a gap: keep the rest and go round the loop again.
      this.pending.set(seq, message);
      this.gapRequested = true;
      this.gapPersisted = true;
      return;
    }
  }

  private apply(message: ChatMessage): void {
    this.lastSeq = message.seq;
    this.messages.push(message);
    if (this.thread) this.thread = { ...this.thread, lastSeq: Math.max(this.thread.lastSeq, message.seq), lastAt: message.at };
    this.options.onMessage?.(message);
  }
}
