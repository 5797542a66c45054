import type { DeptStats } from './queue.js';

/**
 * Minutes until a waiting ticket is likely to be called.
 *
 * Every room of the department is assumed busy with a consultation that is,
 * on average, half done. The ticket is called when `ahead + 1` consultations
 * have ended, spread over `rooms` rooms. Shared by the hub, displays and the
 * patient page so that every screen shows the same number.
 */
export function estimateWaitMinutes(ahead: number, rooms: number, stats: DeptStats): number {
  if (ahead < 0 || rooms <= 0) return 0;
  return Math.round(((ahead + 0.5) * stats.avgConsultMinutes) / rooms);
}
