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
  const add = () => {
    const seq = messages.length + 1;
    const message: ChatMessage = { id: messageIdOf(seq), seq, threadId: 'staff.t', sender: 'a', senderRole: 'staff', text: `m${seq}`, attachments: [], clientMessageId: `client-${seq}`, at: seq };
    messages.push(message);
    return message;
  };
  for (let i = 0; i < count; i++) add();
  const after = (seq: number): ChatHistoryResult => {
    const rest = messages.filter((m) => m.seq > seq);
    return { messages: rest.slice(0, page), hasOlder: seq > 0, hasNewer: rest.length > page };
  };
  const calls: string[] = [];
  const hub = {
    messages,
    add,
    calls,
    reset: () => messages.splice(0),
    join: async (afterId: string | null): Promise<ChatJoinResult> => {
      calls.push(`join ${afterId}`);
      if (afterId === null) return { thread: thread(), messages: messages.slice(-page), hasOlder: messages.length > page, hasNewer: false, receipts: [] };
      return { thread: thread(), receipts: [], ...after(messageSeqOf(afterId)) };
    },
    history: async (query: { after: string } | { before: string }): Promise<ChatHistoryResult> => {
      calls.push('after' in query ? `after ${query.after}` : `before ${query.before}`);
      if ('after' in query) return after(messageSeqOf(query.after));
      const before = messages.filter((m) => m.seq < messageSeqOf(query.before));
      return { messages: before.slice(-page), hasOlder: before.length > page, hasNewer: true };
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
