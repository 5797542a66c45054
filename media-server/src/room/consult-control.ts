import type { Logger } from 'pino';
import { onClinicMessages, subscribeClinicChannels, type RedisClient } from '@clinic-hub/platform/redis';
import { CONSULT_CONTROL_CHANNEL_KIND, type ConsultControlMessage } from '@clinic-hub/protocol';

/** How long an end heard on the channel is remembered for a join that read the consultation just before it ended. */
const ENDED_REMEMBERED_MS = 60_000;

/**
 * The hub's control messages (protocol `consultControlChannel`: a
 * consultation ended) for the clinics this node hosts rooms of. The channels
 * are sharded pub/sub, which has no patterns: a clinic's channel is
 * SSUBSCRIBEd before the node's first join of that clinic reads whether the
 * consultation is still open (`follow`), so an end the hub publishes after
 * that read is heard. On a Redis Cluster each clinic's channel is followed at
 * the shard that owns the clinic; ioredis subscribes again by itself after a
 * reconnect or a failover (the meta hash's `status` covers what was missed
 * meanwhile: a rejoin is refused). A clinic is followed from its first room
 * on this node until the node stops: a handful of channels, one per clinic.
 */
export class ConsultControl {
  private readonly followed = new Map<string, Promise<void>>();
  private readonly ended = new Map<string, number>();

  constructor(
    private readonly subscriber: RedisClient,
    private readonly onEnd: (clinic: string, message: ConsultControlMessage) => void,
    private readonly logger: Logger,
  ) {
    onClinicMessages(subscriber, CONSULT_CONTROL_CHANNEL_KIND, (clinic, text, channel) => {
      let message: ConsultControlMessage;
      try {
        message = JSON.parse(text) as ConsultControlMessage;
      } catch {
        this.logger.warn({ channel }, 'unreadable consult control message');
        return;
      }
      if (message.action !== 'end' || typeof message.consult !== 'string') return;
      this.remember(clinic, message.consult);
      this.onEnd(clinic, message);
    });
  }

  /** Resolves once Redis has this node's subscription to the clinic's control channel (at once when it already has). */
  follow(clinic: string): Promise<void> {
    let subscribed = this.followed.get(clinic);
    if (!subscribed) {
      subscribed = subscribeClinicChannels(this.subscriber, CONSULT_CONTROL_CHANNEL_KIND, [clinic]);
      this.followed.set(clinic, subscribed);
      // Not subscribed (Redis away): the next join tries again.
      subscribed.catch(() => this.followed.delete(clinic));
    }
    return subscribed;
  }

  /** Whether an end of this consultation was heard in the last minute (a join that read it open just before). */
  hasEnded(clinic: string, consult: string): boolean {
    return this.ended.has(`${clinic}/${consult}`);
  }

  private remember(clinic: string, consult: string): void {
    const now = Date.now();
    for (const [key, at] of this.ended) {
      if (now - at < ENDED_REMEMBERED_MS) break;
      this.ended.delete(key);
    }
    this.ended.delete(`${clinic}/${consult}`);
    this.ended.set(`${clinic}/${consult}`, now);
  }
}
