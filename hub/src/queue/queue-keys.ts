import { clinicChannel } from '@clinic-hub/protocol';

/**
 * Where a clinic's waiting room lives in Redis. Every key carries the
 * `{clinic}` hash tag, so one clinic's queue sits in one Redis Cluster slot
 * and a script may touch any of it (the scripts build the rest from `prefix`:
 * scripts/lib.lua).
 */
export const clinicKeys = (clinic: string) => {
  const prefix = `ch:{${clinic}}:`;
  return {
    prefix,
    seq: `${prefix}seq`,
    /** Written before the replica wait of a replayed change (ReplicaAck): a replica that has it has the change. */
    ackFence: `${prefix}ack-fence`,
    events: `${prefix}events`,
    tickets: `${prefix}tickets`,
    /** Pub/sub channel of every committed queue event of the clinic (not a key). */
    live: clinicChannel(clinic, LIVE_CHANNEL_KIND),
    patient: (ticketId: string) => `${prefix}patient:${ticketId}`,
    /** When a ticket ended (ms), for 25 h: how long its patient's token still works. */
    ended: (ticketId: string) => `${prefix}ended:${ticketId}`,
    durations: (dept: string) => `${prefix}durations:${dept}`,
  };
};

/** The kind of the live channels (`ch:{clinic}:live`): SSUBSCRIBEd per clinic, the scripts SPUBLISH (sharded pub/sub). */
export const LIVE_CHANNEL_KIND = 'live';

/** The Socket.IO room of a clinic's queue sockets (displays, staff): every queue event goes there. */
export const clinicRoom = (clinic: string) => `clinic:${clinic}`;
