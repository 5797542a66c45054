/**
 * k6: chat between patients and the clinic's staff on /chat — send → ack →
 * delivery.
 *
 *   k6 run -e HUB_URL=https://hub.example.jp -e STAFF_TOKEN=… -e DEPT=internal \
 *          -e CHAT_PAIRS=100 load-tests/k6/chat.ts
 *
 * Each VU iteration is one conversation. The staff token checks a patient
 * in on /queue (the ack brings the patient's own token); the patient and the
 * staff member each open /chat and join the patient's thread
 * (`patient.<ticketId>`); they take turns, MESSAGES messages one
 * MESSAGE_INTERVAL_SECONDS apart; then the ticket is cancelled. CHAT_PAIRS
 * conversations run at once for DURATION_SECONDS.
 *
 * Both ends of a conversation live in one VU, so one clock times them:
 * chat_ack_latency is send → the sender's ack (the message is stored),
 * chat_delivery_latency is send → chat:message at the other end.
 */
import exec from 'k6/execution';
import { Counter, Trend } from 'k6/metrics';
import type { Options } from 'k6/options';
import { patientThreadId, type ChatClientToServer, type ChatServerToClient } from '../../protocol/src/chat.ts';
import { CHAT_CLIENT_EVENTS, CHAT_SERVER_EVENTS, NAMESPACES, QUEUE_CLIENT_EVENTS } from '../../protocol/src/event-names.ts';
import type { QueueClientToServer, QueueServerToClient } from '../../protocol/src/events.ts';
import { authFor, hubUrls, numberEnv, requiredEnv } from './lib/env.ts';
import { openSocket, queueOpDuration, queueOpErrors, socketErrors } from './lib/metrics.ts';
import { queueAction } from './lib/queue-caller.ts';
import { Rendezvous, idPrefix, newRun, sleep, type RunData } from './lib/run.ts';
import { SocketIoError, type SocketIoClient } from './lib/socket-io.ts';

const HUB_URLS = hubUrls();
const STAFF_TOKEN = requiredEnv('STAFF_TOKEN', 'a staff or admin token of the clinic: it checks a patient in for each conversation and answers them');
const DEPT = requiredEnv('DEPT', 'the department the conversations’ patients check in to (each ticket is cancelled at the end)');
const CHAT_PAIRS = numberEnv('CHAT_PAIRS', 50, { min: 1, max: 100_000, integer: true });
const DURATION_SECONDS = numberEnv('DURATION_SECONDS', 60, { min: 1, max: 24 * 3600 });
const MESSAGES = numberEnv('MESSAGES', 20, { min: 1, max: 10_000, integer: true });
// The hub lets each connection send HUB_CHAT_MESSAGES_PER_SECOND (default 5) on average; each side sends every other interval.
const MESSAGE_INTERVAL_SECONDS = numberEnv('MESSAGE_INTERVAL_SECONDS', 1, { min: 0.1, max: 600 });
const DELIVERY_TIMEOUT_SECONDS = numberEnv('DELIVERY_TIMEOUT_SECONDS', 5, { min: 1, max: 600 });

/** chat:send sent → its ack at the sender: the message is in the thread's stream. */
const chatAckLatency = new Trend('chat_ack_latency', true);
/** chat:send sent → chat:message at the other end of the conversation. */
const chatDeliveryLatency = new Trend('chat_delivery_latency', true);
const chatDelivered = new Counter('chat_messages_delivered');
/** Acknowledged messages the other end had not received DELIVERY_TIMEOUT_SECONDS after the last one was sent. */
const chatMissing = new Counter('chat_missing_deliveries');
const chatDuplicates = new Counter('chat_duplicate_deliveries');
/** Failed chat requests, tagged `op` (join, send) and `code`. */
const chatErrors = new Counter('chat_errors');

export const options: Options = {
  scenarios: {
    conversations: {
      executor: 'constant-vus',
      vus: CHAT_PAIRS,
      duration: `${DURATION_SECONDS}s`,
      // A conversation that has begun is finished, not cut: its ticket is cancelled at the end.
      gracefulStop: `${Math.ceil(MESSAGES * MESSAGE_INTERVAL_SECONDS + DELIVERY_TIMEOUT_SECONDS) + 30}s`,
    },
  },
  thresholds: {
    [chatDeliveryLatency.name]: ['p(99)<100'],
    [chatAckLatency.name]: ['p(99)<100'],
    [chatDelivered.name]: ['count>0'],
    [chatMissing.name]: ['count==0'],
    [chatDuplicates.name]: ['count==0'],
    [chatErrors.name]: ['count==0'],
    [`${queueOpDuration.name}{op:checkin}`]: ['p(99)<20'],
    [queueOpErrors.name]: ['count==0'],
    [socketErrors.name]: ['count==0'],
  },
  summaryTrendStats: ['min', 'med', 'p(95)', 'p(99)', 'max', 'count'],
};

type ChatSocket = SocketIoClient<ChatServerToClient, ChatClientToServer>;
type Side = 'patient' | 'staff';

export function setup(): RunData {
  return newRun();
}

export default async function conversation(run: RunData): Promise<void> {
  const url = HUB_URLS[exec.vu.idInTest % HUB_URLS.length]!;
  const prefix = idPrefix(run);
  const queue = await openSocket<QueueServerToClient, QueueClientToServer>('staff', { url, nsp: NAMESPACES.queue, auth: authFor(STAFF_TOKEN) });
  if (!queue) return;
  const checkedIn = await queueAction(queue, QUEUE_CLIENT_EVENTS.checkin, { dept: DEPT, requestId: `${prefix}-checkin` });
  if (!checkedIn) {
    queue.close();
    return;
  }
  const ticketId = checkedIn.result.event.ticket.id;
  const threadId = patientThreadId(ticketId);
  const [patient, staff] = await Promise.all([
    openSocket<ChatServerToClient, ChatClientToServer>('patient', { url, nsp: NAMESPACES.chat, auth: { token: checkedIn.result.patientToken } }),
    openSocket<ChatServerToClient, ChatClientToServer>('staff', { url, nsp: NAMESPACES.chat, auth: authFor(STAFF_TOKEN) }),
  ]);
  if (patient && staff && (await join(patient, threadId)) && (await join(staff, threadId))) {
    await talk({ patient, staff }, threadId, prefix);
  }
  patient?.close();
  staff?.close();
  await queueAction(queue, QUEUE_CLIENT_EVENTS.cancel, { ticketId, requestId: `${prefix}-cancel` });
  queue.close();
}

async function join(socket: ChatSocket, threadId: string): Promise<boolean> {
  try {
    const { ack } = await socket.request(CHAT_CLIENT_EVENTS.join, { threadId });
    if (ack.ok) return true;
    chatErrors.add(1, { op: 'join', code: ack.error.code });
  } catch (error) {
    chatErrors.add(1, { op: 'join', code: error instanceof SocketIoError ? error.code : 'ERROR' });
  }
  return false;
}

/** The two sides take turns; each message is timed from its send to its ack and to its arrival at the other side. */
async function talk(sides: Record<Side, ChatSocket>, threadId: string, prefix: string): Promise<void> {
  const deliveries = new Rendezvous<string>((ms) => chatDeliveryLatency.add(ms));
  /** Which side each message is for, by clientMessageId. */
  const recipients = new Map<string, Side>();
  const acked = new Set<string>();
  for (const side of ['patient', 'staff'] as const) {
    sides[side].on(CHAT_SERVER_EVENTS.message, (message, receivedAt) => {
      // Each side also gets its own messages back: only the other side's count as deliveries.
      if (message.threadId !== threadId || recipients.get(message.clientMessageId) !== side) return;
      if (deliveries.arrivalsOf(message.clientMessageId) > 0) {
        chatDuplicates.add(1);
        return;
      }
      deliveries.arrived(message.clientMessageId, receivedAt);
      chatDelivered.add(1);
    });
  }
  const sends: Promise<void>[] = [];
  for (let n = 0; n < MESSAGES; n++) {
    const from: Side = n % 2 === 0 ? 'patient' : 'staff';
    const clientMessageId = `${prefix}-m${n}`;
    recipients.set(clientMessageId, from === 'patient' ? 'staff' : 'patient');
    const sentAt = Date.now();
    deliveries.sent(clientMessageId, sentAt);
    // Not awaited: the next message leaves on time even when an ack is slow.
    sends.push(send(sides[from], { threadId, clientMessageId, text: `k6 ${from} ${n + 1}/${MESSAGES}: 本日の受付について確認させてください。` }, sentAt, acked));
    if (n < MESSAGES - 1) await sleep(MESSAGE_INTERVAL_SECONDS * 1000);
  }
  await Promise.all(sends);
  const undelivered = () => deliveries.pending().filter(([id]) => acked.has(id));
  const deadline = Date.now() + DELIVERY_TIMEOUT_SECONDS * 1000;
  while (undelivered().length > 0 && Date.now() < deadline) await sleep(20);
  const missing = undelivered().length;
  if (missing > 0) chatMissing.add(missing);
}

async function send(socket: ChatSocket, payload: { threadId: string; clientMessageId: string; text: string }, sentAt: number, acked: Set<string>): Promise<void> {
  try {
    const { ack, receivedAt } = await socket.request(CHAT_CLIENT_EVENTS.send, payload);
    if (!ack.ok) {
      chatErrors.add(1, { op: 'send', code: ack.error.code });
      return;
    }
    chatAckLatency.add(receivedAt - sentAt);
    acked.add(payload.clientMessageId);
  } catch (error) {
    chatErrors.add(1, { op: 'send', code: error instanceof SocketIoError ? error.code : 'ERROR' });
  }
}
