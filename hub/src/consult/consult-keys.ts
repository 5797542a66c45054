/**
 * The hub's own keys and rooms for consultations. A consultation's meta hash,
 * record, audio and AI streams are the shared contract (`consultKeys` in
 * protocol/src/consult.ts); these index them for the hub. Every key carries
 * the clinic's `{clinic}` hash tag, so the scripts may touch them together.
 */
export const consultIndexKeys = (clinic: string) => {
  const base = `ch:{${clinic}}:consults`;
  return {
    /** Sorted set: consultation ids by creation time (ms), the last CONSULTS_LISTED_DAYS. */
    all: base,
    /** Set: ids of consultations that have not ended. */
    open: `${base}:open`,
    /** String: a ticket's latest consultation id (kept a week; tickets live a day). */
    ticket: (ticketId: string) => `${base}:ticket:${ticketId}`,
    /** Counter written before the replica wait of an admission (ReplicaAck): the consultation was written before it, on the clinic's shard. */
    ackFence: `${base}:ack-fence`,
  };
};

/** How far back `GET /api/clinics/:clinic/consultations` can list ended consultations. */
export const CONSULTS_LISTED_DAYS = 30;
export const TICKET_INDEX_SECONDS = 7 * 86_400;

/** Socket.IO rooms of the `/consult` namespace (each node emits to its own sockets in them). */
export const consultRooms = {
  /** Clinician sockets following one consultation's AI results (`consult:subscribe`). Never a patient's. */
  ai: (clinic: string, consult: string) => `consult-ai:${clinic}:${consult}`,
  /** The sockets of one ticket's patient: admission and end notices. */
  ticket: (clinic: string, ticket: string) => `consult-ticket:${clinic}:${ticket}`,
};
