import type { NotifyContact } from '@clinic-hub/protocol';
import type { Delivery, OutgoingNotice } from './channels/channel-types.js';
import { inAppNotice, type InAppChannel } from './channels/in-app-channel.js';
import type { PatientPageStore } from './patient-page-store.js';
import type { NotificationJobData } from './notify-types.js';

/**
 * A patient who gave a phone number (SMS contact) may also keep their ticket
 * page: open in front of them, or subscribed to Web Push. Each notice then
 * goes **one way only**, the first that reaches them:
 *
 * 1. a page of theirs in view (`notify:page` within the last 60 s): in the page;
 * 2. else a push subscription the push service takes: Web Push;
 * 3. else SMS (no subscription, the subscription gone, the push failed).
 *
 * Chat replies never go by SMS: without 1 or 2 they wait in the page's inbox.
 * An attempt that chose SMS says so in its send record before calling the
 * provider (`SendRecords.noteVia`), so a retry after it sends by SMS again,
 * with the same idempotency key, rather than pushing as well.
 */
export class PhoneRoute {
  constructor(
    private readonly inApp: InAppChannel,
    private readonly pages: PatientPageStore,
  ) {}

  /** Whether a job's notice is one this route decides: a ticket's, with an SMS contact. */
  static applies(data: NotificationJobData, contact: NotifyContact): data is NotificationJobData & { recipient: { type: 'ticket'; ticketId: string } } {
    return data.recipient.type === 'ticket' && contact.channel === 'sms';
  }

  /**
   * Delivers by the page or Web Push when either reaches the patient; null
   * when the notice is for SMS. `deliverInApp` is the worker's bounded call of
   * the in-app channel.
   */
  async pageOrPush(
    ticket: string,
    notice: OutgoingNotice,
    deliverInApp: (notice: OutgoingNotice) => Promise<Delivery>,
  ): Promise<Delivery | null> {
    const user = `patient:${ticket}`;
    const toPage: OutgoingNotice = { ...notice, to: user };
    if (await this.pages.isInView(notice.clinic, user)) return deliverInApp(toPage);
    const pushed = await this.inApp.push(notice.clinic, ticket, inAppNotice(toPage));
    return pushed === 'sent' ? { providerId: `web_push:${notice.id}` } : null;
  }

  /** A notice that is never sent by SMS (a chat reply) and reached no page or push: kept in the page's inbox. */
  keepForPage(ticket: string, notice: OutgoingNotice, deliverInApp: (notice: OutgoingNotice) => Promise<Delivery>): Promise<Delivery> {
    return deliverInApp({ ...notice, to: `patient:${ticket}` });
  }
}
