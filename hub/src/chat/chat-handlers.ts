import type { Namespace, Socket } from 'socket.io';
import {
  CHAT_EVENT_ROLES,
  CHAT_ROLES,
  CHAT_TYPING_MIN_INTERVAL_MS,
  ChatPayloads,
  type ChatTyping,
  fail,
} from '@clinic-hub/protocol';
import { ConnectError, identityOf } from '../auth/socket-auth.js';
import { socketHandlers, type HandlerContext } from '../socket/define-handler.js';
import { installEventGuard } from '../socket/event-guard.js';
import { chatRooms } from './chat-keys.js';
import type { ChatFanout } from './chat-live.js';
import { ChatPresence } from './chat-presence.js';
import type { ChatService } from './chat-service.js';
import type { ChatCaller } from './chat-store.js';
import { SendLimiter } from './send-limiter.js';

export interface ChatHandlerDeps extends HandlerContext {
  chat: ChatService;
  presence: ChatPresence;
  fanout: ChatFanout;
  maxPayloadBytes: number;
  /** Messages per second one connection may send (0: no limit). */
  messagesPerSecond: number;
  /** Told of each new message a clinician sends in a patient's thread (the patient is notified: notify domain). */
  onClinicianReply?: (clinic: string, ticketId: string, messageId: string) => void;
}

/**
 * The chat namespace. Put `socketAuth` in front of it; this adds the role
 * gate (displays and services are refused at connect), the event guard and
 * thin handlers: validate, call the chat domain, ack.
 */
export function registerChatHandlers(nsp: Namespace, deps: ChatHandlerDeps): void {
  nsp.use((socket, next) => {
    const { role } = identityOf(socket);
    if (!CHAT_ROLES.includes(role)) return next(new ConnectError('AUTH_FORBIDDEN', `${role} tokens cannot use chat`));
    next();
  });

  nsp.on('connection', (socket: Socket) => {
    const identity = identityOf(socket);
    const { clinic, sub, role } = identity;
    const caller = (): ChatCaller => ({ sub, role, ticket: identity.ticket ?? null, address: identity.address });
    const rooms = [chatRooms.clinic(clinic), chatRooms.user(clinic, sub)];
    if (ChatPresence.tracks(role)) rooms.push(chatRooms.clinicians(clinic));
    if (role === 'patient' && identity.ticket) rooms.push(chatRooms.ticket(clinic, identity.ticket));
    void socket.join(rooms);
    installEventGuard(socket, CHAT_EVENT_ROLES, deps);

    if (ChatPresence.tracks(role)) {
      const logFailure = (error: Error) => deps.logger.warn({ err: error.message, socket: socket.id }, 'presence update failed');
      deps.presence.connect(clinic, { sub, role }, socket.id).catch(logFailure);
      socket.on('disconnect', () => void deps.presence.disconnect(clinic, sub, socket.id).catch(logFailure));
    }

    const on = socketHandlers(socket, ChatPayloads, deps);

    on('chat:threads', () => deps.chat.listThreads(clinic, caller()));
    on('chat:create', (payload) => deps.chat.createThread(clinic, caller(), payload));
    on('chat:members', (payload) => deps.chat.updateMembers(clinic, caller(), payload));

    on('chat:join', async (payload) => {
      const room = chatRooms.thread(clinic, payload.threadId);
      let subscribed = false;
      const result = await deps.chat
        .join(clinic, caller(), payload, () => {
          subscribed = true;
          void socket.join(room);
        })
        .catch((error: unknown) => {
          if (subscribed) void socket.leave(room);
          throw error;
        });
      if (result.ok) deps.fanout.noteJoined(clinic, payload.threadId, result.thread.lastSeq, result.messages);
      else if (subscribed) void socket.leave(room);
      return result;
    });

    on('chat:leave', async ({ threadId }) => {
      await socket.leave(chatRooms.thread(clinic, threadId));
      return { ok: true };
    });

    on('chat:history', async (payload) => {
      const result = await deps.chat.history(clinic, caller(), payload);
      // What the thread's readers here hold: a page read with another message at a seq this node sent is a rewind.
      if (result.ok) deps.fanout.noteRead(clinic, payload.threadId, result.messages);
      return result;
    });

    const sends = new SendLimiter(deps.messagesPerSecond);
    on('chat:send', async (payload) => {
      if (!sends.take()) return fail('RATE_LIMITED', `more than ${deps.messagesPerSecond} messages per second`);
      const sent = await deps.chat.send(clinic, caller(), payload);
      const ticketId = payload.threadId.startsWith('patient.') ? payload.threadId.slice('patient.'.length) : null;
      if (sent.ok && !sent.duplicate && ticketId && role !== 'patient') deps.onClinicianReply?.(clinic, ticketId, sent.message.id);
      return sent;
    });

    on('chat:read', (payload) => deps.chat.markRead(clinic, caller(), payload));

    // Typing is ephemeral: relayed to the thread's room on every node (Socket.IO adapter), never stored.
    const lastTyping = new Map<string, number>();
    on('chat:typing', async ({ threadId, typing }) => {
      const room = chatRooms.thread(clinic, threadId);
      if (!socket.rooms.has(room)) return fail('CHAT_NOT_JOINED');
      const now = Date.now();
      if (typing) {
        if (now - (lastTyping.get(room) ?? 0) < CHAT_TYPING_MIN_INTERVAL_MS) return fail('RATE_LIMITED', `typing at most every ${CHAT_TYPING_MIN_INTERVAL_MS} ms`);
        lastTyping.set(room, now);
      } else {
        lastTyping.delete(room);
      }
      const notice: ChatTyping = { threadId, member: sub, role, typing, at: now };
      socket.to(room).emit('chat:typing', notice);
      return { ok: true };
    });

    on('chat:set-presence', ({ status }) => deps.presence.set(clinic, { sub, role }, socket.id, status));
    on('chat:staff-presence', async () => ({ ok: true, staff: await deps.presence.list(clinic) }));
  });
}
