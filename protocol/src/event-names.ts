/**
 * Socket.IO namespaces and event names of the hub, as plain constants.
 *
 * This file imports nothing, so that clients which cannot load zod or Node
 * modules (the k6 scripts in load-tests/k6/ import it by path) share the
 * names with the hub. events.ts and notify.ts key their event maps with these
 * constants; event-names.test.ts checks, at compile time, that every event
 * map of events.ts, chat.ts and notify.ts has exactly these names.
 */

export const NAMESPACES = {
  /** The waiting room: displays, patients' ticket pages, staff. */
  queue: '/queue',
  chat: '/chat',
  /** In-app notifications: listen only. */
  notify: '/notify',
  /** Video consultations: admission, room tokens, AI results for clinicians. */
  consult: '/consult',
} as const;

/** Client → server in every namespace that takes actions: a fresh token before the current one expires. */
export const AUTH_REFRESH = 'auth:refresh';
/** Server → client in every namespace that takes actions: the error of an event sent without an ack callback. */
export const HUB_ERROR = 'hub:error';
/** Server → client in every namespace that takes actions: this hub node is shutting down; reconnect (through the load balancer) to another. */
export const HUB_DRAINING = 'hub:draining';
/**
 * Server → client in every namespace: the session of this socket's token is over (expired, revoked, its
 * patient's ticket ended); the hub disconnects the socket right after. Do not reconnect with that token.
 */
export const HUB_SESSION_ENDED = 'hub:session-ended';

/** Client → server events of `/queue` (QueueClientToServer). */
export const QUEUE_CLIENT_EVENTS = {
  checkin: 'queue:checkin',
  selfCheckin: 'queue:self-checkin',
  callNext: 'queue:call-next',
  recall: 'queue:recall',
  start: 'queue:start',
  skip: 'queue:skip',
  done: 'queue:done',
  cancel: 'queue:cancel',
  sync: 'queue:sync',
  patient: 'queue:patient',
  patientLink: 'queue:patient-link',
  announce: 'queue:announce',
  authRefresh: AUTH_REFRESH,
} as const;

/** Server → client events of `/queue` (QueueServerToClient). */
export const QUEUE_SERVER_EVENTS = {
  event: 'queue:event',
  announcement: 'queue:announcement',
  clinic: 'queue:clinic',
  hubError: HUB_ERROR,
  hubDraining: HUB_DRAINING,
  sessionEnded: HUB_SESSION_ENDED,
} as const;

/** Client → server events of `/chat` (ChatClientToServer). */
export const CHAT_CLIENT_EVENTS = {
  threads: 'chat:threads',
  create: 'chat:create',
  members: 'chat:members',
  join: 'chat:join',
  leave: 'chat:leave',
  history: 'chat:history',
  send: 'chat:send',
  read: 'chat:read',
  typing: 'chat:typing',
  setPresence: 'chat:set-presence',
  staffPresence: 'chat:staff-presence',
  authRefresh: AUTH_REFRESH,
} as const;

/** Server → client events of `/chat` (ChatServerToClient). */
export const CHAT_SERVER_EVENTS = {
  message: 'chat:message',
  receipt: 'chat:receipt',
  typing: 'chat:typing',
  presence: 'chat:presence',
  thread: 'chat:thread',
  threadRemoved: 'chat:thread-removed',
  activity: 'chat:activity',
  hubError: HUB_ERROR,
  hubDraining: HUB_DRAINING,
  sessionEnded: HUB_SESSION_ENDED,
} as const;

/** Client → server events of `/consult` (ConsultClientToServer). */
export const CONSULT_CLIENT_EVENTS = {
  admit: 'consult:admit',
  join: 'consult:join',
  invite: 'consult:invite',
  end: 'consult:end',
  subscribe: 'consult:subscribe',
  unsubscribe: 'consult:unsubscribe',
  aiHistory: 'consult:ai-history',
  aiStatus: 'consult:ai-status',
  authRefresh: AUTH_REFRESH,
} as const;

/** Server → client events of `/consult` (ConsultServerToClient). */
export const CONSULT_SERVER_EVENTS = {
  admitted: 'consult:admitted',
  ended: 'consult:ended',
  transcript: 'consult:transcript',
  emotion: 'consult:emotion',
  hubError: HUB_ERROR,
  hubDraining: HUB_DRAINING,
  sessionEnded: HUB_SESSION_ENDED,
} as const;

/**
 * Client → server events of `/notify` (NotifyClientToServer): a patient's
 * page says whether it is in view, and which notices it has shown.
 */
export const NOTIFY_CLIENT_EVENTS = {
  page: 'notify:page',
  seen: 'notify:seen',
} as const;

/** Server → client events of `/notify` (NotifyServerToClient). */
export const NOTIFY_SERVER_EVENTS = {
  notice: 'notify:notice',
  hubError: HUB_ERROR,
  sessionEnded: HUB_SESSION_ENDED,
} as const;

/** The names in one of the maps above: `EventNameOf<typeof QUEUE_CLIENT_EVENTS>` is `'queue:checkin' | …`. */
export type EventNameOf<Names extends Record<string, string>> = Names[keyof Names];
