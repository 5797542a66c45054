/**
 * k6: in-app notifications on /notify — queue call → `notify:notice`.
 *
 *   k6 run -e HUB_URL=https://hub.example.jp -e STAFF_TOKEN=… -e DEPT=internal \
 *          -e PATIENTS=200 -e CALL_RATE=2 load-tests/k6/notify.ts
 *
 * One VU is the reception and the waiting patients: it checks PATIENTS
 * patients in with `notify: { channel: "in_app" }`, opens each one's /notify
 * socket with the patient token of its check-in ack, and then presses "next
 * patient" CALL_RATE times a second for DURATION_SECONDS, checking one more
 * patient in per call. The hub's notification worker tells each called
 * patient (`queue_called`, urgent: never held by quiet hours) on their own
 * socket; the "3 ahead" and "1 ahead" notices arrive on the way and are
 * counted by kind. A called patient walks in when their notice arrives (or
 * after NOTICE_TIMEOUT_SECONDS), and only then is their consultation
 * started: the worker drops a "called" notice for a ticket that is no
 * longer called. So each room is busy from the call to the notice, and
 * CALL_RATE must stay below rooms ÷ notice latency (else NO_FREE_ROOM).
 *
 * notify_notice_latency is call-next sent → queue_called notice received,
 * both on this VU's clock: the hub's commit, the worker's queue watcher, the
 * BullMQ job, the Socket.IO emitter through Redis and the hub node's socket.
 *
 * The department must be one only this test uses: a call to a patient this
 * VU did not check in cannot be timed (notify_untracked_calls).
 */
import { Counter, Trend } from 'k6/metrics';
import type { Options } from 'k6/options';
import { clearTimeout, setTimeout } from 'k6/timers';
import { NAMESPACES, NOTIFY_SERVER_EVENTS } from '../../protocol/src/event-names.ts';
import type { CheckinResult } from '../../protocol/src/events.ts';
import type { NotifyKind, NotifyServerToClient } from '../../protocol/src/notify.ts';
import { authFor, hubUrls, listEnv, numberEnv, requiredEnv } from './lib/env.ts';
import { abortTest, openSocket, queueOpDuration, queueOpErrors, socketErrors } from './lib/metrics.ts';
import { QueueCaller, waitingIn, type QueueSocket } from './lib/queue-caller.ts';
import { Rendezvous, idPrefix, newRun, sleep, type RunData } from './lib/run.ts';
import type { SocketIoClient } from './lib/socket-io.ts';

const HUB_URLS = hubUrls();
const STAFF_TOKEN = requiredEnv('STAFF_TOKEN', 'a staff or admin token of the clinic: it checks patients in and calls them');
const DEPT = requiredEnv('DEPT', 'a department only this test uses: its patients are checked in, called and cancelled');
const ROOMS = listEnv('ROOMS');
const PATIENTS = numberEnv('PATIENTS', 50, { min: 1, max: 50_000, integer: true });
const CALL_RATE = numberEnv('CALL_RATE', 1, { min: 0.1, max: 100 });
const DURATION_SECONDS = numberEnv('DURATION_SECONDS', 60, { min: 1, max: 24 * 3600 });
const NOTICE_TIMEOUT_SECONDS = numberEnv('NOTICE_TIMEOUT_SECONDS', 10, { min: 1, max: 600 });

const CALLED: NotifyKind = 'queue_called';

/** call-next sent → the called patient's queue_called notice received. */
const noticeLatency = new Trend('notify_notice_latency', true);
/** Every notice received, tagged `kind`. */
const noticesReceived = new Counter('notify_notices_received');
/** Calls of this VU's patients whose queue_called notice had not come NOTICE_TIMEOUT_SECONDS after the last call. */
const noticesMissing = new Counter('notify_missing_notices');
const noticeDuplicates = new Counter('notify_duplicate_notices');
/** Calls to patients this VU did not check in: another client uses the department, and those calls are not timed. */
const untrackedCalls = new Counter('notify_untracked_calls');

export const options: Options = {
  scenarios: {
    reception: {
      executor: 'per-vu-iterations',
      vus: 1,
      iterations: 1,
      maxDuration: `${Math.ceil(DURATION_SECONDS + NOTICE_TIMEOUT_SECONDS + PATIENTS / 10) + 120}s`,
    },
  },
  thresholds: {
    [noticeLatency.name]: ['p(99)<100'],
    [noticesReceived.name]: ['count>0'],
    [noticesMissing.name]: ['count==0'],
    [noticeDuplicates.name]: ['count==0'],
    [untrackedCalls.name]: ['count==0'],
    [`${queueOpDuration.name}{op:call-next}`]: ['p(99)<20'],
    [`${queueOpDuration.name}{op:checkin}`]: ['p(99)<20'],
    [queueOpErrors.name]: ['count==0'],
    [socketErrors.name]: ['count==0'],
  },
  summaryTrendStats: ['min', 'med', 'p(95)', 'p(99)', 'max', 'count'],
};

type NotifySocket = SocketIoClient<NotifyServerToClient, Record<string, never>>;

export function setup(): RunData {
  return newRun();
}

export default async function reception(run: RunData): Promise<void> {
  const url = HUB_URLS[0]!;
  const socket: QueueSocket | null = await openSocket('staff', { url, nsp: NAMESPACES.queue, auth: authFor(STAFF_TOKEN) });
  if (!socket) return abortTest('the staff socket could not connect (see the warning above and socket_errors)');
  const notices = new Rendezvous<string>((ms) => noticeLatency.add(ms));
  /** This VU's patients by ticket id: their /notify socket once it is open (kept to the end, so a second notice would show), null before. */
  const patients = new Map<string, NotifySocket | null>();
  const connecting: Promise<void>[] = [];
  /** Called patients still on their way, by ticket id: resolving lets the caller start their consultation. */
  const walkingIn = new Map<string, () => void>();

  const connectPatient = async (checkin: CheckinResult): Promise<void> => {
    const ticketId = checkin.event.ticket.id;
    patients.set(ticketId, null);
    const patient = await openSocket<NotifyServerToClient, Record<string, never>>('patient', {
      url: HUB_URLS[patients.size % HUB_URLS.length]!,
      nsp: NAMESPACES.notify,
      auth: { token: checkin.patientToken },
    });
    if (!patient) return;
    patients.set(ticketId, patient);
    patient.on(NOTIFY_SERVER_EVENTS.notice, (notice, receivedAt) => {
      noticesReceived.add(1, { kind: notice.kind });
      if (notice.kind !== CALLED) return;
      if (notices.arrivalsOf(ticketId) > 0) {
        noticeDuplicates.add(1);
        return;
      }
      notices.arrived(ticketId, receivedAt);
      walkingIn.get(ticketId)?.();
    });
  };

  const { caller, snapshot } = await QueueCaller.prepare(socket, {
    dept: DEPT,
    rooms: ROOMS,
    requestPrefix: idPrefix(run),
    checkinPayload: () => ({ dept: DEPT, notify: { channel: 'in_app', locale: 'ja' } }),
    onCheckedIn: (checkin) => {
      if (checkin.notify && !checkin.notify.ok) {
        abortTest(`the hub did not take the in-app contact (${checkin.notify.error.code}): is its notification worker running with in-app on (NOTIFY_IN_APP)?`);
      }
      connecting.push(connectPatient(checkin));
    },
    onCalled: (event, sentAt) => {
      if (patients.has(event.ticket.id)) notices.sent(event.ticket.id, sentAt);
      else untrackedCalls.add(1);
    },
    beforeStart: (event) =>
      new Promise<void>((resolve) => {
        const ticketId = event.ticket.id;
        if (!patients.has(ticketId) || notices.arrivalsOf(ticketId) > 0) return resolve();
        const timer = setTimeout(() => walkingIn.get(ticketId)?.(), NOTICE_TIMEOUT_SECONDS * 1000);
        walkingIn.set(ticketId, () => {
          clearTimeout(timer);
          walkingIn.delete(ticketId);
          resolve();
        });
      }),
  });
  const others = waitingIn(snapshot, DEPT);
  if (others.length > 0) {
    socket.close();
    return abortTest(`DEPT=${DEPT} has ${others.length} waiting patients this test did not check in: give it a department only the test uses (or cancel them first)`);
  }

  for (let i = 0; i < PATIENTS; i++) await caller.checkin();
  // Every patient listens before the first call: an in-app notice to nobody is not kept.
  await Promise.all(connecting);
  await caller.run(CALL_RATE, Date.now() + DURATION_SECONDS * 1000);
  const deadline = Date.now() + NOTICE_TIMEOUT_SECONDS * 1000;
  while (notices.pending().length > 0 && Date.now() < deadline) await sleep(50);
  const missing = notices.pending().length;
  if (missing > 0) noticesMissing.add(missing);

  await Promise.all(connecting);
  for (const patient of patients.values()) patient?.close();
  await caller.finish();
  socket.close();
}
