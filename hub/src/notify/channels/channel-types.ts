import type { NotifyChannel, NotifyKind, NotifyLocale } from '@clinic-hub/protocol';
import type { RenderedNotice } from '../templates.js';

/** One notice on its way to one address. */
export interface OutgoingNotice {
  /** The notification's id (its BullMQ job id): the same for every attempt. */
  id: string;
  clinic: string;
  kind: NotifyKind;
  locale: NotifyLocale;
  /** The address on this channel (patient data: never log it). */
  to: string;
  rendered: RenderedNotice;
  ticketNumber?: string;
  /** A deterministic key for the provider's own duplicate detection, derived from `id`. */
  providerKey: string;
  /** An earlier attempt was interrupted and the provider may already have this notice. */
  resumed: boolean;
  /** Written by channels that can commit the send and the record in one Redis transaction. */
  sentRecord: { key: string; value: string; ttlSeconds: number };
}

export interface Delivery {
  providerId: string;
  /** True when the channel wrote `sentRecord` itself, atomically with the send. */
  recorded?: boolean;
}

export interface ChannelSender {
  readonly channel: NotifyChannel;
  send(notice: OutgoingNotice, signal: AbortSignal): Promise<Delivery>;
  close?(): Promise<void>;
}

/**
 * A failed attempt. `permanent`: retrying cannot help (bad address, refused
 * credentials) and the notification goes straight to the dead letters.
 * `notAccepted`: the provider certainly did not take the message, so its send
 * record is cleared; otherwise it may have, and the retry relies on the
 * provider's idempotency key.
 */
export class DeliveryError extends Error {
  constructor(
    readonly code: 'NOTIFY_PROVIDER_REJECTED' | 'NOTIFY_PROVIDER_FAILED' | 'NOTIFY_PROVIDER_TIMEOUT',
    readonly detail: string,
    readonly options: { permanent: boolean; notAccepted: boolean },
  ) {
    super(`${code}: ${detail}`);
  }
}

/** HTTP statuses worth retrying: timeouts, rate limits and server errors. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500;
}
