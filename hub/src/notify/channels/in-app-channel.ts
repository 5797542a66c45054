import { Emitter } from '@socket.io/redis-emitter';
import type { Redis } from 'ioredis';
import { NOTIFY_NAMESPACE, notifyUserRoom, type InAppNotice, type NotifyServerToClient } from '@clinic-hub/protocol';
import { DeliveryError, type ChannelSender, type Delivery, type OutgoingNotice } from './channel-types.js';

/** The one Redis call the emitter makes for a room broadcast, captured instead of sent. */
class CapturingPublisher {
  captured: { channel: string; message: Buffer | string } | null = null;
  publish(channel: string, message: Buffer | string): void {
    this.captured = { channel, message };
  }
}

/**
 * In-app notices: emitted through the Socket.IO Redis emitter to the room
 * `notifyUserRoom(clinic, userId)` of the `/notify` namespace, which every
 * hub node's Redis adapter delivers to its own sockets there. The PUBLISH and
 * the send record go in one MULTI, so an in-app notice is published exactly
 * once: a worker that dies before EXEC published nothing, one that dies after
 * left the record saying so.
 */
export class InAppChannel implements ChannelSender {
  readonly channel = 'in_app' as const;

  constructor(
    private readonly redis: Redis,
    private readonly socketIoKey: string,
  ) {}

  async send(notice: OutgoingNotice): Promise<Delivery> {
    const payload: InAppNotice = {
      id: notice.id,
      kind: notice.kind,
      locale: notice.locale,
      title: notice.rendered.title,
      body: notice.rendered.body,
      at: Date.now(),
      ...(notice.ticketNumber ? { ticketNumber: notice.ticketNumber } : {}),
    };
    const publisher = new CapturingPublisher();
    new Emitter<NotifyServerToClient>(publisher, { key: this.socketIoKey })
      .of(NOTIFY_NAMESPACE)
      .to(notifyUserRoom(notice.clinic, notice.to))
      .emit('notify:notice', payload);
    const { captured } = publisher;
    if (!captured) throw new Error('the Socket.IO emitter published nothing');
    const { key, value, ttlSeconds } = notice.sentRecord;
    // On an error the record is left as it is: if EXEC ran it says `sent`, if not `sending`, and the retry reads it.
    let replies: [Error | null, unknown][] | null;
    try {
      replies = await this.redis.multi().publish(captured.channel, captured.message).set(key, value, 'EX', ttlSeconds).exec();
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
    return { providerId: `in_app:${notice.id}`, recorded: true };
  }
}
