import { QueueFollower, type QueueFollowerOptions } from '@clinic-hub/protocol';
import { request, type QueueSocket } from './connection.js';

/** Resync this often even when nothing seems wrong: a safety net under the resume rule. */
const SAFETY_RESYNC_MS = 60_000;
const RETRY_FAILED_SYNC_MS = 3000;

export type FollowerHooks = Pick<QueueFollowerOptions, 'onEvent' | 'onSnapshot' | 'onChange'> & {
  /** Called after every completed sync (the page then shows a state that is in step with the hub). */
  onSynced?(): void;
};

/**
 * Keeps a QueueFollower in step with the hub over one socket: every live
 * `queue:event` goes through `handleEvent`, and every (re)connect runs
 * `resync()`, which replays exactly what was missed. Together: no missed call,
 * no duplicate.
 */
export function followQueue(socket: QueueSocket, hooks: FollowerHooks): QueueFollower {
  let retryTimer: ReturnType<typeof setTimeout> | undefined;
  const follower = new QueueFollower({
    async sync(afterSeq) {
      const ack = await request(socket, 'queue:sync', afterSeq === null ? {} : { afterSeq });
      if (!ack.ok) throw new Error(`${ack.error.code}: ${ack.error.message}`);
      return ack;
    },
    onEvent: hooks.onEvent,
    onSnapshot: hooks.onSnapshot,
    onChange: hooks.onChange,
    onSyncError() {
      clearTimeout(retryTimer);
      retryTimer = setTimeout(() => {
        if (socket.connected) resync();
      }, RETRY_FAILED_SYNC_MS);
    },
  });

  const resync = () => {
    follower.resync().then(
      () => hooks.onSynced?.(),
      () => undefined, // onSyncError schedules the retry
    );
  };

  socket.on('queue:event', (event) => follower.handleEvent(event));
  socket.on('queue:clinic', (clinic) => follower.handleClinic(clinic));
  socket.on('connect', resync);
  setInterval(() => {
    if (socket.connected) resync();
  }, SAFETY_RESYNC_MS);
  return follower;
}
