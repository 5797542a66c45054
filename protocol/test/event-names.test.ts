import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CHAT_EVENT_ROLES, CHAT_NAMESPACE, type ChatClientToServer, type ChatServerToClient } from '../src/chat.js';
import { ChatPayloads } from '../src/chat-payloads.js';
import { CONSULT_EVENT_ROLES, CONSULT_NAMESPACE, type ConsultClientToServer, type ConsultServerToClient } from '../src/consult-events.js';
import { ConsultPayloads } from '../src/consult-payloads.js';
import {
  CHAT_CLIENT_EVENTS,
  CHAT_SERVER_EVENTS,
  CONSULT_CLIENT_EVENTS,
  CONSULT_SERVER_EVENTS,
  NAMESPACES,
  NOTIFY_SERVER_EVENTS,
  QUEUE_CLIENT_EVENTS,
  QUEUE_SERVER_EVENTS,
  type EventNameOf,
} from '../src/event-names.js';
import { QUEUE_EVENT_ROLES, QUEUE_NAMESPACE, type QueueClientToServer, type QueueServerToClient } from '../src/events.js';
import { NOTIFY_NAMESPACE, type NotifyServerToClient } from '../src/notify.js';
import { QueuePayloads } from '../src/queue.js';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
/** Compiles only when its type argument is `true`: `npm run typecheck` fails on a name that is in one list and not the other. */
function assertType<_Condition extends true>(): void {}

// Every event map has exactly the names of event-names.ts, both ways.
assertType<Equal<keyof QueueClientToServer, EventNameOf<typeof QUEUE_CLIENT_EVENTS>>>();
assertType<Equal<keyof QueueServerToClient, EventNameOf<typeof QUEUE_SERVER_EVENTS>>>();
assertType<Equal<keyof typeof QueuePayloads, EventNameOf<typeof QUEUE_CLIENT_EVENTS>>>();
assertType<Equal<keyof ChatClientToServer, EventNameOf<typeof CHAT_CLIENT_EVENTS>>>();
assertType<Equal<keyof ChatServerToClient, EventNameOf<typeof CHAT_SERVER_EVENTS>>>();
assertType<Equal<keyof typeof ChatPayloads, EventNameOf<typeof CHAT_CLIENT_EVENTS>>>();
assertType<Equal<keyof NotifyServerToClient, EventNameOf<typeof NOTIFY_SERVER_EVENTS>>>();
assertType<Equal<typeof CHAT_NAMESPACE, typeof NAMESPACES.chat>>();
assertType<Equal<keyof ConsultClientToServer, EventNameOf<typeof CONSULT_CLIENT_EVENTS>>>();
assertType<Equal<keyof ConsultServerToClient, EventNameOf<typeof CONSULT_SERVER_EVENTS>>>();
assertType<Equal<keyof typeof ConsultPayloads, EventNameOf<typeof CONSULT_CLIENT_EVENTS>>>();

const sorted = (names: Iterable<string>) => [...names].sort();

describe('event names', () => {
  it('are the names the namespaces and role tables use', () => {
    expect(QUEUE_NAMESPACE).toBe(NAMESPACES.queue);
    expect(CHAT_NAMESPACE).toBe(NAMESPACES.chat);
    expect(NOTIFY_NAMESPACE).toBe(NAMESPACES.notify);
    expect(sorted(Object.keys(QUEUE_EVENT_ROLES))).toEqual(sorted(Object.values(QUEUE_CLIENT_EVENTS)));
    expect(sorted(Object.keys(QueuePayloads))).toEqual(sorted(Object.values(QUEUE_CLIENT_EVENTS)));
    expect(sorted(Object.keys(CHAT_EVENT_ROLES))).toEqual(sorted(Object.values(CHAT_CLIENT_EVENTS)));
    expect(sorted(Object.keys(ChatPayloads))).toEqual(sorted(Object.values(CHAT_CLIENT_EVENTS)));
    expect(CONSULT_NAMESPACE).toBe(NAMESPACES.consult);
    expect(sorted(Object.keys(CONSULT_EVENT_ROLES))).toEqual(sorted(Object.values(CONSULT_CLIENT_EVENTS)));
    expect(sorted(Object.keys(ConsultPayloads))).toEqual(sorted(Object.values(CONSULT_CLIENT_EVENTS)));
  });

  it('are all documented in docs/protocol.md', () => {
    const doc = readFileSync(resolve(import.meta.dirname, '../../docs/protocol.md'), 'utf8');
    const names = [QUEUE_CLIENT_EVENTS, QUEUE_SERVER_EVENTS, CHAT_CLIENT_EVENTS, CHAT_SERVER_EVENTS, CONSULT_CLIENT_EVENTS, CONSULT_SERVER_EVENTS].flatMap((map) => Object.values(map));
    expect(names.filter((name) => !doc.includes(`\`${name}\``))).toEqual([]);
  });

  it('live in a module without imports, which k6 scripts load by path', () => {
    const source = readFileSync(resolve(import.meta.dirname, '../src/event-names.ts'), 'utf8');
    expect(source).not.toMatch(/^\s*(import|export\s+[^;]*\sfrom)\s/m);
  });
});
