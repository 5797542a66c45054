import { describe, expect, it } from 'vitest';
import { ChatFollower } from '../src/chat-follower.js';
import { messageIdOf, messageSeqOf, type ChatHistoryResult, type ChatJoinResult, type ChatMessage, type ChatThread } from '../src/chat.js';

/** A thread as the hub holds it, answering join and history as docs/protocol.md says. */
function fakeHub(count: number, page = 50) {
  const messages: ChatMessage[] = [];
  const thread = (): ChatThread => ({
    id: 'staff.t',
    kind: 'staff',
    title: 't',
    ticket: null,
    createdAt: 0,
    createdBy: 'x',
    lastSeq: messages.length,
    lastAt: null,
    memberCount: 2,
  });
  let clock = 0;
  const add = (text?: string) => {
    const seq = messages.length + 1;
    const message: ChatMessage = { id: messageIdOf(seq), seq, threadId: 'staff.t', sender: 'a', senderRole: 'staff', text: text ?? `m${seq}`, attachments: [], clientMessageId: `client-${seq}-${text ?? ''}`, at: ++clock };
    messages.push(message);
    return message;
  };
  for (let i = 0; i < count; i++) add();
  /** The lowest seq a failover lost after it was sent live (the hub's rewind mark), or null. */
  let rewoundFrom: number | null = null;
  /** As the hub answers a cursor (resume rule 5): at or past the mark, past the latest message, or naming another message's `at`. */
  const isRewound = (cursor: string, at?: number) => {
    const seq = messageSeqOf(cursor);
    if (rewoundFrom !== null && seq >= rewoundFrom) return true;
    if (seq > messages.length) return true;
    return seq > 0 && at !== undefined && messages[seq - 1]!.at !== at;
  };
  const latest = (): ChatHistoryResult => ({ messages: messages.slice(-page), hasOlder: messages.length > page, hasNewer: false, rewound: false });
  const after = (seq: number): ChatHistoryResult => {
    const rest = messages.filter((m) => m.seq > seq);
    return { messages: rest.slice(0, page), hasOlder: seq > 0, hasNewer: rest.length > page, rewound: false };
  };
  const calls: string[] = [];
  /** The `afterAt` of each join and history-after call, in order. */
  const afterAts: (number | undefined)[] = [];
  const hub = {
    messages,
    add,
    calls,
    afterAts,
    reset: () => messages.splice(0),
    /** A failover lost the messages from `seq` on (after they were sent live): their seqs come again. */
    lose: (seq: number) => {
      messages.splice(seq - 1);
      rewoundFrom = Math.min(rewoundFrom ?? seq, seq);
    },
    /** As `lose`, found by no hub node (no mark): only a cursor's `at` shows it. */
    loseUnnoticed: (seq: number) => void messages.splice(seq - 1),
    join: async (afterId: string | null, afterAt?: number): Promise<ChatJoinResult> => {
      calls.push(`join ${afterId}`);
      afterAts.push(afterAt);
      if (afterId === null) return { thread: thread(), receipts: [], ...latest() };
      if (isRewound(afterId, afterAt)) return { thread: thread(), receipts: [], ...latest(), rewound: true };
      return { thread: thread(), receipts: [], ...after(messageSeqOf(afterId)) };
    },
    history: async (query: { after: string; afterAt?: number } | { before: string }): Promise<ChatHistoryResult> => {
      calls.push('after' in query ? `after ${query.after}` : `before ${query.before}`);
      if ('after' in query) afterAts.push(query.afterAt);
      if ('after' in query) return isRewound(query.after, query.afterAt) ? { ...latest(), rewound: true } : after(messageSeqOf(query.after));
      const before = messages.filter((m) => m.seq < messageSeqOf(query.before));
      return { messages: before.slice(-page), hasOlder: before.length > page, hasNewer: true, rewound: false };
    },
  };
  return hub;
}

function follow(hub: ReturnType<typeof fakeHub>) {
  const applied: number[] = [];
  const follower = new ChatFollower({ join: hub.join, history: hub.history, onMessage: (m) => applied.push(m.seq) });
  return { follower, applied };
}

describe('ChatFollower', () => {
  it('starts from the latest page and pages back on demand', async () => {
    const hub = fakeHub(120);
    const { follower, applied } = follow(hub);
    await follower.resync();
    expect(applied).toEqual(Array.from({ length: 50 }, (_, i) => 71 + i));
    expect(follower.hasOlder).toBe(true);
    expect(await follower.loadOlder()).toBe(true);
    expect(await follower.loadOlder()).toBe(true);
    expect(follower.messages.map((m) => m.seq)).toEqual(Array.from({ length: 120 }, (_, i) => i + 1));
    expect(follower.hasOlder).toBe(false);
    expect(await follower.loadOlder()).toBe(false);
  });

  it('applies live messages in order once, and fills a gap from the hub', async () => {
    const hub = fakeHub(3);
    const { follower, applied } = follow(hub);
    await follower.resync();
    const four = hub.add();
    follower.handleMessage(four);
    follower.handleMessage(four);
    hub.add();
    const six = hub.add();
    follower.handleMessage(six);
    await new Promise((r) => setTimeout(r, 10));
    expect(applied).toEqual([1, 2, 3, 4, 5, 6]);
    expect(hub.calls).toEqual(['join null', 'after 4-0']);
    follower.handleMessage(six);
    expect(applied).toHaveLength(6);
  });

  it('resumes with its last id after a reconnect and pages through what it missed', async () => {
    const hub = fakeHub(2, 10);
    const { follower, applied } = follow(hub);
    await follower.resync();
    for (let i = 0; i < 25; i++) hub.add();
    await follower.resync();
    expect(applied).toEqual(Array.from({ length: 27 }, (_, i) => i + 1));
    expect(hub.calls).toEqual(['join null', 'join 2-0', 'after 12-0', 'after 22-0']);
  });

  it('resumes an empty thread from 0-0, so it gets the first messages, not the latest page', async () => {
    const hub = fakeHub(0, 5);
    const { follower, applied } = follow(hub);
    await follower.resync();
    expect(follower.lastId).toBe('0-0');
    for (let i = 0; i < 8; i++) hub.add();
    await follower.resync();
    expect(applied).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('holds live messages that arrive during a resume and applies them after it', async () => {
    const hub = fakeHub(1);
    const { follower, applied } = follow(hub);
    await follower.resync();
    hub.add();
    const three = hub.add();
    const resuming = follower.resync();
    follower.handleMessage(three);
    await resuming;
    expect(applied).toEqual([1, 2, 3]);
  });

  it('starts again when the hub is behind it (its Redis lost data)', async () => {
    const hub = fakeHub(5);
    const resets: number[] = [];
    const follower = new ChatFollower({ join: hub.join, history: hub.history, onReset: () => resets.push(1) });
    await follower.resync();
    hub.reset();
    hub.add();
    await follower.resync();
    expect(resets).toHaveLength(1);
    expect(follower.messages.map((m) => m.seq)).toEqual([1]);
    expect(follower.lastSeq).toBe(1);
  });

  it('starts over from the latest page when a join is answered rewound: a failover lost a message it had, whose seq came again', async () => {
    const hub = fakeHub(3);
    const resets: number[] = [];
    const follower = new ChatFollower({ join: hub.join, history: hub.history, onReset: () => resets.push(1) });
    await follower.resync();
    // Sent live, then lost with the master; the next message gets its seq, and is dropped as one already applied.
    follower.handleMessage(hub.add('lost'));
    hub.lose(4);
    const real = hub.add('real');
    follower.handleMessage(real);
    expect(follower.messages.map((m) => m.text)).toEqual(['m1', 'm2', 'm3', 'lost']);
    // The hub closes the connection; on the reconnect, the join past the mark is answered with the latest page.
    const rejoining = follower.resync();
    // A message sent while the join is in flight, after the page was read, is kept and applied after it.
    const next = hub.add('next');
    follower.handleMessage(next);
    await rejoining;
    expect(follower.messages).toEqual(hub.messages);
    expect(follower.lastSeq).toBe(5);
    expect(resets).toHaveLength(1);
    expect(hub.calls).toEqual(['join null', 'join 4-0']);
  });

  it('starts over when a history request to fill a gap is answered rewound', async () => {
    const hub = fakeHub(3);
    const { follower, applied } = follow(hub);
    await follower.resync();
    follower.handleMessage(hub.add('lost 4'));
    hub.add('lost 5');
    hub.lose(4);
    hub.add('real 4');
    hub.add('real 5');
    // The live 5 was missed; the live 6 shows the gap, and the history after 4 is answered rewound.
    follower.handleMessage(hub.add('real 6'));
    await new Promise((r) => setTimeout(r, 10));
    expect(follower.messages).toEqual(hub.messages);
    expect(applied).toEqual([1, 2, 3, 4, 1, 2, 3, 4, 5, 6]);
    expect(hub.calls).toEqual(['join null', 'after 4-0', 'join null']);
  });

  it('names the message it resumes after by its at, and starts over when the hub no longer holds it, though no node noticed', async () => {
    const hub = fakeHub(3);
    const resets: number[] = [];
    const follower = new ChatFollower({ join: hub.join, history: hub.history, onReset: () => resets.push(1) });
    await follower.resync();
    // Read, then lost with the master; no hub node held it (no mark), and its seq is given to another message.
    const lost = hub.add('lost');
    follower.handleMessage(lost);
    hub.loseUnnoticed(4);
    hub.add('real 4');
    hub.add('real 5');
    await follower.resync();
    expect(hub.calls).toEqual(['join null', 'join 4-0']);
    expect(hub.afterAts).toEqual([undefined, lost.at]);
    expect(resets).toHaveLength(1);
    expect(follower.messages).toEqual(hub.messages);
  });

  it('starts over from the latest page when told to (a read receipt answered rewound)', async () => {
    const hub = fakeHub(3);
    const { follower } = follow(hub);
    await follower.resync();
    follower.handleMessage(hub.add('lost'));
    hub.loseUnnoticed(4);
    const real = hub.add('real 4');
    await follower.startOver();
    expect(follower.messages).toEqual(hub.messages);
    expect(follower.lastAt).toBe(real.at);
    expect(hub.calls).toEqual(['join null', 'join null']);
  });

  it('keeps the highest read position of each member', () => {
    const follower = new ChatFollower({ join: async () => { throw new Error('unused'); }, history: async () => { throw new Error('unused'); } });
    const receipt = (member: string, readSeq: number) => ({ threadId: 'staff.t', member, role: 'staff' as const, readSeq, readId: messageIdOf(readSeq), at: 0 });
    follower.handleReceipt(receipt('a', 3));
    follower.handleReceipt(receipt('a', 2));
    follower.handleReceipt(receipt('b', 5));
    expect(follower.receipts.get('a')?.readSeq).toBe(3);
    expect(follower.readByOthers('b')).toBe(3);
    expect(follower.readByOthers('c')).toBe(5);
  });
});
