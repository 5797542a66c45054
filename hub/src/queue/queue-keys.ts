import { clinicChannel } from '@clinic-hub/protocol';

/**
 * Where a clinic's waiting room lives in Redis. Every key carries the
 * `{clinic}` hash tag, so one clinic's queue sits in one Redis Cluster slot.
 * A script touches only the keys it is given (KEYS, scripts/lib.lua): none
 * is named after data a script reads (a ticket's room or department), so the
 * caller can name them all before the script runs.
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
    /** Hash room → id of the ticket called there or in consultation. */
    rooms: `${prefix}rooms`,
    /** Hash dept → its last 20 measured consultations (ms, newest first, comma-separated). */
    durations: `${prefix}durations`,
    /** Sorted set ticket id → when it ended (ms), for 25 h: how long its patient's token still works. */
    ended: `${prefix}ended`,
    /** The layout of the clinic's queue data (queue-upgrade.ts), written once its older keys are converted. */
    layout: `${prefix}queue:layout`,
    /**
     * The first seq a failover rewrote (queue-live.ts): changes from it on were published live and then lost with
     * the master, and their numbers given again to other changes. A client that applied that far gets a snapshot.
     */
    rewound: `${prefix}rewound`,
    /** The last time-based waiting order given (scripts/lib.lua, nextOrder). */
    lastOrder: `${prefix}order:last`,
    /** Sorted set of the department's waiting tickets, score = waiting order. */
    waiting: (dept: string) => `${prefix}waiting:${dept}`,
    /** The first result of an action, by its idempotency key, for 24 h. */
    request: (idempotencyKey: string) => `${prefix}req:${idempotencyKey}`,
    /** The department's ticket counter of one clinic-local day (yyyymmdd). */
    counter: (dept: string, date: string) => `${prefix}counter:${dept}:${date}`,
    /** Pub/sub channel of every committed queue event of the clinic (not a key). */
    live: clinicChannel(clinic, LIVE_CHANNEL_KIND),
    patient: (ticketId: string) => `${prefix}patient:${ticketId}`,
    /** The appointments domain's record of an appointment (appointments/appointment-keys.ts: keep the two alike), read and marked by check-in. */
    appointment: (appointmentId: string) => `${prefix}appt:${appointmentId}`,
  };
};

/** The kind of the live channels (`ch:{clinic}:live`): SSUBSCRIBEd per clinic, the scripts SPUBLISH (sharded pub/sub). */
export const LIVE_CHANNEL_KIND = 'live';

/** The Socket.IO room of a clinic's queue sockets (displays, staff): every queue event goes there. */
export const clinicRoom = (clinic: string) => `clinic:${clinic}`;
