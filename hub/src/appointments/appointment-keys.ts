/**
 * Redis names of the appointments domain. They share the clinic's `{clinic}`
 * hash tag: the queue's check-in script (queue/scripts/checkin-12.lua) reads and
 * marks the record in the same step as it issues the arrival's ticket, under
 * the name the queue gives it (queue-keys.ts, `appointment`) — keep the two alike.
 */
export const appointmentKeys = (clinic: string) => {
  const prefix = `ch:{${clinic}}:`;
  return {
    /** The appointment (JSON: AppointmentRecord), until the clinic's retention after its time. */
    record: (appointmentId: string) => `${prefix}appt:${appointmentId}`,
    /** Arrival code → appointment id, for as long as the record. */
    byCode: (code: string) => `${prefix}appt-code:${code}`,
    /** Ids by time (sorted set, score = startsAt): the day's list for staff. */
    byTime: `${prefix}appts`,
  };
};
