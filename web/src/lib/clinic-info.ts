/**
 * The clinic as its pages show it (`GET /api/clinics/:id`, any token of the
 * clinic): names, timezone, departments. For pages that follow no queue
 * (the staff chat, the consultation page's chat).
 */
import type { PublicClinic } from '@clinic-hub/protocol';

/** Where a clinic's configuration leaves its timezone out (ClinicConfig's default). */
export const DEFAULT_TIMEZONE = 'Asia/Tokyo';

export async function fetchClinic(token: string, clinic: string): Promise<PublicClinic | null> {
  try {
    const res = await fetch(`/api/clinics/${encodeURIComponent(clinic)}`, { headers: { authorization: `Bearer ${token}` } });
    return res.ok ? ((await res.json()) as PublicClinic) : null;
  } catch {
    return null;
  }
}
