/**
 * k6: waiting-room display fan-out. Many display screens follow one
 * clinic's queue on /queue while one staff VU presses "next patient" at a
 * steady rate; every screen times every call it shows.
 *
 *   k6 run -e HUB_URL=https://hub.example.jp -e STAFF_TOKEN=… -e DISPLAY_TOKEN=… -e DEPT=internal \
 *          -e DISPLAYS=5000 -e DISPLAYS_PER_VU=10 load-tests/k6/display-fanout.ts
 *
 * Timeline (seconds after setup): displays connect, spread over
 * RAMP_SECONDS; the staff VU calls from RAMP_SECONDS for DURATION_SECONDS
 * (each call also starts the called patient and checks one more in), then
 * cancels and finishes the patients it checked in; SETTLE_SECONDS after the
 * last call every display asks the hub what it missed and disconnects.
 *
 * Latency, two ways (load-tests/README.md, "How latency is measured"):
 * - display_call_latency, on every display: frame received (k6's clock)
 *   minus the event's `at`, the commit time on the Redis clock. It assumes
 *   the two clocks agree (NTP); redis_clock_skew_min shows how far they
 *   provably do not, from the staff's call-next acks.
 * - display_call_latency_probe, on PROBE_DISPLAYS displays held by the staff
 *   VU itself: call-next sent → ticket.called received, one clock, no
 *   assumption; it also includes the send → commit part.
 */
import exec from 'k6/execution';
import { Counter, Trend } from 'k6/metrics';
import type { Options } from 'k6/options';
import { NAMESPACES, QUEUE_CLIENT_EVENTS, QUEUE_SERVER_EVENTS } from '../../protocol/src/event-names.ts';
import type { QueueClientToServer, QueueServerToClient } from '../../protocol/src/events.ts';
import type { QueueEvent, SyncResult } from '../../protocol/src/queue.ts';
import { authFor, hubUrls, listEnv, numberEnv, requiredEnv } from './lib/env.ts';
import { abortTest, openSocket, queueOpDuration, queueOpErrors, socketErrors } from './lib/metrics.ts';
import { QueueCaller, queueAction, waitingIn, type QueueSocket } from './lib/queue-caller.ts';
import { Rendezvous, idPrefix, newRun, sleep, type RunData } from './lib/run.ts';

const HUB_URLS = hubUrls();
const STAFF_TOKEN = requiredEnv('STAFF_TOKEN', 'a staff or admin token of the clinic: it checks patients in and calls them');
const DISPLAY_TOKEN = requiredEnv('DISPLAY_TOKEN', 'a display token of the clinic, shared by every simulated screen');
const DEPT = requiredEnv('DEPT', 'the department whose patients are called (a test department: its waiting patients get called)');
const ROOMS = listEnv('ROOMS');
const DISPLAYS = numberEnv('DISPLAYS', 1000, { min: 1, max: 200_000, integer: true });
const DISPLAYS_PER_VU = numberEnv('DISPLAYS_PER_VU', 1, { min: 1, max: 1000, integer: true });
const PROBE_DISPLAYS = numberEnv('PROBE_DISPLAYS', 2, { min: 0, max: 100, integer: true });
const CALL_RATE = numberEnv('CALL_RATE', 2, { min: 0.1, max: 200 });
const RAMP_SECONDS = numberEnv('RAMP_SECONDS', 30, { min: 0, max: 3600 });
const DURATION_SECONDS = numberEnv('DURATION_SECONDS', 60, { min: 1, max: 24 * 3600 });
const SETTLE_SECONDS = numberEnv('SETTLE_SECONDS', 5, { min: 1, max: 600 });
const DISPLAY_VUS = Math.ceil(DISPLAYS / DISPLAYS_PER_VU);

/** ticket.called: frame received minus the event's commit time `at` (Redis clock). Every display. */
const displayCallLatency = new Trend('display_call_latency', true);
/** ticket.called: call-next sent → received, on the staff VU's own probe displays (one clock). */
const probeCallLatency = new Trend('display_call_latency_probe', true);
const displayCalls = new Counter('display_calls_received');
/** Queue events a display never got live: gaps in the sequence numbers, and what the last queue:sync still had to give. */
const displayMissed = new Counter('display_missed_events');
/** Queue events a display got twice (or out of order). */
const displayDuplicates = new Counter('display_duplicate_events');
/** The least the Redis clock and k6's clock differ by, as each call-next ack proves; display_call_latency is off by the real difference. */
const clockSkew = new Trend('redis_clock_skew_min', true);

export const options: Options = {
  scenarios: {
    displays: {
      executor: 'per-vu-iterations',
      vus: DISPLAY_VUS,
      iterations: 1,
      maxDuration: `${Math.ceil(RAMP_SECONDS + DURATION_SECONDS + SETTLE_SECONDS) + 60}s`,
    },
    staff: {
      executor: 'per-vu-iterations',
      vus: 1,
      iterations: 1,
      startTime: `${RAMP_SECONDS}s`,
      maxDuration: `${Math.ceil(DURATION_SECONDS + SETTLE_SECONDS) + 60}s`,
    },
  },
  thresholds: {
    [displayCallLatency.name]: ['p(99)<100'],
    [probeCallLatency.name]: ['p(99)<100'],
    [displayCalls.name]: ['count>0'],
    [displayMissed.name]: ['count==0'],
    [displayDuplicates.name]: ['count==0'],
    [`${queueOpDuration.name}{op:call-next}`]: ['p(99)<20'],
    [`${queueOpDuration.name}{op:checkin}`]: ['p(99)<20'],
    [queueOpErrors.name]: ['count==0'],
    [socketErrors.name]: ['count==0'],
    [clockSkew.name]: ['med<5'],
  },
  summaryTrendStats: ['min', 'med', 'p(95)', 'p(99)', 'max', 'count'],
};

export function setup(): RunData {
  return newRun();
}

export default async function (run: RunData): Promise<void> {
  if (exec.scenario.name === 'staff') await staff(run);
  else await displays(run);
}

/** When every display asks what it missed and leaves. */
const endOf = (run: RunData) => run.t0 + (RAMP_SECONDS + DURATION_SECONDS + SETTLE_SECONDS) * 1000;

/** DISPLAYS_PER_VU screens (fewer in the last VU), connected at this VU's share of the ramp, held to the end. */
async function displays(run: RunData): Promise<void> {
  const index = exec.scenario.iterationInTest;
  const first = index * DISPLAYS_PER_VU;
  const count = Math.max(0, Math.min(DISPLAYS_PER_VU, DISPLAYS - first));
  await sleep(run.t0 + (index / DISPLAY_VUS) * RAMP_SECONDS * 1000 - Date.now());
  const screens = await Promise.all(Array.from({ length: count }, (_, i) => Display.open(HUB_URLS[(first + i) % HUB_URLS.length]!)));
  await sleep(endOf(run) - Date.now());
  await Promise.all(screens.map((screen) => screen?.leave()));
}

async function staff(run: RunData): Promise<void> {
  const socket: QueueSocket | null = await openSocket('staff', { url: HUB_URLS[0]!, nsp: NAMESPACES.queue, auth: authFor(STAFF_TOKEN) });
  if (!socket) return abortTest('the staff socket could not connect (see the warning above and socket_errors)');
  // Keyed by the event's seq: the ack says which seq a call made; a probe may see the broadcast first.
  const probeTimes = new Rendezvous<number>((ms) => probeCallLatency.add(ms));
  const { caller, snapshot } = await QueueCaller.prepare(socket, {
    dept: DEPT,
    rooms: ROOMS,
    requestPrefix: idPrefix(run),
    checkinPayload: () => ({ dept: DEPT }),
    onCalled: (event, sentAt) => probeTimes.sent(event.seq, sentAt),
    clockSkew,
  });
  const probes = await Promise.all(
    Array.from({ length: PROBE_DISPLAYS }, (_, i) => Display.open(HUB_URLS[i % HUB_URLS.length]!, (event, receivedAt) => probeTimes.arrived(event.seq, receivedAt))),
  );
  // As many patients waiting as there are rooms; each call checks one more in.
  for (let i = waitingIn(snapshot, DEPT).length; i < caller.rooms.length; i++) await caller.checkin();
  await caller.run(CALL_RATE, run.t0 + (RAMP_SECONDS + DURATION_SECONDS) * 1000);
  await caller.finish();
  await sleep(endOf(run) - Date.now());
  await Promise.all(probes.map((probe) => probe?.leave()));
  socket.close();
}

/**
 * One screen. It follows the queue's sequence numbers as docs/protocol.md's
 * resume rule says, but instead of asking again for a gap it counts it, and
 * it times every ticket.called when its frame arrives.
 */
class Display {
  /** The seq this screen is at; null until its first queue:sync is answered. */
  private applied: number | null = null;
  /** Seqs received live while the first queue:sync was in flight. */
  private readonly held: number[] = [];
  private lastLive = 0;

  private constructor(
    private readonly socket: QueueSocket,
    private readonly onCalled?: (event: QueueEvent, receivedAt: number) => void,
  ) {
    socket.on(QUEUE_SERVER_EVENTS.event, (event, receivedAt) => this.receive(event, receivedAt));
  }

  static async open(url: string, onCalled?: (event: QueueEvent, receivedAt: number) => void): Promise<Display | null> {
    const socket = await openSocket<QueueServerToClient, QueueClientToServer>('display', { url, nsp: NAMESPACES.queue, auth: authFor(DISPLAY_TOKEN) });
    if (!socket) return null;
    const display = new Display(socket, onCalled);
    const synced = await queueAction(socket, QUEUE_CLIENT_EVENTS.sync, {});
    if (!synced) {
      socket.close();
      return null;
    }
    display.applied = positionOf(synced.result);
    for (const seq of display.held.splice(0)) display.apply(seq);
    return display;
  }

  /** Asks the hub for everything after the last event it got (all of it is missed by now), then disconnects. */
  async leave(): Promise<void> {
    if (this.applied !== null && this.socket.connected) {
      const synced = await queueAction(this.socket, QUEUE_CLIENT_EVENTS.sync, { afterSeq: this.applied });
      if (synced) {
        // Events that arrived live while this request was in flight moved `applied` on: they are not missed.
        const after = this.applied;
        const missed = synced.result.mode === 'events' ? synced.result.events.filter((e) => e.seq > after).length : Math.max(0, synced.result.snapshot.seq - after);
        if (missed > 0) displayMissed.add(missed);
      }
    }
    this.socket.close();
  }

  private receive(event: QueueEvent, receivedAt: number): void {
    if (event.seq <= this.lastLive) {
      displayDuplicates.add(1);
      return;
    }
    this.lastLive = event.seq;
    if (event.type === 'ticket.called') {
      displayCalls.add(1);
      displayCallLatency.add(receivedAt - event.at);
      this.onCalled?.(event, receivedAt);
    }
    if (this.applied === null) this.held.push(event.seq);
    else this.apply(event.seq);
  }

  private apply(seq: number): void {
    const applied = this.applied!;
    if (seq <= applied) return; // already in the snapshot
    if (seq > applied + 1) displayMissed.add(seq - applied - 1);
    this.applied = seq;
  }
}

/** The seq a first sync answer (a snapshot; events only when the hub has nothing to snapshot) brings a screen to. */
function positionOf(result: SyncResult): number {
  return result.mode === 'snapshot' ? result.snapshot.seq : (result.events[result.events.length - 1]?.seq ?? 0);
}
