import type { RedisClient } from '@clinic-hub/platform/redis';
import type { InAppNotice, WebPushMessage } from '@clinic-hub/protocol';
import { notifyChannel, notifyClinicKeys } from '../notify-keys.js';
import type { NotifyLiveMessage } from '../notify-live.js';
import { ticketOfUser, type PatientPageStore } from '../patient-page-store.js';
import { DeliveryError, type ChannelSender, type Delivery, type OutgoingNotice } from './channel-types.js';
import type { WebPushSender } from './web-push-sender.js';

export interface InAppChannelOptions {
  /** How long a notice waits in a user's inbox for their page: the clinic's patient data retention. */
  inboxSeconds: (clinic: string) => number;
  pages: PatientPageStore;
  /** Web Push for patients whose page is not in view; null: off. */
  webPush: WebPushSender | null;
  /** Told when a push failed or a subscription had gone (no patient data). */
  onPushProblem?: (problem: { clinic: string; notice: string; reason: string }) => void;
  /** Told of each push attempted (metrics). */
  onPush?: (result: Exclude<PushResult, 'no_subscription'>) => void;
}

/**
 * In-app notices, delivered once to the user's own page:
 *
 * 1. Kept in the user's inbox and published (SPUBLISH) on its clinic's
 *    notify channel, `ch:{clinic}:notify`; every hub node follows each
 *    clinic's and emits the notice to its own sockets in the room
 *    `notifyUserRoom(clinic, userId)` of `/notify` (notify-live.ts). The
 *    inbox entry, the SPUBLISH and the send record go in one MULTI, so a
 *    notice is published exactly once: a worker that dies before EXEC
 *    published nothing, one that dies after left the record saying so. All
 *    three are in the clinic's hash slot: on a Redis Cluster the MULTI runs
 *    on the clinic's shard, and the message goes to that shard's
 *    subscribers only.
 * 2. When no page of a patient is in view (`notify:page`) and the ticket has
 *    a push subscription, it goes by Web Push too, and leaves the inbox: the
 *    page will not show it again.
 * 3. Otherwise it stays in the inbox, and the page is given it when it comes
 *    back (`notify:seen` removes it), until the clinic's retention ends.
 */
export class InAppChannel implements ChannelSender {
  readonly channel = 'in_app' as const;

  constructor(
    private readonly redis: RedisClient,
    private readonly options: InAppChannelOptions,
  ) {}

  async send(notice: OutgoingNotice): Promise<Delivery> {
    const payload = inAppNotice(notice);
    const message: NotifyLiveMessage = { to: notice.to, notice: payload };
    const { key, value, ttlSeconds } = notice.sentRecord;
    const inbox = notifyClinicKeys(notice.clinic).inbox(notice.to);
    // On an error the record is left as it is: if EXEC ran it says `sent`, if not `sending`, and the retry reads it.
    let replies: [Error | null, unknown][] | null;
    try {
      replies = await this.redis
        .multi()
        .hset(inbox, notice.id, JSON.stringify(payload))
        .expire(inbox, Math.max(1, Math.round(this.options.inboxSeconds(notice.clinic))))
        .spublish(notifyChannel(notice.clinic), JSON.stringify(message))
        .set(key, value, 'EX', ttlSeconds)
        .exec();
    } catch (error) {
      throw new DeliveryError('NOTIFY_PROVIDER_FAILED', `redis: ${(error as Error).message}`, { permanent: false, notAccepted: false });
    }
    const failed = replies?.find(([error]) => error);
    if (!replies || failed) {
      throw new DeliveryError('NOTIFY_PROVIDER_FAILED', `redis: ${failed?.[0]?.message ?? 'transaction aborted'}`, {
        permanent: false,
        notAccepted: false,
      });
    }
    const pushed = await this.pushIfAway(notice, payload);
    return { providerId: pushed ? `web_push:${notice.id}` : `in_app:${notice.id}`, recorded: true };
  }

  /** Web Push when the patient has no page in view; true when the push service took it. Failures leave the notice in the inbox. */
  private async pushIfAway(notice: OutgoingNotice, payload: InAppNotice): Promise<boolean> {
    const ticket = ticketOfUser(notice.to);
    if (!this.options.webPush || !ticket) return false;
    try {
      if (await this.options.pages.isInView(notice.clinic, notice.to)) return false;
    } catch (error) {
      this.options.onPushProblem?.({ clinic: notice.clinic, notice: notice.id, reason: String((error as Error).message) });
      return false;
    }
    if ((await this.push(notice.clinic, ticket, payload)) !== 'sent') return false;
    await this.options.pages.removeFromInbox(notice.clinic, notice.to, [notice.id]).catch(() => undefined);
    return true;
  }

  /**
   * Sends a notice by Web Push to a ticket's subscription, if it has one. A
   * subscription the push service no longer knows (404/410) is forgotten.
   * Never throws: what happened is the answer (and is counted).
   */
  async push(clinic: string, ticket: string, payload: InAppNotice): Promise<PushResult> {
    const { webPush, pages } = this.options;
    if (!webPush) return 'no_subscription';
    const report = (result: PushResult, reason?: string): PushResult => {
      if (result !== 'no_subscription') this.options.onPush?.(result);
      if (reason) this.options.onPushProblem?.({ clinic, notice: payload.id, reason });
      return result;
    };
    try {
      const subscription = await pages.pushSubscription(clinic, ticket);
      if (!subscription) return 'no_subscription';
      const message: WebPushMessage = { ...payload, clinic, url: '/ticket' };
      const sent = await webPush.send(subscription, message, { urgent: payload.kind === 'queue_called' || payload.kind === 'consult_ready', ttlSeconds: 3600 });
      if ('gone' in sent) {
        await pages.clearPushSubscription(clinic, ticket);
        return report('gone', 'subscription gone (404/410): forgotten');
      }
      return report('sent');
    } catch (error) {
      return report('failed', error instanceof DeliveryError ? error.message : String((error as Error).message));
    }
  }
}

/** What a Web Push attempt came to: taken by the push service, failed, the subscription gone (404/410), or none to send to. */
export type PushResult = 'sent' | 'failed' | 'gone' | 'no_subscription';

/** The notice as a page shows it. */
export function inAppNotice(notice: OutgoingNotice): InAppNotice {
  return {
    id: notice.id,
    kind: notice.kind,
    locale: notice.locale,
    title: notice.rendered.title,
    body: notice.rendered.body,
    at: Date.now(),
    ...(notice.ticketNumber ? { ticketNumber: notice.ticketNumber } : {}),
  };
}
