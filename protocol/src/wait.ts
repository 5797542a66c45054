import type { DeptStats } from './queue.js';

/** What openRoomsOf reads: a clinic's departments and rooms, as the clinic file, the settings API or a snapshot give them. */
export interface ClinicRooms {
  departments: readonly { id: string; rooms: readonly { id: string; open?: boolean }[] }[];
}

/**
 * The rooms of a department that are open: those staff or the clinic's
 * manager have marked open in the clinic's settings (a room is open unless
 * closed). A closed room does not shorten anyone's wait, so only open rooms
 * count as capacity. Every client reads them from the same clinic (the
 * snapshot's `clinic`, updated live by `queue:clinic`), so displays, patient
 * pages, staff consoles and the CLI count the same rooms.
 */
export function openRoomsOf(dept: string, clinic: ClinicRooms | null): string[] {
  const department = clinic?.departments.find((d) => d.id === dept);
  return (department?.rooms ?? []).filter((room) => room.open !== false).map((room) => room.id);
}

/**
 * Minutes until a waiting ticket is likely to be called: the one estimate
 * every screen shows (docs/protocol.md, "Estimated wait").
 *
 * Every open room is assumed busy with a consultation that is, on average,
 * half done. The ticket is called when `ahead + 1` consultations have ended,
 * spread over the `openRooms` open rooms; with none open (before the first
 * call of the day, between patients) one is assumed: somebody has to open.
 * `stats.avgConsultMinutes` is the department's measured mean (its
 * configured default until consultations have been measured).
 */
export function estimateWaitMinutes(ahead: number, openRooms: number, stats: DeptStats): number {
  if (ahead < 0) return 0;
  return Math.round(((ahead + 0.5) * stats.avgConsultMinutes) / Math.max(1, openRooms));
}
