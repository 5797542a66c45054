import type { Namespace } from 'socket.io';
import { onClinicMessages, subscribeClinicChannels, type RedisClient } from '@clinic-hub/platform/redis';
import { notifyUserRoom, type InAppNotice } from '@clinic-hub/protocol';
import type { Logger } from '@clinic-hub/platform/logging';
import { identityOf } from '../auth/socket-auth.js';
import { NOTIFY_CHANNEL_KIND } from './notify-keys.js';
import type { PatientPageStore } from './patient-page-store.js';

/** What the worker publishes on a clinic's notify channel (in-app-channel.ts): one notice for one user of the clinic. */
export interface NotifyLiveMessage {
  to: string;
  notice: InAppNotice;
}

export interface NotifyLiveDeps {
  clinicIds: readonly string[];
  pages: PatientPageStore;
  logger: Logger;
}

/**
 * The hub's side of in-app notices: every node SSUBSCRIBEs each clinic's
 * notify channel (`ch:{clinic}:notify`, sharded pub/sub: on a Redis Cluster
 * at the shard that owns the clinic) and emits each notice to its own
 * sockets in the user's room (`local`): one delivery per socket, whichever
 * node the page is connected to. The worker publishes there in the MULTI that
 * keeps the notice in the user's inbox.
 *
 * Pub/sub keeps nothing for a subscriber that is away: when this node's
 * subscription comes back after an outage, each of its users' pages is given
 * its inbox again (what the worker published meanwhile is there); a page
 * shows each notice id once.
 */
export async function startNotifyLive(subscriber: RedisClient, nsp: Namespace, deps: NotifyLiveDeps): Promise<void> {
  const { logger, pages } = deps;
  onClinicMessages(subscriber, NOTIFY_CHANNEL_KIND, (clinic, raw, channel) => {
    let message: NotifyLiveMessage;
    try {
      message = JSON.parse(raw) as NotifyLiveMessage;
    } catch {
      logger.warn({ channel }, 'unparseable notice on a notify channel');
      return;
    }
    nsp.local.to(notifyUserRoom(clinic, message.to)).emit('notify:notice', message.notice);
  });

  const catchUp = async () => {
    await subscribeClinicChannels(subscriber, NOTIFY_CHANNEL_KIND, deps.clinicIds);
    let given = 0;
    for (const socket of nsp.sockets.values()) {
      const { clinic, sub } = identityOf(socket);
      for (const notice of await pages.inbox(clinic, sub)) {
        socket.emit('notify:notice', notice);
        given++;
      }
    }
    if (given > 0) logger.info({ notices: given }, 'gave pages their inbox again after the notify subscription was down');
  };

  await subscribeClinicChannels(subscriber, NOTIFY_CHANNEL_KIND, deps.clinicIds);
  // 'ready' again means the connection was lost and is back (ioredis resubscribes by itself).
  subscriber.on('ready', () => {
    catchUp().catch((error: unknown) => logger.warn({ err: (error as Error).message }, 'notify catch-up failed; pages get their inbox when they reconnect'));
  });
}
