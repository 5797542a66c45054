import { clinicChannel, clinicOfChannel } from '@clinic-hub/protocol';
import type { RedisClient } from './cluster.js';

/**
 * The clinic channels the scripts publish with SPUBLISH (Redis 7 sharded
 * pub/sub): the queue's `live` and the chat's `chat`. A channel
 * `ch:{clinic}:<kind>` lies in its clinic's hash slot, so on a Redis Cluster
 * a message goes to the shard that owns the clinic (and its replicas) only,
 * not to every node; on one Redis it is ordinary pub/sub. There are no
 * sharded patterns: a subscriber names each clinic's channel (SSUBSCRIBE),
 * one command per clinic, as a cluster wants channels of one slot per
 * command. ioredis subscribes again by itself after a reconnect, and on a
 * cluster (`shardedSubscriber`) follows a slot to its new master.
 */

/** Calls `handle` with the clinic and the message of every `kind` channel message the subscriber receives. */
export function onClinicMessages(subscriber: RedisClient, kind: string, handle: (clinic: string, message: string, channel: string) => void): void {
  subscriber.on('smessage', (channel: string, message: string) => {
    const clinic = clinicOfChannel(channel, kind);
    if (clinic) handle(clinic, message, channel);
  });
}

/** SSUBSCRIBEs to the `kind` channel of every clinic; resolves once Redis has every subscription. */
export async function subscribeClinicChannels(subscriber: RedisClient, kind: string, clinics: readonly string[]): Promise<void> {
  await Promise.all(clinics.map((clinic) => subscriber.ssubscribe(clinicChannel(clinic, kind))));
}
