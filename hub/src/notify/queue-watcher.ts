import type { RedisClient } from '@clinic-hub/platform/redis';
import type { NotifyKind, PublicTicket, QueueEvent } from '@clinic-hub/protocol';
import type { ClinicRegistry } from '../clinics/clinic-registry.js';
import type { Logger } from '@clinic-hub/platform/logging';
import { endConnection } from '@clinic-hub/platform/redis';
import { onLiveQueueEvent, subscribeLiveChannels, type QueueService } from '../queue/index.js';
import { continueTrace, runInTrace, type TraceContext } from '@clinic-hub/platform/tracing';
import type { NotificationService } from './notification-service.js';

/** "3 ahead" fires for a waiting ticket with 2 or 3 ahead of it, "1 ahead" with 1 or none: a skipped step still gets a notice. */
const NEAR_AHEAD = 3;
const NEXT_AHEAD = 1;
/** Idempotency keys already enqueued by this process: saves a Redis round trip per ticket and queue change. */
const REMEMBERED_KEYS = 20_000;

interface Milestone {
  ticket: PublicTicket;
  kind: Extract<NotifyKind, 'queue_3_ahead' | 'queue_1_ahead' | 'queue_called'>;
  ahead?: number;
  key: string;
}

export interface QueueWatcherDeps {
  /** A connection of its own: it goes into subscriber mode. */
  subscriber: RedisClient;
  queue: QueueService;
  notifications: NotificationService;
  clinics: ClinicRegistry;
  logger: Logger;
}

/**
 * Turns waiting-room changes into notices without the queue knowing about
 * notifications: it follows every clinic's live channel (`ch:{*}:live`), and
 * after each change reads the clinic's snapshot and enqueues, once per
 * (ticket, milestone), "3 ahead", "1 ahead" and "called" for tickets whose
 * patient left a contact. Positions come from the snapshot, not from counting
 * events, so missed, repeated or reordered events cannot cause a wrong or
 * second notice; on (re)connect it sweeps every clinic to catch up.
 *
 * Notices continue the trace of the queue action that caused them. That
 * trace is not in the event, whose JSON is exactly what displays receive
 * (live and on `queue:sync`) and so must carry nothing more; the queue
 * scripts keep it beside the event in its stream entry (queue/scripts/lib.lua),
 * where the watcher reads it. A sweep that nothing traced asked for (a
 * catch-up after a reconnect) leaves each notice a trace of its own.
 */
export class QueueWatcher {
  private readonly running = new Map<string, Promise<void>>();
  private readonly dirty = new Set<string>();
  /** The trace of the latest change awaiting a sweep, per clinic: changes that fold into one sweep share the latest's. */
  private readonly causes = new Map<string, TraceContext>();
  private readonly enqueued = new Map<string, true>();
  private stopped = false;

  constructor(private readonly deps: QueueWatcherDeps) {}

  async start(): Promise<void> {
    const { subscriber, logger } = this.deps;
    subscriber.on('error', () => undefined);
    onLiveQueueEvent(subscriber, logger, (clinic, event) => {
      if (this.deps.clinics.get(clinic)) void this.onEvent(clinic, event);
    });
    let subscribedOnce = false;
    subscriber.on('ready', () => {
      // ioredis resubscribes by itself after a reconnect; what happened meanwhile is caught up by a sweep.
      if (subscribedOnce) this.sweepAll();
    });
    await subscribeLiveChannels(subscriber, this.deps.clinics.ids());
    subscribedOnce = true;
    this.sweepAll();
    await this.idle();
  }

  /** Resolves when no sweep is running (tests and shutdown). */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running.values()]);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.idle();
    await endConnection(this.deps.subscriber);
  }

  private async onEvent(clinic: string, event: QueueEvent): Promise<void> {
    const cause = await this.traceOf(clinic, event.seq);
    // The call itself is taken from the event, so a ticket started right after its call still gets its notice.
    if (event.type === 'ticket.called' || event.type === 'ticket.recalled') {
      await inTrace(cause, () => this.enqueueAll(clinic, [calledMilestone(event.ticket)])).catch((error: unknown) => this.logFailure(clinic, error));
    }
    this.sweep(clinic, cause);
  }

  /** A span continuing the trace of the action that made event `seq`; none when it had none or its entry cannot be read. */
  private async traceOf(clinic: string, seq: number): Promise<TraceContext | undefined> {
    const traceparent = await this.deps.queue.eventTraceparent(clinic, seq).catch(() => null);
    return traceparent ? continueTrace(traceparent) : undefined;
  }

  private sweepAll(): void {
    for (const clinic of this.deps.clinics.ids()) this.sweep(clinic);
  }

  /** Runs one sweep of the clinic at a time; changes arriving meanwhile fold into one more sweep. */
  private sweep(clinic: string, cause?: TraceContext): void {
    if (this.stopped) return;
    this.dirty.add(clinic);
    if (cause) this.causes.set(clinic, cause);
    if (this.running.has(clinic)) return;
    const loop = async () => {
      while (this.dirty.delete(clinic) && !this.stopped) {
        const sweepCause = this.causes.get(clinic);
        this.causes.delete(clinic);
        await inTrace(sweepCause, () => this.sweepOnce(clinic)).catch((error: unknown) => this.logFailure(clinic, error));
      }
    };
    this.running.set(
      clinic,
      loop().finally(() => this.running.delete(clinic)),
    );
  }

  private async sweepOnce(clinic: string): Promise<void> {
    const config = this.deps.clinics.get(clinic);
    const snap = await this.deps.queue.snapshot(clinic);
    if (!config || !snap.ok) return;
    const milestones: Milestone[] = [];
    for (const dept of config.departments) {
      const waiting = snap.snapshot.tickets.filter((t) => t.dept === dept.id && t.status === 'waiting').sort((a, b) => a.order - b.order);
      waiting.slice(0, NEAR_AHEAD + 1).forEach((ticket, ahead) => {
        if (ahead <= NEXT_AHEAD) milestones.push({ ticket, kind: 'queue_1_ahead', ahead, key: nextKey(ticket.id) });
        else milestones.push({ ticket, kind: 'queue_3_ahead', ahead, key: `ticket.${ticket.id}.queue_3_ahead` });
      });
    }
    for (const ticket of snap.snapshot.tickets) if (ticket.status === 'called') milestones.push(calledMilestone(ticket));
    await this.enqueueAll(clinic, await this.withoutRegressions(clinic, milestones));
  }

  /**
   * Drops "3 ahead" for a ticket already told "1 ahead": an urgent check-in
   * can push a ticket back, and "3 ahead" after "1 ahead" would mislead.
   */
  private async withoutRegressions(clinic: string, milestones: Milestone[]): Promise<Milestone[]> {
    const kept: Milestone[] = [];
    for (const milestone of milestones) {
      if (milestone.kind === 'queue_3_ahead' && !this.enqueued.has(`${clinic}.${milestone.key}`)) {
        if (await this.deps.notifications.hasNotification(clinic, nextKey(milestone.ticket.id))) continue;
      }
      kept.push(milestone);
    }
    return kept;
  }

  private async enqueueAll(clinic: string, milestones: Milestone[]): Promise<void> {
    const fresh = milestones.filter((m) => !this.enqueued.has(`${clinic}.${m.key}`));
    if (fresh.length === 0) return;
    const contacts = await this.deps.notifications.contacts.ticketContacts(clinic, [...new Set(fresh.map((m) => m.ticket.id))]);
    for (const milestone of fresh) {
      const contact = contacts.get(milestone.ticket.id);
      // No contact yet: nothing is claimed, and a later sweep tries again.
      if (!contact) continue;
      const { ticket } = milestone;
      const result = await this.deps.notifications.enqueue(
        {
          clinic,
          kind: milestone.kind,
          recipient: { type: 'ticket', ticketId: ticket.id },
          vars: {
            ticketNumber: ticket.number,
            dept: ticket.dept,
            ...(ticket.room ? { room: ticket.room } : {}),
            ...(milestone.ahead !== undefined ? { ahead: milestone.ahead } : {}),
          },
          idempotencyKey: milestone.key,
          urgent: milestone.kind === 'queue_called',
        },
        contact,
      );
      if (result.ok) this.remember(`${clinic}.${milestone.key}`);
    }
  }

  private remember(key: string): void {
    this.enqueued.set(key, true);
    if (this.enqueued.size > REMEMBERED_KEYS) this.enqueued.delete(this.enqueued.keys().next().value!);
  }

  private logFailure(clinic: string, error: unknown): void {
    this.deps.logger.warn({ clinic, err: error instanceof Error ? error.message : String(error) }, 'queue notices not enqueued; the next change retries');
  }
}

/** Runs `work` in `trace` when there is one: the notices it enqueues carry it. */
function inTrace<T>(trace: TraceContext | undefined, work: () => Promise<T>): Promise<T> {
  return trace ? runInTrace(trace, work) : work();
}

/** The idempotency key of a ticket's "1 ahead" notice. */
export function nextKey(ticketId: string): string {
  return `ticket.${ticketId}.queue_1_ahead`;
}

function calledMilestone(ticket: PublicTicket): Milestone {
  // Each recall is a new call to the room, so it gets its own notice.
  return { ticket, kind: 'queue_called', key: `ticket.${ticket.id}.queue_called.${ticket.recalls}` };
}
