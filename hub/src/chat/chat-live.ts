import type { Namespace } from 'socket.io';
import { onClinicMessages, subscribeClinicChannels, type RedisClient } from '@clinic-hub/platform/redis';
import { threadKindOf, type ChatActivity, type ChatMessage, type ChatThreadKind, type StaffPresence } from '@clinic-hub/protocol';
import type { Logger } from '@clinic-hub/platform/logging';
import type { HubMetrics } from '../metrics.js';
import { closeRoomTransports } from '../socket/local-broadcast.js';
import { RecentSeqs } from '../socket/recent-seqs.js';
import { CHAT_CHANNEL_KIND, chatRooms, parseThreadRoom, type ChatLiveEvent } from './chat-keys.js';
import type { ChatStore } from './chat-store.js';

/** More missed messages per thread than this are left to the clients' own resume (they see the gap). */
const MAX_CATCH_UP_MESSAGES = 500;
/** How far back a catch-up reads what this node's sockets hold, to find messages a failover lost (a rewind). */
const REWIND_CHECK_MESSAGES = 50;
/** How many seqs a node remembers per joined thread: more than a catch-up reads back. */
const RECENT_SEQS_KEPT = 2 * REWIND_CHECK_MESSAGES;
const CATCH_UP_RETRY_MS = 1000;
const CATCH_UP_ATTEMPTS = 30;
const MEMBER_LISTS_CACHED = 10_000;

export interface ChatFanoutDeps {
  store: ChatStore;
  clinicIds: string[];
  metrics: HubMetrics;
  logger: Logger;
}

export interface ChatFanout {
  /**
   * A socket joined a thread having read up to `seq`, and `messages` in its page: after a subscription loss the
   * node catches up from there at the latest, and a seq read as another message than this node sent is a rewind.
   */
  noteJoined(clinic: string, threadId: string, seq: number, messages: readonly ChatMessage[]): void;
  /**
   * A socket read `messages` of the thread (`chat:history`): while the thread has readers on this node, they are
   * remembered as held (a reader of the room may show them), and one read as another message than this node
   * sent is a rewind.
   */
  noteRead(clinic: string, threadId: string, messages: readonly ChatMessage[]): void;
}

/**
 * Every node subscribes to the clinics' chat channels, which the chat scripts
 * publish to in commit order, and emits each change to its own sockets only
 * (`local`): a message reaches every socket that joined its thread, on every
 * node, once. Members that have not joined the thread get `chat:activity`
 * instead, so their lists can mark it unread.
 *
 * While this node's subscription is broken (Redis restarted, a network blip)
 * nothing reaches it. When it is back, it reads what its joined threads
 * missed from their streams and emits it (holding live messages back
 * meanwhile, so each thread stays in order), and sends receipts and presence
 * afresh. A client that still sees a gap fills it itself (the resume rule).
 *
 * A message goes out live before a replica holds it: a failover can lose it
 * after it was shown (never acknowledged to its sender), and give its seq to
 * the next message, which readers would drop as one they have. The node
 * remembers what its thread rooms hold (seq → signature) and notices a seq
 * coming back as another message, or a thread behind what it sent (rewound,
 * below).
 */
export async function startChatFanout(subscriber: RedisClient, nsp: Namespace, deps: ChatFanoutDeps): Promise<ChatFanout> {
  const { store, metrics, logger } = deps;
  /** Per thread room: the highest seq emitted, or read by a socket when it joined. */
  const emittedUpTo = new Map<string, number>();
  /** Per thread room: the messages its sockets hold lately (emitted, or read in a join's page), by seq. */
  const held = new Map<string, RecentSeqs>();
  /** Member lists of consult and staff threads, for activity notices; dropped when the members change. */
  const memberCache = new Map<string, Promise<string[]>>();
  /** Presence as this node last heard it, per clinic: what to correct after a subscription loss. */
  const presenceSeen = new Map<string, Map<string, StaffPresence>>();
  /** Live events held back while the node catches up after a subscription loss. */
  let heldBack: [string, ChatLiveEvent][] | null = null;

  nsp.adapter.on('delete-room', (room: string) => {
    emittedUpTo.delete(room);
    held.delete(room);
    memberCache.delete(room);
  });

  /** The members' own rooms (`chatRooms.user`), built once per thread rather than once per message. */
  const memberRoomsOf = (clinic: string, threadId: string): Promise<string[]> => {
    const room = chatRooms.thread(clinic, threadId);
    let rooms = memberCache.get(room);
    if (!rooms) {
      // Threads nobody on this node has joined are cached too; a long-running node starts over now and then.
      if (memberCache.size >= MEMBER_LISTS_CACHED) memberCache.clear();
      rooms = store.members(clinic, threadId).then((members) => members.map((m) => chatRooms.user(clinic, m)));
      memberCache.set(room, rooms);
      rooms.catch(() => memberCache.delete(room));
    }
    return rooms;
  };

  const emitActivity = (clinic: string, kind: ChatThreadKind, message: ChatMessage) => {
    const room = chatRooms.thread(clinic, message.threadId);
    const activity: ChatActivity = { threadId: message.threadId, kind, seq: message.seq, sender: message.sender, at: message.at };
    if (kind === 'patient') {
      const ticket = message.threadId.slice('patient.'.length);
      nsp.local.to([chatRooms.clinicians(clinic), chatRooms.ticket(clinic, ticket)]).except(room).emit('chat:activity', activity);
      return;
    }
    memberRoomsOf(clinic, message.threadId).then(
      (memberRooms) => {
        const rooms = memberRooms.filter((r) => nsp.adapter.rooms.has(r));
        if (rooms.length > 0) nsp.local.to(rooms).except(room).emit('chat:activity', activity);
      },
      (error: Error) => logger.debug({ err: error.message }, 'cannot read thread members for an activity notice'),
    );
  };

  /**
   * A failover lost the thread's messages from `fromSeq` on after this node had sent them, and their seqs are
   * given to others: the thread's readers here are moved as a drain moves them, their transports closed; they
   * reconnect, and their `chat:join` from past the mark is answered with the latest page and `rewound: true`
   * (ChatStore.markRewound), on any node.
   */
  const rewound = (clinic: string, threadId: string, fromSeq: number) => {
    const room = chatRooms.thread(clinic, threadId);
    logger.warn({ clinic, thread: threadId, fromSeq }, 'chat messages sent live before a failover were lost; the thread\'s readers start over');
    forgetFrom(room, fromSeq);
    store
      .markRewound(clinic, threadId, fromSeq)
      .catch((error: Error) => logger.error({ clinic, err: error.message }, 'cannot mark the chat thread rewound; its readers may keep a lost message'))
      .finally(() => closeRoomTransports(nsp, room));
  };

  const forgetFrom = (room: string, fromSeq: number) => {
    held.get(room)?.forgetFrom(fromSeq);
    if ((emittedUpTo.get(room) ?? 0) >= fromSeq) emittedUpTo.set(room, fromSeq - 1);
  };

  /**
   * Another node (or this one) marked the thread rewound: its readers here are moved too. They may hold the lost
   * messages without this node knowing (read through `chat:history`, or before this node held the thread), and a
   * live message would not show them otherwise: the lost seqs come back as other messages, which they drop.
   */
  const rewoundElsewhere = (clinic: string, threadId: string, fromSeq: number) => {
    const room = chatRooms.thread(clinic, threadId);
    if (!nsp.adapter.rooms.has(room)) return;
    forgetFrom(room, fromSeq);
    closeRoomTransports(nsp, room);
  };

  /** Notes that the room's sockets hold `message`; true when they held another message with its seq (a rewind). */
  const noteHeld = (clinic: string, room: string, message: ChatMessage): boolean => {
    if (!nsp.adapter.rooms.has(room)) return false;
    let recent = held.get(room);
    if (!recent) held.set(room, (recent = new RecentSeqs(RECENT_SEQS_KEPT)));
    if (recent.add(message.seq, messageSignature(message)) !== 'other') return false;
    rewound(clinic, message.threadId, message.seq);
    recent.add(message.seq, messageSignature(message));
    return true;
  };

  const emitMessage = (clinic: string, kind: ChatThreadKind, message: ChatMessage) => {
    const room = chatRooms.thread(clinic, message.threadId);
    // Sent on after a rewind too, as any message: the readers it reaches are on their way to start over.
    noteHeld(clinic, room, message);
    nsp.local.to(room).emit('chat:message', message);
    metrics.chatMessageFannedOut(message.at);
    if (message.seq > (emittedUpTo.get(room) ?? 0) && nsp.adapter.rooms.has(room)) emittedUpTo.set(room, message.seq);
    emitActivity(clinic, kind, message);
  };

  const emitPresence = (clinic: string, presence: StaffPresence) => {
    let seen = presenceSeen.get(clinic);
    if (!seen) presenceSeen.set(clinic, (seen = new Map()));
    if (presence.status === 'offline') seen.delete(presence.member);
    else seen.set(presence.member, presence);
    nsp.local.to(chatRooms.clinic(clinic)).emit('chat:presence', presence);
  };

  const handle = (clinic: string, event: ChatLiveEvent) => {
    switch (event.t) {
      case 'message':
        emitMessage(clinic, event.kind, event.message);
        return;
      case 'receipt':
        nsp.local.to(chatRooms.thread(clinic, event.receipt.threadId)).emit('chat:receipt', event.receipt);
        return;
      case 'presence':
        emitPresence(clinic, event.presence);
        return;
      case 'rewound':
        rewoundElsewhere(clinic, event.threadId, event.fromSeq);
        return;
      case 'thread': {
        const { thread, added, removed } = event;
        const room = chatRooms.thread(clinic, thread.id);
        memberCache.delete(room);
        if (thread.kind === 'patient') {
          nsp.local.to([chatRooms.clinicians(clinic), chatRooms.ticket(clinic, thread.id.slice('patient.'.length))]).emit('chat:thread', thread);
          return;
        }
        if (removed.length > 0) {
          const removedRooms = removed.map((m) => chatRooms.user(clinic, m));
          // Out of the room before anything else is emitted to it.
          nsp.local.in(removedRooms).socketsLeave(room);
          nsp.local.to(removedRooms).emit('chat:thread-removed', { threadId: thread.id });
        }
        nsp.local.to([room, ...added.map((m) => chatRooms.user(clinic, m))]).emit('chat:thread', thread);
        return;
      }
    }
  };

  onClinicMessages(subscriber, CHAT_CHANNEL_KIND, (clinic, raw, channel) => {
    let event: ChatLiveEvent;
    try {
      event = JSON.parse(raw) as ChatLiveEvent;
    } catch {
      logger.warn({ channel }, 'unparseable chat event on its channel');
      return;
    }
    if (heldBack) heldBack.push([clinic, event]);
    else handle(clinic, event);
  });

  const release = (caughtUp: Set<string>) => {
    const events = heldBack ?? [];
    heldBack = null;
    for (const [clinic, event] of events) {
      // Emitted by the catch-up already.
      if (event.t === 'message' && caughtUp.has(`${chatRooms.thread(clinic, event.message.threadId)}#${event.message.seq}`)) continue;
      handle(clinic, event);
    }
  };

  const catchUp = async (attempt: number): Promise<void> => {
    const caughtUp = new Set<string>();
    try {
      // Resolves once Redis has the subscription again: nothing published from now on is missed.
      await subscribeClinicChannels(subscriber, CHAT_CHANNEL_KIND, deps.clinicIds);
      for (const [room, after] of [...emittedUpTo]) {
        const parsed = parseThreadRoom(room);
        const kind = parsed && threadKindOf(parsed.threadId);
        if (!parsed || !kind || !nsp.adapter.rooms.has(room)) continue;
        const { clinic, threadId } = parsed;
        // From a little before: a failover may have lost messages this node sent, and given their seqs to others.
        const current = await store.lastSeq(clinic, threadId);
        if (current < after) rewound(clinic, threadId, current + 1);
        let upTo = Math.min(after, current);
        const from = Math.max(0, upTo - REWIND_CHECK_MESSAGES);
        for (const message of await store.messagesAfter(clinic, threadId, from, MAX_CATCH_UP_MESSAGES + upTo - from)) {
          if (message.seq <= upTo) {
            // Read back to compare with what the room holds: from a seq it held as another message on, all is sent.
            if (!noteHeld(clinic, room, message)) continue;
            upTo = message.seq - 1;
          }
          emitMessage(clinic, kind, message);
          caughtUp.add(`${room}#${message.seq}`);
        }
        for (const receipt of await store.receipts(clinic, threadId)) nsp.local.to(room).emit('chat:receipt', receipt);
      }
      for (const clinic of deps.clinicIds) {
        if (!nsp.adapter.rooms.has(chatRooms.clinic(clinic))) continue;
        const current = await store.presenceList(clinic);
        const present = new Set(current.map((p) => p.member));
        for (const [member, last] of presenceSeen.get(clinic) ?? []) {
          if (!present.has(member)) emitPresence(clinic, { ...last, status: 'offline', since: Date.now() });
        }
        for (const presence of current) emitPresence(clinic, presence);
      }
      if (caughtUp.size > 0) logger.info({ messages: caughtUp.size }, 'emitted chat messages missed while the chat subscription was down');
      release(caughtUp);
    } catch (error) {
      if (attempt >= CATCH_UP_ATTEMPTS) {
        logger.error({ err: (error as Error).message }, 'cannot catch up on missed chat messages; clients resume by themselves');
        release(caughtUp);
        return;
      }
      setTimeout(() => void catchUp(attempt + 1), CATCH_UP_RETRY_MS).unref();
    }
  };

  await subscribeClinicChannels(subscriber, CHAT_CHANNEL_KIND, deps.clinicIds);
  for (const clinic of deps.clinicIds) {
    presenceSeen.set(clinic, new Map((await store.presenceList(clinic)).map((p) => [p.member, p])));
  }
  // 'ready' again means the connection was lost and is back (ioredis resubscribes by itself).
  subscriber.on('ready', () => {
    heldBack ??= [];
    void catchUp(1);
  });

  return {
    noteJoined(clinic, threadId, seq, messages) {
      const room = chatRooms.thread(clinic, threadId);
      // Never raised here: another socket of the room may still be waiting for messages up to seq.
      if (!emittedUpTo.has(room)) emittedUpTo.set(room, seq);
      for (const message of messages) noteHeld(clinic, room, message);
    },
    noteRead(clinic, threadId, messages) {
      const room = chatRooms.thread(clinic, threadId);
      for (const message of messages) noteHeld(clinic, room, message);
    },
  };
}

/** What tells two messages with one seq apart: a failover that lost one may have given its seq to another. */
export const messageSignature = (message: ChatMessage) => `${message.sender}/${message.clientMessageId}@${message.at}`;
