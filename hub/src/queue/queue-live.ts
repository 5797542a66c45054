import { onClinicMessages, subscribeClinicChannels, type RedisClient } from '@clinic-hub/platform/redis';
import type { QueueEvent } from '@clinic-hub/protocol';
import type { Logger } from '@clinic-hub/platform/logging';
import type { HubMetrics } from '../metrics.js';
import type { LocalBroadcast } from '../socket/local-broadcast.js';
import { RecentSeqs } from '../socket/recent-seqs.js';
import { LIVE_CHANNEL_KIND, clinicRoom } from './queue-keys.js';
import type { QueueService } from './queue-service.js';

/** More missed events than this are left to the clients' own sync (they see the gap). */
const MAX_CATCH_UP_EVENTS = 500;
/** How far back a catch-up reads what this node emitted, to find changes a failover lost (a rewind). */
const REWIND_CHECK_EVENTS = 50;
const CATCH_UP_RETRY_MS = 1000;

export interface QueueFanoutDeps {
  queue: QueueService;
  clinicIds: string[];
  /** Events arriving within this many ms go out together, in order (HUB_FANOUT_COALESCE_MS); 0: each at once. */
  coalesceMs: number;
  metrics: HubMetrics;
  logger: Logger;
  /** Hears every event this node emits (live or caught up), once: the hub ends patients' sessions with their tickets. */
  onEvent?: (clinic: string, event: QueueEvent) => void;
}

/**
 * Calls `handle` with each queue event published on a clinic's live channel
 * (the subscriber SSUBSCRIBEs each clinic's: subscribeLiveChannels); a
 * message that is not an event is logged and skipped.
 */
export function onLiveQueueEvent(subscriber: RedisClient, logger: Logger, handle: (clinic: string, event: QueueEvent) => void): void {
  onClinicMessages(subscriber, LIVE_CHANNEL_KIND, (clinic, message, channel) => {
    let event: QueueEvent;
    try {
      event = JSON.parse(message) as QueueEvent;
    } catch {
      logger.warn({ channel }, 'unparseable queue event on live channel');
      return;
    }
    handle(clinic, event);
  });
}

/** SSUBSCRIBEs to every clinic's live channel (sharded pub/sub: on a Redis Cluster, at the shard that owns the clinic). */
export function subscribeLiveChannels(subscriber: RedisClient, clinicIds: readonly string[]): Promise<void> {
  return subscribeClinicChannels(subscriber, LIVE_CHANNEL_KIND, clinicIds);
}

/**
 * Every node subscribes to the clinics' live channels, which the queue
 * scripts publish to in commit order, and emits each event to its own
 * sockets only (`local`): one delivery per socket, whichever node made the
 * change. A socket that misses one fills the gap with `queue:sync`.
 *
 * Pub/sub keeps nothing for a subscriber that is away: while this node's
 * subscription is broken (Redis restarted, a network blip) other nodes go on
 * committing changes. When it is back, the node reads what it missed from
 * the event stream and emits it, so its displays, still connected to it, do
 * not have to wait for the next change to notice the gap.
 */
export async function startQueueFanout(subscriber: RedisClient, broadcast: LocalBroadcast, deps: QueueFanoutDeps): Promise<void> {
  const { queue, metrics, logger } = deps;
  /** Highest seq emitted per clinic. */
  const lastSeq = new Map<string, number>();
  /**
   * The events this node emitted lately, per clinic (seq → what it was): an event goes to the sockets once,
   * whichever way it came (live, or read back by a catch-up), in whatever order the two arrive. The catch-up's
   * read and the live message travel on different connections: the stream can show an event before its live
   * message is read, and a second outage can start a second catch-up while the first one still retries.
   * A seq that comes back as another change is a rewind (rewound, below).
   */
  const emitted = new Map<string, RecentSeqs>();
  /** Each outage's catch-up; an older one still retrying gives way to the newer one. */
  let catchUpGeneration = 0;

  // uWebSockets.js writes everything published to a socket in one loop turn with one send(): a burst of events
  // (a call, the consultation it starts, the next check-in) held for a few ms costs one syscall per display
  // instead of one per event. The kernel's send is most of what a fan-out costs (README.md, "Benchmarks").
  let pending: [string, QueueEvent][] = [];
  let flushTimer: NodeJS.Timeout | null = null;
  const send = (clinic: string, event: QueueEvent) => {
    broadcast.emit(clinicRoom(clinic), 'queue:event', event);
    metrics.eventFannedOut(event.type, event.at);
  };
  const flush = () => {
    flushTimer = null;
    const batch = pending;
    pending = [];
    for (const [clinic, event] of batch) send(clinic, event);
  };
  /**
   * A failover lost changes this node had emitted (they were published before the replica had them; none was
   * acknowledged to its sender) and their seqs were given to other changes: the clinic's clients here applied
   * what is gone. They are moved as a drain moves them: their transports closed, they reconnect, and their
   * `queue:sync` from past the mark is answered with a snapshot (QueueService.markRewound), on any node.
   */
  const rewound = (clinic: string, fromSeq: number) => {
    logger.warn({ clinic, fromSeq }, 'queue changes published before a failover were lost with the master; the clinic\'s clients resync');
    emitted.get(clinic)?.forgetFrom(fromSeq);
    lastSeq.set(clinic, fromSeq - 1);
    queue
      .markRewound(clinic, fromSeq)
      .catch((error: Error) => logger.error({ clinic, err: error.message }, 'cannot mark the queue rewound; clients resync when they see a gap'))
      .finally(() => broadcast.closeTransports(clinicRoom(clinic)));
  };

  /** Emits the event unless this node already did; false when it had. */
  const emit = (clinic: string, event: QueueEvent): boolean => {
    let recent = emitted.get(clinic);
    if (!recent) emitted.set(clinic, (recent = new RecentSeqs(RECENT_SEQS_KEPT)));
    const seen = recent.add(event.seq, eventSignature(event));
    if (seen === 'again') return false;
    if (seen === 'other') {
      // Sent on, as any change: the clients it reaches are on their way to a snapshot.
      rewound(clinic, event.seq);
      recent.add(event.seq, eventSignature(event));
    }
    if (event.seq > (lastSeq.get(clinic) ?? 0)) lastSeq.set(clinic, event.seq);
    deps.onEvent?.(clinic, event);
    if (deps.coalesceMs <= 0) {
      send(clinic, event);
      return true;
    }
    pending.push([clinic, event]);
    flushTimer ??= setTimeout(flush, deps.coalesceMs).unref();
    return true;
  };

  onLiveQueueEvent(subscriber, logger, (clinic, event) => {
    if (!emit(clinic, event)) metrics.fanoutDuplicatesDropped.inc();
  });

  const catchUp = async (generation: number, from: Map<string, number>, attempt: number): Promise<void> => {
    if (generation !== catchUpGeneration) return;
    try {
      // Resolves once Redis has the subscriptions again: nothing committed from now on is missed.
      await subscribeLiveChannels(subscriber, deps.clinicIds);
      let caughtUp = 0;
      for (const [clinic, after] of from) {
        // From a little before: a failover may have lost changes this node emitted, and given their seqs to others.
        const current = await queue.lastSeq(clinic);
        if (current < after) rewound(clinic, current + 1);
        const missed = await queue.eventsAfter(clinic, Math.max(0, Math.min(after, current) - REWIND_CHECK_EVENTS), MAX_CATCH_UP_EVENTS + REWIND_CHECK_EVENTS);
        if (generation !== catchUpGeneration) return;
        for (const event of missed) if (emit(clinic, event)) caughtUp++;
      }
      if (caughtUp > 0) logger.info({ events: caughtUp }, 'emitted queue events missed while the live subscription was down');
    } catch (error) {
      if (attempt >= 30) {
        logger.error({ err: (error as Error).message }, 'cannot catch up on missed queue events; clients will sync on the next change');
        return;
      }
      setTimeout(() => void catchUp(generation, from, attempt + 1), CATCH_UP_RETRY_MS).unref();
    }
  };

  await subscribeLiveChannels(subscriber, deps.clinicIds);
  for (const clinic of deps.clinicIds) lastSeq.set(clinic, await queue.lastSeq(clinic));
  // 'ready' again means the connection was lost and is back (ioredis resubscribes by itself).
  subscriber.on('ready', () => {
    // From what this node emitted last: a catch-up still retrying after an earlier outage started later than that.
    void catchUp(++catchUpGeneration, new Map(lastSeq), 1);
  });
}

/** How many emitted seqs a node remembers per clinic: more than a catch-up reads (MAX_CATCH_UP_EVENTS). */
const RECENT_SEQS_KEPT = 4 * MAX_CATCH_UP_EVENTS;

/** What tells two changes with one seq apart: a failover that lost one may have given its seq to another. */
export const eventSignature = (event: QueueEvent) => `${event.ticket.id}@${event.at}`;
