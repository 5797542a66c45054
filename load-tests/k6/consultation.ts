/**
 * k6: video consultations — `consult:admit` → the patient's page told
 * (`consult:admitted` on /consult), then the media-server's signalling:
 * `join` → the patient's first WebRTC transport (on mediasoup, the default
 * engine: the send transport the client creates; on werift: the server's
 * first offer).
 *
 *   k6 run -e HUB_URL=https://hub.example.jp -e STAFF_TOKEN=… -e DOCTOR_TOKEN=… \
 *          -e DEPT=online -e PATIENTS=50 load-tests/k6/consultation.ts
 *
 * One VU is the online department: the reception, a doctor in each of its
 * rooms (DEPT's, or ROOMS) and the patients waiting at home. It checks
 * PATIENTS patients in to DEPT and opens each one's ticket page on /consult
 * with the patient token of its check-in ack (spread over the HUB_URL
 * nodes); they wait. Each doctor then admits the patients one after the
 * other, by ticket (`consult:admit { dept, room, ticketId }`), one every
 * ADMIT_INTERVAL_SECONDS (or when the last consultation is over, if later).
 * The patient's page gets `consult:admitted` with its room pass and, as its
 * "Join" button does, asks `consult:join {}` for a fresh pass (the ticket
 * starts); the patient opens the media-server's signalling WebSocket
 * (`<mediaUrl>/signal`, plain JSON) and sends its `join` with the room
 * token; the server answers `joined`, which names its engine. On mediasoup
 * the patient then asks `transport-create { direction: "send" }`, answered
 * by the transport's ICE and DTLS parameters; on werift the server sends its
 * first `offer`, which carries them. k6 cannot do WebRTC, so the patient goes
 * no further: it leaves (`leave`, the server closes the connection), the
 * doctor ends the consultation (`consult:end`: the ticket is done, the
 * media-server closes the room) and the page closes.
 *
 * Both ends live in this VU — k6 VUs share no memory, so a send in one VU
 * cannot be paired with an arrival in another — and one clock times them:
 * consult_admit_latency is consult:admit sent → consult:admitted on the
 * patient's page (through the hub's Socket.IO adapter when the page is on
 * another hub node); consult_transport_latency is signalling join sent →
 * the first transport's ICE candidates and DTLS parameters (token check,
 * room, the transport on the media-server; no trickle on either engine).
 *
 * Patients are admitted by ticket, so the department's other patients are
 * never touched. At the end the queue is read back from the hub: a patient
 * of this run still in it (never admitted, or never finished) counts in
 * consult_patients_left_waiting and is then cancelled or ended.
 */
import { Counter, Trend } from 'k6/metrics';
import type { Options } from 'k6/options';
import type { ConsultAdmitted, ConsultClientToServer, ConsultServerToClient } from '../../protocol/src/consult-events.ts';
import { CONSULT_CLIENT_EVENTS, CONSULT_SERVER_EVENTS, NAMESPACES, QUEUE_CLIENT_EVENTS } from '../../protocol/src/event-names.ts';
import type { CheckinResult, QueueClientToServer, QueueServerToClient } from '../../protocol/src/events.ts';
import { authFor, hubUrls, listEnv, numberEnv, optionalEnv, requiredEnv } from './lib/env.ts';
import type { MediaTransportInfo } from '../../protocol/src/media-signal.ts';
import { MediaSignalError, MediaSignalSocket } from './lib/media-signal.ts';
import { abortTest, openSocket, queueOpDuration, queueOpErrors, socketErrors, timedRequest, warnOnce } from './lib/metrics.ts';
import { QueueCaller, queueAction, type QueueSocket } from './lib/queue-caller.ts';
import { Arrival, idPrefix, newRun, sleep, type RunData } from './lib/run.ts';
import type { PayloadOf, SocketIoClient } from './lib/socket-io.ts';

const HUB_URLS = hubUrls();
const STAFF_TOKEN = requiredEnv('STAFF_TOKEN', 'a staff or admin token of the clinic: it checks the patients in (and admits them unless DOCTOR_TOKEN is given)');
const DOCTOR_TOKEN = optionalEnv('DOCTOR_TOKEN') ?? STAFF_TOKEN;
const DEPT = requiredEnv('DEPT', 'an online department of the clinic ("online": true): its patients are checked in, admitted and finished');
const ROOMS = listEnv('ROOMS');
const PATIENTS = numberEnv('PATIENTS', 20, { min: 1, max: 10_000, integer: true });
const ADMIT_INTERVAL_SECONDS = numberEnv('ADMIT_INTERVAL_SECONDS', 1, { min: 0, max: 600 });
const TIMEOUT_SECONDS = numberEnv('TIMEOUT_SECONDS', 10, { min: 1, max: 600 });
const TIMEOUT_MS = TIMEOUT_SECONDS * 1000;

/** consult:admit sent → consult:admitted on the patient's page. */
const admitLatency = new Trend('consult_admit_latency', true);
/** Signalling join sent → the first transport's ICE and DTLS parameters (mediasoup: transport-create's ack; werift: the first offer). */
const transportLatency = new Trend('consult_transport_latency', true);
/** Ack round trip of each consult action at the client, tagged `op` (admit, join, end). */
const consultOpDuration = new Trend('consult_op_duration', true);
/** Transports received, tagged `engine` (mediasoup, werift). */
const transportsReady = new Counter('consult_transports_ready');
/**
 * What failed in a consultation, tagged `op` and `code`: admit, join, end
 * (the hub's error code, ACK_TIMEOUT …); admitted (TIMEOUT, DUPLICATE,
 * WRONG_CONSULTATION); transport (the media-server's error code, TIMEOUT,
 * CLOSED, BAD_TRANSPORT, BAD_OFFER, UNKNOWN_ENGINE); leave (TIMEOUT: the
 * server did not close).
 */
const consultErrors = new Counter('consult_errors');
/** This run's patients still in the queue at the end (waiting, called or in consultation). */
const patientsLeftWaiting = new Counter('consult_patients_left_waiting');

export const options: Options = {
  scenarios: {
    department: {
      executor: 'per-vu-iterations',
      vus: 1,
      iterations: 1,
      // Each consultation takes well under 2 s unless something times out.
      maxDuration: `${Math.ceil(PATIENTS * (ADMIT_INTERVAL_SECONDS + 2) + 4 * TIMEOUT_SECONDS) + 120}s`,
    },
  },
  thresholds: {
    [admitLatency.name]: ['p(99)<100'],
    [transportLatency.name]: ['p(99)<100'],
    [`${consultOpDuration.name}{op:admit}`]: ['p(99)<100'],
    [`${consultOpDuration.name}{op:join}`]: ['p(99)<100'],
    [`${consultOpDuration.name}{op:end}`]: ['p(99)<100'],
    [transportsReady.name]: ['count>0'],
    [consultErrors.name]: ['count==0'],
    [patientsLeftWaiting.name]: ['count==0'],
    [`${queueOpDuration.name}{op:checkin}`]: ['p(99)<20'],
    [queueOpErrors.name]: ['count==0'],
    [socketErrors.name]: ['count==0'],
  },
  summaryTrendStats: ['min', 'med', 'p(95)', 'p(99)', 'max', 'count'],
};

type ConsultSocket = SocketIoClient<ConsultServerToClient, ConsultClientToServer>;
type ConsultEventName = keyof ConsultClientToServer & string;

interface Patient {
  ticketId: string;
  /** The ticket page's /consult socket, with the patient's own token. */
  page: ConsultSocket;
  admitted: Arrival<{ admitted: ConsultAdmitted; receivedAt: number }>;
}

export function setup(): RunData {
  return newRun();
}

export default async function onlineDepartment(run: RunData): Promise<void> {
  const url = HUB_URLS[0]!;
  const staff: QueueSocket | null = await openSocket<QueueServerToClient, QueueClientToServer>('staff', { url, nsp: NAMESPACES.queue, auth: authFor(STAFF_TOKEN) });
  if (!staff) return abortTest('the staff socket could not connect (see the warning above and socket_errors)');
  const { caller, snapshot } = await QueueCaller.prepare(staff, { dept: DEPT, rooms: ROOMS, requestPrefix: idPrefix(run), checkinPayload: () => ({ dept: DEPT }) });
  if (!snapshot.clinic.departments.find((d) => d.id === DEPT)?.online) {
    staff.close();
    return abortTest(`DEPT=${DEPT} is not an online department ("online": true in its clinic file): its patients cannot be admitted to a video consultation`);
  }
  const doctor = await openSocket<ConsultServerToClient, ConsultClientToServer>('doctor', { url, nsp: NAMESPACES.consult, auth: authFor(DOCTOR_TOKEN) });
  if (!doctor) {
    staff.close();
    return abortTest('the doctor socket could not connect to /consult (see the warning above and socket_errors)');
  }

  // The waiting room: every patient is checked in and on their ticket page before the first admission.
  const ticketIds: string[] = [];
  const pages: Promise<Patient | null>[] = [];
  for (let i = 0; i < PATIENTS; i++) {
    const checkin = await caller.checkin();
    if (!checkin) continue;
    ticketIds.push(checkin.event.ticket.id);
    pages.push(openPage(checkin, HUB_URLS[i % HUB_URLS.length]!));
  }
  const waiting = (await Promise.all(pages)).filter((p): p is Patient => p !== null);

  // A doctor per room, taking the next patient in line; the rooms start spread over one interval, not all at once.
  const line = [...waiting];
  const doctorInRoom = async (room: string, index: number) => {
    await sleep((index * ADMIT_INTERVAL_SECONDS * 1000) / caller.rooms.length);
    for (let patient = line.shift(); patient; patient = line.shift()) {
      const admittedAt = Date.now();
      await seePatient(doctor, patient, room, caller);
      if (line.length > 0) await sleep(admittedAt + ADMIT_INTERVAL_SECONDS * 1000 - Date.now());
    }
  };
  await Promise.all(caller.rooms.map(doctorInRoom));

  await leaveNoPatientBehind(staff, doctor, caller, ticketIds);
  for (const patient of waiting) patient.page.close();
  doctor.close();
  staff.close();
}

/** Opens a patient's ticket page on /consult; it records the consult:admitted push whenever it comes. Null when it cannot connect (in socket_errors). */
async function openPage(checkin: CheckinResult, url: string): Promise<Patient | null> {
  const page = await openSocket<ConsultServerToClient, ConsultClientToServer>('patient', { url, nsp: NAMESPACES.consult, auth: { token: checkin.patientToken } });
  if (!page) return null;
  const patient: Patient = { ticketId: checkin.event.ticket.id, page, admitted: new Arrival() };
  page.on(CONSULT_SERVER_EVENTS.admitted, (admitted, receivedAt) => {
    if (!patient.admitted.arrive({ admitted, receivedAt })) consultErrors.add(1, { op: 'admitted', code: 'DUPLICATE' });
  });
  return patient;
}

/** One consultation: admit, the page told, the patient to its first transport and out, the consultation ended. */
async function seePatient(doctor: ConsultSocket, patient: Patient, room: string, caller: QueueCaller): Promise<void> {
  const admit = await consultAction(doctor, CONSULT_CLIENT_EVENTS.admit, { dept: DEPT, room, ticketId: patient.ticketId, requestId: caller.requestId() });
  // Not admitted: the patient is still waiting, and is counted and cancelled at the end.
  if (!admit) return;
  caller.calledElsewhere(patient.ticketId);
  const { consultation } = admit.result;
  // The push can overtake the admit's ack: the page has recorded it either way.
  const pushed = await patient.admitted.wait(TIMEOUT_MS);
  if (!pushed) {
    consultErrors.add(1, { op: 'admitted', code: 'TIMEOUT' });
  } else if (pushed.admitted.consultation.id !== consultation.id) {
    consultErrors.add(1, { op: 'admitted', code: 'WRONG_CONSULTATION' });
  } else {
    admitLatency.add(pushed.receivedAt - admit.sentAt);
    await enterRoom(patient.page);
  }
  await consultAction(doctor, CONSULT_CLIENT_EVENTS.end, { consult: consultation.id });
  patient.page.close();
}

/** The patient presses "Join": a fresh pass from the hub, then the media-server's signalling up to its first transport, then out. */
async function enterRoom(page: ConsultSocket): Promise<void> {
  const joined = await consultAction(page, CONSULT_CLIENT_EVENTS.join, {});
  if (!joined) return;
  const { pass } = joined.result;
  let signal: MediaSignalSocket;
  try {
    signal = await MediaSignalSocket.open(pass.mediaUrl, { tags: { role: 'signal' }, timeoutMs: TIMEOUT_MS });
  } catch (error) {
    const code = error instanceof MediaSignalError ? error.code : 'ERROR';
    socketErrors.add(1, { role: 'signal', code });
    warnOnce(`signal:${code}`, `signalling socket to ${pass.mediaUrl} failed: ${(error as Error).message}`);
    return;
  }
  const sentAt = Date.now();
  signal.send({ type: 'join', id: 'join', token: pass.token });
  try {
    const { message: joined } = await signal.next('joined', TIMEOUT_MS);
    const engine = joined.media.engine;
    const transport = await firstTransport(signal, engine);
    if (transport.problem) {
      consultErrors.add(1, { op: 'transport', code: transport.problem });
    } else {
      transportLatency.add(transport.receivedAt - sentAt, { engine });
      transportsReady.add(1, { engine });
    }
  } catch (error) {
    consultErrors.add(1, { op: 'transport', code: error instanceof MediaSignalError ? error.code : 'ERROR' });
    // Not in the room (refused, or the server is stuck): nothing to leave.
    signal.close();
    return;
  }
  if (!(await signal.leave(TIMEOUT_MS))) consultErrors.add(1, { op: 'leave', code: 'TIMEOUT' });
}

/**
 * The patient's first WebRTC transport, when its parameters arrived, or what
 * was wrong with them. mediasoup: the client asks for its send transport;
 * werift: the server's first offer carries the transport (SDP with its
 * candidates).
 */
async function firstTransport(signal: MediaSignalSocket, engine: string): Promise<{ receivedAt: number; problem?: string }> {
  if (engine === 'mediasoup') {
    signal.send({ type: 'transport-create', id: 'send-transport', direction: 'send' });
    // Acks of what was sent before (the join's) come first.
    const deadline = Date.now() + TIMEOUT_MS;
    for (;;) {
      const { message, receivedAt } = await signal.next('ack', Math.max(1, deadline - Date.now()));
      if (message.id !== 'send-transport') continue;
      const result = message.result as Partial<MediaTransportInfo> | undefined;
      const complete = typeof result?.id === 'string' && (result.iceCandidates?.length ?? 0) > 0 && result.dtlsParameters !== undefined;
      return complete ? { receivedAt } : { receivedAt, problem: 'BAD_TRANSPORT' };
    }
  }
  if (engine === 'werift') {
    const { message, receivedAt } = await signal.next('offer', TIMEOUT_MS);
    return message.rev === 1 && message.sdp.startsWith('v=0') ? { receivedAt } : { receivedAt, problem: 'BAD_OFFER' };
  }
  return { receivedAt: Date.now(), problem: 'UNKNOWN_ENGINE' };
}

/**
 * Reads the queue back from the hub: this run's patients still in it are
 * counted in consult_patients_left_waiting, then their consultations ended
 * (called or in consultation) or their tickets cancelled (waiting).
 */
async function leaveNoPatientBehind(staff: QueueSocket, doctor: ConsultSocket, caller: QueueCaller, ticketIds: string[]): Promise<void> {
  const synced = await queueAction(staff, QUEUE_CLIENT_EVENTS.sync, {});
  if (synced && synced.result.mode === 'snapshot') {
    const ours = new Set(ticketIds);
    const left = synced.result.snapshot.tickets.filter((t) => ours.has(t.id));
    if (left.length > 0) patientsLeftWaiting.add(left.length);
    for (const ticket of left.filter((t) => t.status !== 'waiting')) {
      caller.calledElsewhere(ticket.id);
      await consultAction(doctor, CONSULT_CLIENT_EVENTS.end, { ticketId: ticket.id });
    }
  }
  await caller.finish();
}

function consultAction<Event extends ConsultEventName>(socket: ConsultSocket, event: Event, payload: PayloadOf<ConsultClientToServer[Event]>) {
  return timedRequest(socket, event, payload, { duration: consultOpDuration, errors: consultErrors });
}
